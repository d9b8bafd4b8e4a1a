/**
 * The domain vmforge creates for a VM: plain inputs in, a full DomainModel out. Policy (which CPU mode,
 * which timers, which devices) lives here so the builder stays a faithful model -> XML mapping.
 */
import { invalidInput, VmforgeError } from '../../errors.js';
import { MAC_PREFIX } from '../ipam/mac.js';
import type { NicAttachment } from '../model/spec.js';
import type {
  BootConfig,
  CpuConfig,
  DiskCache,
  DiskDevice,
  DiskFormat,
  DiskSourceType,
  DomainModel,
  DomainType,
  InterfaceDevice,
  OsConfig,
} from './model.js';

/** Debian 12's Xen 4.17 (xen-utils-4.17); override through the boot input on other hosts. */
export const XEN_PYGRUB_PATH = '/usr/lib/xen-4.17/bin/pygrub';
export const XEN_HVMLOADER_PATH = '/usr/lib/xen-4.17/boot/hvmloader';
/** Debian's ovmf package: the 2 MiB build without Secure Boot, and its empty variable store. */
export const OVMF_CODE_PATH = '/usr/share/OVMF/OVMF_CODE.fd';
export const OVMF_VARS_TEMPLATE_PATH = '/usr/share/OVMF/OVMF_VARS.fd';

export interface DirectKernelBoot {
  kernel: string;
  initrd?: string;
  cmdline?: string;
  /** KVM/QEMU: boot through OVMF (UEFI) instead of SeaBIOS; `nvramPath` as for the 'uefi' boot. */
  uefi?: { nvramPath: string; loader?: string; nvramTemplate?: string };
}

/**
 * How the VM boots. Which ones fit: KVM/QEMU take 'disk' (default), 'kernel' and 'uefi'; Xen takes 'pygrub'
 * (default) and 'kernel' (both make a PV guest) and 'hvmloader' (an HVM guest).
 */
export type DomainBootInput =
  | { kind: 'disk' }
  | ({ kind: 'kernel' } & DirectKernelBoot)
  /** `nvramPath`: this VM's own copy of the variable store; libvirt creates it from the template on first start. */
  | { kind: 'uefi'; nvramPath: string; loader?: string; nvramTemplate?: string }
  | { kind: 'pygrub'; bootloader?: string; args?: string }
  | { kind: 'hvmloader'; loader?: string };

/**
 * 'whole-disk' (default): one disk with its own partition table (vda, or xvda under Xen). 'partitions', Xen
 * PV only: the classic Xen layout without a partition table; `diskPath` holds the root filesystem itself
 * (xvda1) and `swapPath`, if any, the swap area (xvda2).
 */
export type DomainDiskLayout = { kind: 'whole-disk' } | { kind: 'partitions'; swapPath?: string };

export interface DomainInput {
  name: string;
  uuid: string;
  hypervisor: DomainType;
  cpus: number;
  memoryMiB: number;
  diskPath: string;
  diskFormat: DiskFormat;
  /** 'block' for a device node such as an LVM LV (every disk of the VM); default 'file'. */
  diskSourceType?: DiskSourceType;
  diskLayout?: DomainDiskLayout;
  nic: NicAttachment;
  /** Required unless `nic.type` is 'none'. Under Xen it must be under Xen's prefix 00:16:3e. */
  mac?: string;
  /** Expose the serial console on this UNIX socket; default: a pty (works with `virsh console`). Not under Xen. */
  serialSocketPath?: string;
  /** Where virtlogd copies the console output. Ignored under Xen, whose xenconsoled keeps its own log. */
  serialLogPath: string;
  /** Boot a kernel from the host instead of the disk's bootloader (same as `boot: { kind: 'kernel', ... }`). */
  kernelBoot?: DirectKernelBoot;
  /** Default: 'disk' under KVM/QEMU, 'pygrub' under Xen. */
  boot?: DomainBootInput;
  /** Default 'pc' under KVM/QEMU; under Xen 'xenpv' (PV) or 'xenfv' (HVM). */
  machine?: string;
  /** Default: QEMU's own (writeback). 'none' is faster on real disks but fails on tmpfs. */
  diskCache?: DiskCache;
  /**
   * A read-only raw image attached as a SATA CD-ROM (sda): the cloud-init NoCloud seed. KVM/QEMU only. The
   * boot order is unaffected: the domain boots from its hard disk.
   */
  cdromPath?: string;
  /** Pass guest TRIM through to the image so deleted blocks shrink it; default true. */
  discard?: boolean;
  /** Default: host-passthrough under KVM, the QEMU default model under TCG. */
  cpu?: CpuConfig | null;
  description?: string;
}

