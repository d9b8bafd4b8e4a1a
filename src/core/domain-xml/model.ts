/**
 * A typed model of the part of a libvirt domain vmforge writes. Only what we emit is modelled; anything
 * else libvirt adds (PCI addresses, controllers, aliases) is left to libvirt.
 */

/** libvirt's <domain type>. 'xen' (PV/HVM) is planned and will widen this union and `OsConfig`. */
export type DomainType = 'kvm' | 'qemu';

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
  features: { acpi: boolean; apic: boolean };
  /** null leaves the CPU model to the hypervisor default (qemu64 under TCG). */
  cpu: CpuConfig | null;
  clock: ClockConfig;
  onPoweroff: LifecycleAction;
  onReboot: LifecycleAction;
  onCrash: LifecycleAction;
  disks: DiskDevice[];
  interfaces: InterfaceDevice[];
  serial: SerialConsole | null;
  /** false adds `<controller type='usb' model='none'/>`; headless servers have no use for USB. */
  usb: boolean;
  memballoon: { model: 'virtio' | 'none' };
  rng: RngDevice | null;
}

export interface OsConfig {
  type: 'hvm';
  arch: 'x86_64';
  /** QEMU machine type, e.g. 'pc' or 'q35'. */
  machine: string;
  boot: BootConfig;
}

export type BootConfig =
  | { kind: 'disk'; dev: 'hd' }
  | { kind: 'kernel'; kernel: string; initrd?: string; cmdline?: string };

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

export interface DiskDevice {
  sourceFile: string;
  format: DiskFormat;
  /** Guest device name, e.g. 'vda'. */
  target: string;
  bus: 'virtio' | 'sata' | 'scsi';
  cache?: DiskCache;
  discard?: 'unmap' | 'ignore';
  io?: 'native' | 'threads' | 'io_uring';
  readonly?: boolean;
}

export type InterfaceDevice =
  | { kind: 'bridge'; source: string; mac: string; model: 'virtio' }
  | { kind: 'network'; source: string; mac: string; model: 'virtio' }
  /** QEMU user-mode (slirp) networking: no host source. */
  | { kind: 'user'; mac: string; model: 'virtio' };

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
  logFile: string;
  logAppend: boolean;
}

export interface RngDevice {
  model: 'virtio';
  backend: '/dev/urandom' | '/dev/random';
}
