/**
 * Turns what the user typed (CLI flags) plus config defaults into a validated VmSpec. Pure: every check that
 * can be made without touching the host is made here, so bad input fails before anything is created.
 */
import type { Config } from '../../config/schema.js';
import { invalidInput } from '../../errors.js';
import type { FsType, GuestNetConfig, NicAttachment, VmSpec } from '../model/spec.js';
import { validateVmName } from '../names.js';
import { formatIpv4, parseIpv4, parseIpv4Cidr, sameSubnet } from '../ipam/ipv4.js';
import { MBR_MAX_DISK_BYTES } from '../disk/layout.js';
import { formatSize, GiB, MiB, parseSize } from '../units.js';
import { parseGuestFamily, parseSelinuxMode } from '../guest/adapter.js';
import { requireKnownTimezone } from '../guest/timezone.js';
import { requireLocalUri, requireUriFitsHypervisor } from '../libvirt-uri.js';
import { validateMac } from '../ipam/mac.js';
import { parseStorageSpec } from '../storage/lvm-plan.js';

export interface BuildRequest {
  name: string;
  bundle?: string;
  cpus?: string | number;
  memory?: string;
  disk?: string;
  swap?: string;
  fs?: string;
  ip?: string;
  gateway?: string;
  dns?: string[];
  bridge?: string;
  net?: string;
  start?: boolean;
  autostart?: boolean;
  guestFamily?: string;
  selinux?: string;
  timezone?: string;
  /** A vmforge network to lease the address from (default: config network.default when no --ip/--bridge/--net). */
  network?: string;
  mac?: string;
  force?: boolean;
  /** grub (default) or kernel (direct kernel boot). */
  boot?: string;
  /** kvm or xen (default: config libvirt.hypervisor). */
  hypervisor?: string;
  /** Xen: pv (default) or hvm. */
  xenMode?: string;
  /** Xen: partitions (PV default) or disk. */
  xenDisk?: string;
  /** file, lvm:VG or lvm:VG/THINPOOL (default: config storage.backend). */
  storage?: string;
  /** bios (default) or uefi. */
  firmware?: string;
  /** false: no SSH host keys made on the host (--no-host-keys). */
  hostKeys?: boolean;
  /** Attach a cloud-init NoCloud seed (--cloud-init). */
  cloudInit?: boolean;
}

export function parseNic(text: string): NicAttachment | 'auto' {
  if (text === 'auto') return 'auto';
  if (text === 'user') return { type: 'user' };
  if (text === 'none') return { type: 'none' };
  const m = /^(bridge|network):([A-Za-z0-9_.-]{1,64})$/.exec(text);
  if (!m) throw invalidInput(`--net '${text}' is not understood`, 'use auto, user, none, bridge:NAME or network:NAME');
  if (m[1] === 'bridge') {
    if ((m[2] as string).length > 15) throw invalidInput(`bridge name '${m[2]}' is longer than 15 characters`);
    return { type: 'bridge', bridge: m[2] as string };
  }
  return { type: 'network', network: m[2] as string };
}