export function domainModelFor(input: DomainInput): DomainModel {
  return input.hypervisor === 'xen' ? xenDomainModel(input) : qemuDomainModel(input);
}

function qemuDomainModel(input: DomainInput): DomainModel {
  if (input.diskLayout?.kind === 'partitions') {
    throw invalidInput('separate root and swap devices without a partition table are a Xen PV layout', "use the whole-disk layout under KVM/QEMU");
  }
  const bootInput = bootInputOf(input) ?? { kind: 'disk' };
  const boot = qemuBoot(bootInput);
  return {
    type: input.hypervisor,
    name: input.name,
    uuid: input.uuid,
    ...(input.description === undefined ? {} : { description: input.description }),
    memoryMiB: input.memoryMiB,
    vcpus: input.cpus,
    os: { type: 'hvm', arch: 'x86_64', machine: input.machine ?? 'pc', boot },
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
    disks: [disk(input, input.diskPath, input.diskFormat, 'vda', 'virtio'), ...cdromsFor(input)],
    interfaces: interfacesFor(input.nic, input.mac, false),
    serial: { ...(input.serialSocketPath === undefined ? {} : { socketPath: input.serialSocketPath }), logFile: input.serialLogPath, logAppend: false },
    usb: false,
    memballoon: { model: 'virtio' },
    rng: { model: 'virtio', backend: '/dev/urandom' },
  };
}

function qemuBoot(b: DomainBootInput): BootConfig {
  switch (b.kind) {
    case 'disk':
      return { kind: 'disk', dev: 'hd' };
    case 'kernel': {
      const { kind, uefi, ...k } = b;
      if (uefi === undefined) return { kind, ...k };
      return { kind, ...k, firmware: { loader: uefi.loader ?? OVMF_CODE_PATH, nvram: uefi.nvramPath, nvramTemplate: uefi.nvramTemplate ?? OVMF_VARS_TEMPLATE_PATH } };
    }
    case 'uefi':
      return {
        kind: 'uefi',
        loader: b.loader ?? OVMF_CODE_PATH,
        nvram: b.nvramPath,
        nvramTemplate: b.nvramTemplate ?? OVMF_VARS_TEMPLATE_PATH,
      };
    case 'pygrub':
    case 'hvmloader':
      throw invalidInput(`boot '${b.kind}' is for Xen guests`, "use 'disk', 'kernel' or 'uefi' under KVM/QEMU");
  }
}

/**
 * Xen: PV ('pygrub' or 'kernel' boot) or HVM ('hvmloader'). PV guests get no emulated hardware at all: no
 * ACPI, no serial port, the PV console (hvc0) and PV disks and NICs. libxl's defaults fill in the rest.
 */
function xenDomainModel(input: DomainInput): DomainModel {
  const bootInput = bootInputOf(input) ?? { kind: 'pygrub' };
  const os = xenOs(bootInput, input.machine);
  const pv = os.type === 'linux';
  const layout = input.diskLayout ?? { kind: 'whole-disk' };
  if (layout.kind === 'partitions' && !pv) {
    throw invalidInput('an HVM guest boots through its firmware, which needs a disk with a partition table', "use the whole-disk layout for Xen HVM, or a PV boot ('pygrub' or 'kernel')");
  }
  if (input.cdromPath !== undefined) {
    throw invalidInput('a CD-ROM (the cloud-init seed) is modelled for KVM/QEMU only', 'build Xen guests without --cloud-init');
  }
  if (input.serialSocketPath !== undefined) {
    throw invalidInput('a console on a UNIX socket is a QEMU feature', 'under Xen use `virsh console` (or `xl console`) on the pty');
  }
  if (input.mac !== undefined && input.nic.type !== 'none' && !input.mac.toLowerCase().startsWith(`${MAC_PREFIX.xen}:`)) {
    throw invalidInput(`MAC ${input.mac} is not under Xen's prefix ${MAC_PREFIX.xen}`, `pick a MAC like ${MAC_PREFIX.xen}:xx:xx:xx`);
  }
  const disks =
    layout.kind === 'partitions'
      ? [
          disk(input, input.diskPath, input.diskFormat, 'xvda1', 'xen'),
          ...(layout.swapPath === undefined ? [] : [disk(input, layout.swapPath, 'raw', 'xvda2', 'xen')]),
        ]
      : [disk(input, input.diskPath, input.diskFormat, 'xvda', 'xen')];
  return {
    type: 'xen',
    name: input.name,
    uuid: input.uuid,
    ...(input.description === undefined ? {} : { description: input.description }),
    memoryMiB: input.memoryMiB,
    vcpus: input.cpus,
    os,
    features: pv ? { acpi: false, apic: false } : { acpi: true, apic: true, pae: true },
    cpu: input.cpu ?? null,
    clock: { offset: 'utc', timers: [] },
    onPoweroff: 'destroy',
    onReboot: 'restart',
    onCrash: 'destroy',
    disks,
    interfaces: interfacesFor(input.nic, input.mac, true),
    // An HVM guest also gets the emulated serial port, for firmware and boot loader output before PV drivers load.
    serial: pv ? null : { logAppend: false },
    xenConsole: pv,
    usb: false,
    memballoon: { model: 'xen' },
    rng: null,
  };
}

