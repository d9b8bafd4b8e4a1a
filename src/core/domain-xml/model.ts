/**
 * A typed model of the part of a libvirt domain vmforge writes. Only what we emit is modelled; anything
 * else libvirt adds (PCI addresses, controllers, aliases) is left to libvirt.
 */

/** libvirt's <domain type>: 'kvm'/'qemu' for the QEMU driver, 'xen' for the libxl driver (PV and HVM). */
export type DomainType = 'kvm' | 'qemu' | 'xen';

export type LifecycleAction = 'destroy' | 'restart' | 'preserve' | 'rename-restart';

export interface DomainModel {
  type: DomainType;
  name: string;
  /** Canonical 8-4-4-4-12 hex form. */
  uuid: string;
  description?: string;
  memoryMiB: number;
  vcpus: number;
  os: OsConfig;
  features: { acpi: boolean; apic: boolean; pae?: boolean };
  /** null leaves the CPU model to the hypervisor default (qemu64 under TCG). */
  cpu: CpuConfig | null;
  clock: ClockConfig;
  onPoweroff: LifecycleAction;
  onReboot: LifecycleAction;
  onCrash: LifecycleAction;
  disks: DiskDevice[];
  interfaces: InterfaceDevice[];
  serial: SerialConsole | null;
  /**
   * false adds `<controller type='usb' model='none'/>` under QEMU; headless servers have no use for USB. Under
   * Xen nothing is written either way: libxl adds no USB controller unless one is asked for.
   */
  usb: boolean;
  /** Xen PV console (`<console type='pty'><target type='xen'/>`, hvc0 in the guest). Xen only. */
  xenConsole?: boolean;
  memballoon: { model: 'virtio' | 'xen' | 'none' };
  rng: RngDevice | null;
}

export interface OsConfig {
  /** 'hvm': full virtualization (QEMU, Xen HVM); 'linux': a Xen paravirtualized (PV) guest. */
  type: 'hvm' | 'linux';
  arch: 'x86_64';
  /** Machine type: QEMU's 'pc' or 'q35'; under Xen 'xenpv' (PV) or 'xenfv' (HVM). */
  machine: string;
  boot: BootConfig;
}

/**
 * How the guest gets its first code to run:
 * - disk: the BIOS (SeaBIOS) boots the GRUB installed on the disk (QEMU);
 * - kernel: the hypervisor loads a kernel (+ initrd, cmdline) from the host (QEMU, or Xen PV);
 * - uefi: OVMF from a read-only pflash, with a per-VM copy of the variable store (QEMU);
 * - pygrub: Xen PV; dom0 runs the bootloader, which reads grub.cfg from the guest disk and hands over its kernel;
 * - hvmloader: Xen HVM firmware, then the disk's own boot loader.
 */
export type BootConfig =
  | { kind: 'disk'; dev: 'hd' }
  /** `firmware`: OVMF (as for 'uefi') loads the kernel instead of SeaBIOS; QEMU only. */
  | { kind: 'kernel'; kernel: string; initrd?: string; cmdline?: string; firmware?: UefiFirmware }
  | { kind: 'uefi'; loader: string; nvram: string; nvramTemplate?: string }
  | { kind: 'pygrub'; bootloader: string; args?: string }
  | { kind: 'hvmloader'; loader: string };

export type BootKind = BootConfig['kind'];

export interface UefiFirmware {
  loader: string;
  nvram: string;
  nvramTemplate?: string;
}

export type CpuConfig =
  | { mode: 'host-passthrough' }
  | { mode: 'host-model' }
  /** QEMU's `-cpu max`: every feature the accelerator can provide; useful for TCG guests needing x86-64-v2+. */
  | { mode: 'maximum' }
  | { mode: 'custom'; model: string };

export interface ClockConfig {
  offset: 'utc' | 'localtime';
  timers: ClockTimer[];
}

export type ClockTimer =
  | { name: 'rtc'; tickpolicy: 'catchup' | 'delay' | 'merge' | 'discard' }
  | { name: 'pit'; tickpolicy: 'catchup' | 'delay' | 'merge' | 'discard' }
  | { name: 'hpet'; present: boolean }
  | { name: 'kvmclock'; present: boolean };

export type DiskFormat = 'raw' | 'qcow2';
/** O_DIRECT modes ('none', 'directsync') fail on filesystems without O_DIRECT such as tmpfs. */
export type DiskCache = 'default' | 'none' | 'writethrough' | 'writeback' | 'directsync' | 'unsafe';

/** 'file': an image file; 'block': a device node such as an LVM logical volume. */
export type DiskSourceType = 'file' | 'block';

export interface DiskDevice {
  /** Default 'disk'. A 'cdrom' is a read-only raw image file on a SATA or SCSI bus (the cloud-init seed). */
  device?: 'disk' | 'cdrom';
  /** The image file, or the device node when `sourceType` is 'block'. */
  sourceFile: string;
  /** Default 'file'. */
  sourceType?: DiskSourceType;
  /**
   * Backend driver name; default 'qemu'. Xen's 'phy' hands a block device straight to blkback (raw only);
   * 'qemu' under Xen is the qdisk backend, which also reads image files.
   */
  driver?: 'qemu' | 'phy';
  format: DiskFormat;
  /** Guest device name, e.g. 'vda'; under Xen 'xvda', or 'xvda1' for a partition-less partition device. */
  target: string;
  bus: 'virtio' | 'sata' | 'scsi' | 'xen';
  cache?: DiskCache;
  discard?: 'unmap' | 'ignore';
  io?: 'native' | 'threads' | 'io_uring';
  readonly?: boolean;
}

/** No model: the hypervisor's default (under Xen, the PV netfront device). */
export type NicModel = 'virtio';

export type InterfaceDevice =
  /** `script`: the Xen hotplug script that plugs the vif into the bridge ('vif-bridge' in /etc/xen/scripts). */
  | { kind: 'bridge'; source: string; mac: string; model?: NicModel; script?: string }
  | { kind: 'network'; source: string; mac: string; model?: NicModel }
  /** QEMU user-mode (slirp) networking: no host source. */
  | { kind: 'user'; mac: string; model?: NicModel };

/**
 * The first serial port, exposed on the host as a listening UNIX socket, with everything the guest
 * prints also copied to `logFile` (written by virtlogd) so boot output survives without a client attached.
 */
export interface SerialConsole {
  /**
   * A UNIX socket to expose the console on; without one it is a pty, which is what `virsh console` needs
   * (libvirt refuses console streams from socket-backed serials).
   */
  socketPath?: string;
  /** Copy of the output kept by virtlogd (QEMU only; under Xen xenconsoled keeps its own logs). */
  logFile?: string;
  logAppend: boolean;
}

export interface RngDevice {
  model: 'virtio';
  backend: '/dev/urandom' | '/dev/random';
}