export function specFromRequest(req: BuildRequest, config: Config): VmSpec & { nicRequest: NicAttachment | 'auto' } {
  const name = validateVmName(req.name);
  if (!req.bundle) throw invalidInput('--bundle is required', "list bundles with 'vmforge bundle list', or make one with 'vmforge bundle bootstrap debian'");
  const d = config.defaults;
  const cpus = Number(req.cpus ?? d.cpus);
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 512) throw invalidInput(`--cpus '${req.cpus}' must be a whole number from 1 to 512`);
  const memoryBytes = parseSize(req.memory ?? d.memory, '--memory');
  if (memoryBytes < 128 * MiB) throw invalidInput(`--memory ${req.memory ?? d.memory} is below the 128M minimum`);
  if (memoryBytes > 4096 * GiB) throw invalidInput(`--memory ${req.memory} is absurdly large`);
  const diskText = req.disk ?? d.disk;
  const diskBytes = parseSize(diskText, '--disk');
  if (diskBytes < MiB) throw invalidInput(`--disk ${diskText} is not a usable disk size`, 'give the disk size like 4G');
  if (diskBytes > MBR_MAX_DISK_BYTES) {
    throw invalidInput(`--disk ${diskText} is larger than an MBR partition table can address (${formatSize(MBR_MAX_DISK_BYTES)})`, 'use --disk 2T or less');
  }
  const swapBytes = parseSize(req.swap ?? d.swap, '--swap');
  // Only a swap size the user typed is their mistake; a default swap that does not fit is reported with the
  // bundle's space needs (INSUFFICIENT_SPACE), which says how large the disk must be.
  if (req.swap !== undefined && swapBytes >= diskBytes) {
    throw invalidInput(`--swap ${req.swap} is not smaller than the disk (${diskText})`, 'make the disk larger or the swap smaller (--swap 0 for none)');
  }
  const fs = (req.fs ?? d.fs) as FsType;
  if (fs !== 'ext4' && fs !== 'xfs') throw invalidInput(`--fs '${req.fs}' is not supported`, 'use ext4 or xfs');

  // A vmforge network gives the address, gateway, DNS and bridge; only a wish for the address is combined with it.
  const network = req.network ?? (req.ip || req.bridge || req.net ? undefined : config.network.default);
  let requestedIp: string | undefined;
  if (network !== undefined) {
    if (req.gateway || (req.dns && req.dns.length)) throw invalidInput('--gateway and --dns come from the network; drop them or drop --network');
    if (req.bridge || req.net) throw invalidInput('the network names the bridge; drop --bridge/--net or drop --network');
    if (req.ip) requestedIp = formatIpv4(parseIpv4(req.ip.replace(/\/\d{1,2}$/, ''), '--ip'));
  }
  const requestedMac = req.mac === undefined ? undefined : validateMac(req.mac);
  const boot = req.boot ?? 'grub';
  if (boot !== 'grub' && boot !== 'kernel') throw invalidInput(`--boot '${boot}' is not a boot mode`, 'use grub (the disk boots itself) or kernel (QEMU boots the guest\'s kernel from host storage)');

  const platform = platformFromRequest(req, config, boot);

  let net: GuestNetConfig = { mode: 'dhcp' };
  if (req.ip && network === undefined) {
    const { address, prefix } = parseIpv4Cidr(req.ip, '--ip');
    const dns = (req.dns ?? []).map((s) => formatIpv4(parseIpv4(s, '--dns')));
    // glibc's resolver reads at most three nameservers; a fourth would be silently ignored in the guest.
    if (dns.length > 3) throw invalidInput(`--dns was given ${dns.length} times; a guest uses at most 3 DNS servers`);
    let gateway: string | undefined;
    if (req.gateway) {
      gateway = formatIpv4(parseIpv4(req.gateway, '--gateway'));
      if (!sameSubnet(address, gateway, prefix)) throw invalidInput(`--gateway ${gateway} is not inside ${address}/${prefix}`);
      if (gateway === address) throw invalidInput(`--gateway is the VM's own address ${address}`);
    }
    net = gateway === undefined ? { mode: 'static', address, prefix, dns } : { mode: 'static', address, prefix, gateway, dns };
  } else if (req.gateway || (req.dns && req.dns.length)) {
    throw invalidInput('--gateway and --dns need --ip (without --ip the guest uses DHCP)');
  }

  if (req.bridge && req.net) throw invalidInput('give either --bridge or --net, not both');
  const nicRequest = req.bridge ? parseNic(`bridge:${req.bridge}`) : parseNic(req.net ?? d.net);
  if (req.ip && network === undefined && nicRequest !== 'auto' && nicRequest.type === 'none') {
    throw invalidInput(`--ip ${req.ip} needs a NIC, but ${req.net ? '--net none' : 'defaults.net: none'} gives the VM none`, 'drop --ip, or attach a NIC with --bridge NAME, --net bridge:NAME or --network NAME');
  }

  const guestFamily = req.guestFamily === undefined ? undefined : parseGuestFamily(req.guestFamily);
  const selinux = parseSelinuxMode(req.selinux ?? 'relabel');
  const timezone = req.timezone === undefined ? undefined : requireKnownTimezone(req.timezone);

  return {
    name,
    bundle: req.bundle,
    ...(guestFamily ? { guestFamily } : {}),
    selinux,
    ...(timezone ? { timezone } : {}),
    ...(network !== undefined ? { network } : {}),
    ...(requestedIp !== undefined ? { requestedIp } : {}),
    ...(requestedMac !== undefined ? { requestedMac } : {}),
    dnsForce: Boolean(req.force),
    boot,
    ...platform,
    ...(req.hostKeys === false ? { hostKeys: false } : {}),
    ...(req.cloudInit ? { cloudInit: true } : {}),
    cpus,
    memoryMiB: Math.ceil(memoryBytes / MiB),
    diskBytes,
    swapBytes,
    fs,
    net,
    nic: nicRequest === 'auto' ? { type: 'user' } : nicRequest,
    nicRequest,
    start: req.start ?? true,
    autostart: req.autostart ?? true,
  };
}

