/**
 * The domain vmforge creates for a VM: plain inputs in, a full DomainModel out. Policy (which CPU mode,
 * which timers, which devices) lives here so the builder stays a faithful model -> XML mapping.
 */
import { VmforgeError } from '../../errors.js';
import type { HypervisorType, NicAttachment } from '../model/spec.js';
import type { CpuConfig, DiskCache, DiskFormat, DomainModel, InterfaceDevice } from './model.js';

export interface DirectKernelBoot {
  kernel: string;
  initrd?: string;
  cmdline?: string;
}

export interface DomainInput {
  name: string;
  uuid: string;
  hypervisor: HypervisorType;
  cpus: number;
  memoryMiB: number;
  diskPath: string;
  diskFormat: DiskFormat;
  nic: NicAttachment;
  /** Required unless `nic.type` is 'none'. */
  mac?: string;
  /** Expose the serial console on this UNIX socket; default: a pty (works with `virsh console`). */
  serialSocketPath?: string;
  serialLogPath: string;
  /** Boot a kernel from the host instead of the disk's bootloader. */
  kernelBoot?: DirectKernelBoot;
  /** Default 'pc'. */
  machine?: string;
  /** Default: QEMU's own (writeback). 'none' is faster on real disks but fails on tmpfs. */
  diskCache?: DiskCache;
  /** Pass guest TRIM through to the image so deleted blocks shrink it; default true. */
  discard?: boolean;
  /** Default: host-passthrough under KVM, the QEMU default model under TCG. */
  cpu?: CpuConfig | null;
  description?: string;
}

export function domainModelFor(input: DomainInput): DomainModel {
  return {
    type: input.hypervisor,
    name: input.name,
    uuid: input.uuid,
    ...(input.description === undefined ? {} : { description: input.description }),
    memoryMiB: input.memoryMiB,
    vcpus: input.cpus,
    os: {
      type: 'hvm',
      arch: 'x86_64',
      machine: input.machine ?? 'pc',
      boot: input.kernelBoot ? { kind: 'kernel', ...input.kernelBoot } : { kind: 'disk', dev: 'hd' },
    },
    features: { acpi: true, apic: true },
    // TCG cannot pass the host CPU through; its default model boots every x86-64-v1 distribution.
    cpu: input.cpu !== undefined ? input.cpu : input.hypervisor === 'kvm' ? { mode: 'host-passthrough' } : null,
    clock: {
      offset: 'utc',
      timers: [
        { name: 'rtc', tickpolicy: 'catchup' },
        { name: 'pit', tickpolicy: 'delay' },
        { name: 'hpet', present: false },
      ],
    },
    onPoweroff: 'destroy',
    onReboot: 'restart',
    onCrash: 'destroy',
    disks: [
      {
        sourceFile: input.diskPath,
        format: input.diskFormat,
        target: 'vda',
        bus: 'virtio',
        ...(input.diskCache === undefined ? {} : { cache: input.diskCache }),
        ...(input.discard === false ? {} : { discard: 'unmap' as const }),
      },
    ],
    interfaces: interfacesFor(input.nic, input.mac),
    serial: { ...(input.serialSocketPath === undefined ? {} : { socketPath: input.serialSocketPath }), logFile: input.serialLogPath, logAppend: false },
    usb: false,
    memballoon: { model: 'virtio' },
    rng: { model: 'virtio', backend: '/dev/urandom' },
  };
}

function interfacesFor(nic: NicAttachment, mac: string | undefined): InterfaceDevice[] {
  if (nic.type === 'none') return [];
  if (mac === undefined) {
    throw new VmforgeError('INTERNAL', `a MAC address is needed for a '${nic.type}' NIC`);
  }
  switch (nic.type) {
    case 'bridge':
      return [{ kind: 'bridge', source: nic.bridge, mac, model: 'virtio' }];
    case 'network':
      return [{ kind: 'network', source: nic.network, mac, model: 'virtio' }];
    case 'user':
      return [{ kind: 'user', mac, model: 'virtio' }];
  }
}