function xenOs(b: DomainBootInput, machine: string | undefined): OsConfig {
  switch (b.kind) {
    case 'pygrub':
      return {
        type: 'linux',
        arch: 'x86_64',
        machine: machine ?? 'xenpv',
        boot: { kind: 'pygrub', bootloader: b.bootloader ?? XEN_PYGRUB_PATH, ...(b.args === undefined ? {} : { args: b.args }) },
      };
    case 'kernel': {
      const { kind, uefi, ...k } = b;
      if (uefi !== undefined) throw invalidInput('UEFI firmware is modelled for KVM/QEMU guests only', 'boot a Xen PV guest without firmware');
      return { type: 'linux', arch: 'x86_64', machine: machine ?? 'xenpv', boot: { kind, ...k } };
    }
    case 'hvmloader':
      return { type: 'hvm', arch: 'x86_64', machine: machine ?? 'xenfv', boot: { kind: 'hvmloader', loader: b.loader ?? XEN_HVMLOADER_PATH } };
    case 'disk':
    case 'uefi':
      throw invalidInput(`boot '${b.kind}' is for KVM/QEMU guests`, "under Xen use 'pygrub' or 'kernel' (PV) or 'hvmloader' (HVM)");
  }
}

function bootInputOf(input: DomainInput): DomainBootInput | undefined {
  if (input.kernelBoot !== undefined && input.boot !== undefined) {
    throw new VmforgeError('INTERNAL', 'give either kernelBoot or boot, not both');
  }
  return input.kernelBoot !== undefined ? { kind: 'kernel', ...input.kernelBoot } : input.boot;
}

function disk(input: DomainInput, path: string, format: DiskFormat, target: string, bus: 'virtio' | 'xen'): DiskDevice {
  const block = input.diskSourceType === 'block';
  return {
    sourceFile: path,
    ...(block ? { sourceType: 'block' as const } : {}),
    // Xen: blkback ('phy') serves a raw block device from the dom0 kernel, without a qemu process per disk.
    ...(bus === 'xen' && block && format === 'raw' ? { driver: 'phy' as const } : {}),
    format,
    target,
    bus,
    ...(input.diskCache === undefined ? {} : { cache: input.diskCache }),
    ...(input.discard === false ? {} : { discard: 'unmap' as const }),
  };
}

/** SATA, not virtio: virtio has no CD-ROM device, and every guest kernel has AHCI and sr_mod. */
function cdromsFor(input: DomainInput): DiskDevice[] {
  if (input.cdromPath === undefined) return [];
  return [{ device: 'cdrom', sourceFile: input.cdromPath, format: 'raw', target: 'sda', bus: 'sata', readonly: true }];
}

/** Under Xen: no model (PV netfront), and bridges plugged by Xen's own hotplug script as libxl expects. */
function interfacesFor(nic: NicAttachment, mac: string | undefined, xen: boolean): InterfaceDevice[] {
  if (nic.type === 'none') return [];
  if (mac === undefined) {
    throw new VmforgeError('INTERNAL', `a MAC address is needed for a '${nic.type}' NIC`);
  }
  const model = xen ? {} : { model: 'virtio' as const };
  switch (nic.type) {
    case 'bridge':
      return [{ kind: 'bridge', source: nic.bridge, mac, ...model, ...(xen ? { script: 'vif-bridge' } : {}) }];
    case 'network':
      return [{ kind: 'network', source: nic.network, mac, ...model }];
    case 'user':
      if (xen) throw invalidInput("'user' networking is a QEMU feature; Xen has none", 'attach the NIC to a bridge or a libvirt network');
      return [{ kind: 'user', mac, ...model }];
  }
}