/**
 * 'auto' attachment: a bridge named br0 if the host has one, else libvirt's 'default' network when it is
 * active, else user-mode networking (works everywhere, reaches nothing but the host's NAT).
 */
export function pickNic(requested: NicAttachment | 'auto', facts: { bridges: string[]; activeNetworks: string[] }): NicAttachment {
  if (requested !== 'auto') return requested;
  if (facts.bridges.includes('br0')) return { type: 'bridge', bridge: 'br0' };
  if (facts.activeNetworks.includes('default')) return { type: 'network', network: 'default' };
  return { type: 'user' };
}

type Platform = Pick<VmSpec, 'hypervisor' | 'xenMode' | 'xenDisk' | 'storage' | 'firmware'>;

/**
 * Hypervisor, Xen mode and disk layout, storage backend and firmware. Only what differs from the KVM + file
 * + BIOS default is set, so specs (and the inventory rows holding them) of plain builds stay as they were.
 */
function platformFromRequest(req: BuildRequest, config: Config, boot: 'grub' | 'kernel'): Platform {
  const hypervisor = req.hypervisor ?? config.libvirt.hypervisor;
  if (hypervisor !== 'kvm' && hypervisor !== 'xen') throw invalidInput(`--hypervisor '${hypervisor}' is not supported`, 'use kvm (KVM, or QEMU/TCG without /dev/kvm) or xen');
  requireLocalUri(config.libvirt.uri);
  requireUriFitsHypervisor(config.libvirt.uri, hypervisor);
  const xen = hypervisor === 'xen';
  if (!xen && (req.xenMode !== undefined || req.xenDisk !== undefined)) throw invalidInput('--xen-mode and --xen-disk need --hypervisor xen');
  const xenMode = req.xenMode ?? 'pv';
  if (xenMode !== 'pv' && xenMode !== 'hvm') throw invalidInput(`--xen-mode '${xenMode}' is not a Xen mode`, 'use pv (paravirtualized) or hvm');
  const xenDisk = req.xenDisk ?? (xenMode === 'hvm' ? 'disk' : 'partitions');
  if (xenDisk !== 'partitions' && xenDisk !== 'disk') throw invalidInput(`--xen-disk '${xenDisk}' is not a Xen disk layout`, 'use partitions (xvda1 root, xvda2 swap, no partition table) or disk');
  if (xen && xenMode === 'hvm' && xenDisk === 'partitions') {
    throw invalidInput('--xen-disk partitions needs a PV guest: HVM firmware boots a disk with a partition table', 'use --xen-disk disk with --xen-mode hvm');
  }
  if (xen && xenMode === 'hvm' && boot === 'kernel') throw invalidInput('--boot kernel under Xen makes a PV guest', 'drop --xen-mode hvm, or use --boot grub');
  const storageText = req.storage ?? config.storage.backend;
  const storage = parseStorageSpec(storageText);
  const firmware = req.firmware ?? config.defaults.firmware;
  if (firmware !== 'bios' && firmware !== 'uefi') throw invalidInput(`--firmware '${firmware}' is not supported`, 'use bios or uefi');
  if (firmware === 'uefi' && xen) throw invalidInput('--firmware uefi is for KVM/QEMU guests', 'under Xen use --xen-mode pv or hvm');
  if (firmware === 'uefi' && boot !== 'kernel') {
    // GRUB for EFI would need an EFI system partition and grub-efi on the host; not built yet.
    throw invalidInput('--firmware uefi needs --boot kernel: vmforge does not make an EFI system partition or install GRUB for EFI yet', 'add --boot kernel (OVMF then boots the guest kernel from host storage), or use --firmware bios');
  }
  return {
    ...(xen ? { hypervisor: 'xen' as const, xenMode, xenDisk } : {}),
    ...(storage.backend === 'lvm' ? { storage: storageText.trim() } : {}),
    ...(firmware === 'uefi' ? { firmware } : {}),
  };
}
