/**
 * The VM spec: everything a build needs to know, after the CLI input and config defaults are merged and
 * validated. Pure data; sizes in bytes, memory in MiB.
 */
export type FsType = 'ext4' | 'xfs';
/** libvirt domain type: 'kvm'/'qemu' (QEMU driver, with or without acceleration) or 'xen' (libxl). */
export type HypervisorType = 'kvm' | 'qemu' | 'xen';
/** What the user picks (--hypervisor); 'kvm' becomes 'kvm' or 'qemu' by whether /dev/kvm is usable. */
export type HypervisorFamily = 'kvm' | 'xen';

/** How the guest configures its first NIC. */
export type GuestNetConfig =
  | { mode: 'dhcp' }
  | { mode: 'static'; address: string; prefix: number; gateway?: string; dns: string[] };

/** What the domain's NIC is attached to on the host. */
export type NicAttachment =
  | { type: 'bridge'; bridge: string }
  | { type: 'network'; network: string }
  | { type: 'user' }
  | { type: 'none' };

export interface VmSpec {
  name: string;
  bundle: string;
  cpus: number;
  memoryMiB: number;
  diskBytes: number;
  swapBytes: number;
  fs: FsType;
  net: GuestNetConfig;
  nic: NicAttachment;
  start: boolean;
  autostart: boolean;
  /** --guest-family: overrides detection from the bundle's OS. */
  guestFamily?: string;
  /** SELinux handling for guests that have it: 'relabel' (default), 'permissive' or 'disabled'. */
  selinux: 'relabel' | 'permissive' | 'disabled';
  /** IANA zone name; the template's zone is kept when absent. */
  timezone?: string;
  /** Lease the address (and MAC) from this vmforge network: the guest's static config comes from the lease. */
  network?: string;
  /** With `network`: this address instead of the lowest free one. */
  requestedIp?: string;
  /** --mac: this MAC instead of a random one. */
  requestedMac?: string;
  /** Replace DNS records of the name that point elsewhere (--force). */
  dnsForce: boolean;
  /** 'grub': GRUB in the disk's boot sector; 'kernel': the guest's kernel and initrd booted by QEMU from host storage. */
  boot: 'grub' | 'kernel';
  /** Absent: KVM/QEMU. */
  hypervisor?: HypervisorFamily;
  /** Xen only: 'pv' (default; pygrub, or the kernel from host storage with --boot kernel) or 'hvm'. */
  xenMode?: 'pv' | 'hvm';
  /**
   * Xen only: 'partitions' (PV default: root and swap as separate devices xvda1/xvda2 without a partition
   * table) or 'disk' (one whole disk with an MBR, like KVM).
   */
  xenDisk?: 'partitions' | 'disk';
  /** Absent: 'file'. Otherwise 'lvm:VG' or 'lvm:VG/THINPOOL' (parsed by parseStorageSpec). */
  storage?: string;
  /** Absent: 'bios'. 'uefi': OVMF firmware with a per-VM variable store (KVM/QEMU, --boot kernel only). */
  firmware?: 'bios' | 'uefi';
  /** false (--no-host-keys): the guest makes its own SSH host keys at first boot; absent means on. */
  hostKeys?: boolean;
  /** --cloud-init: a NoCloud seed image attached as a CD-ROM. */
  cloudInit?: boolean;
}

/** One change to a file inside the guest root. Paths are absolute guest paths ('/etc/hostname'). */
export type FileEdit =
  | { kind: 'write'; path: string; content: string; mode?: number }
  | { kind: 'delete'; path: string }
  | { kind: 'mkdir'; path: string; mode?: number }
  /** A symlink at `path` whose `target` is stored verbatim (as `systemctl enable` would make it). */
  | { kind: 'symlink'; path: string; target: string };
