/**
 * planBuild: everything a cold build will do, as data. Printing it is --dry-run; the app layer maps each step
 * id to its executor. Pure: identifiers (UUIDs, MAC, disk signature) and host facts come in as input.
 */
import type { Manifest } from '../../bundles/manifest.js';
import { grubCfg } from '../boot/grub-bios.js';
import { fstabLines } from '../disk/fstab.js';
import { swapPartition, type DiskLayout } from '../disk/layout.js';
import { buildDomainXml } from '../domain-xml/build.js';
import { domainModelFor } from '../domain-xml/defaults.js';
import type { DomainModel } from '../domain-xml/model.js';
import type { HypervisorType, NicAttachment, VmSpec } from '../model/spec.js';
import { formatSize, MiB } from '../units.js';
import { VmforgeError } from '../../errors.js';
import { detectGuestFamily, requireFamilyFitsOs, resolveGuestFamily, type GuestFamily } from '../guest/adapter.js';
import type { CloneStrategy } from './golden-plan.js';
import { planStorage, storageDiskSteps, describeStorage, type StoragePlan, type LvmFacts } from './storage-plan.js';
import { pygrubCfg, XEN_PV_KERNEL_CMDLINE } from '../boot/pygrub.js';
import type { DomainBootInput } from '../domain-xml/defaults.js';

export interface BuildFacts {
  domainType: HypervisorType;
  /** How the domain type was chosen (KVM/QEMU only), for the dry-run plan. */
  accelerator?: string;
  /** The NIC's bridge, when it is not on this host yet (a --no-start build may be defined before it exists). */
  bridgeMissing?: string;
  bundleRef: string;
  manifest: Manifest;
  storageDir: string;
  consoleDir: string;
  runDir: string;
  partitionAccess: 'loop-offset' | 'partx';
  nic: NicAttachment;
  ids: { uuid: string; mac: string; diskSignature: number; rootFsUuid: string; swapFsUuid: string };
  /** What gives the VM its network identity besides the disk: each adds a step (and its undo). */
  identity?: {
    /** The vmforge network the address is leased from. */
    leaseFrom?: string;
    /** Names of the DNS records registered, e.g. ['web1.example.com. A', '5.0.20.10.in-addr.arpa. PTR']. */
    dns?: string[];
    /** Where the DHCP reservation goes, e.g. 'libvirt:default' or 'dnsmasq:/etc/dnsmasq.hosts'. */
    dhcp?: string;
  };
  /** Search domain written into the guest (the network's DNS zone). */
  guestDomain?: string;
  /** The warm path: the disk is a clone of the golden image `goldenKey`, not made from scratch. */
  clone?: { strategy: CloneStrategy; goldenKey: string };
  /** With lvm storage: the VG's free space and extent size (from vgs), and the thin pool's free space. */
  lvm?: LvmFacts;
}

/** Where a warm build's golden image lives and how its disk is cloned. */
export interface ClonePlan {
  strategy: CloneStrategy;
  goldenKey: string;
  goldenPath: string;
  /** qcow2 only: the raw view of the overlay (a FUSE mount) while the build edits it. */
  exportPath: string | null;
}

export type BuildStepId =
  | 'inventory.reserve'
  | 'network.lease'
  | 'dhcp.reserve'
  | 'dns.register'
  | 'golden.ensure'
  | 'clone.create'
  | 'clone.attach'
  | 'disk.grow'
  | 'root.reuuid'
  | 'boot.configure'
  | 'disk.create'
  | 'disk.attach'
  | 'disk.format'
  | 'root.mount'
  | 'bundle.extract'
  | 'guest.configure'
  | 'boot.install'
  | 'boot.kernel'
  | 'boot.pygrub'
  | 'root.release'
  | 'cloudinit.seed'
  | 'domain.define'
  | 'domain.start'
  | 'boot.wait'
  | 'inventory.commit';

export interface PlannedStep {
  id: BuildStepId;
  title: string;
}

export interface BuildPlan {
  spec: VmSpec;
  /** Search domain of the guest (hosts file, resolv.conf), from the network's DNS zone. */
  guestDomain: string | undefined;
  /** How the guest's files are adapted (detected from the bundle's OS, or --guest-family). */
  guestFamily: GuestFamily;
  bundleRef: string;
  manifest: Manifest;
  domainType: HypervisorType;
  accelerator?: string;
  bridgeMissing?: string;
  mac: string;
  uuid: string;
  /** `disk`: the disk image or LV; under the Xen partitions layout the root device (xvda1). */
  paths: { disk: string; mountDir: string; consoleLog: string; kernel: string; initrd: string; nvram: string };
  /** Where the disk lives (image files or LVs) and how it is laid out. */
  storage: StoragePlan;
  /** null: the cold path. */
  clone: ClonePlan | null;
  /** SSH host keys made on the host and written into the guest (default on; --no-host-keys turns it off). */
  hostKeys: boolean;
  /** --cloud-init: the NoCloud seed image, attached as a CD-ROM. */
  cloudInit: { seedPath: string } | null;
  layout: DiskLayout;
  partitionAccess: 'loop-offset' | 'partx';
  rootFsUuid: string;
  swapFsUuid: string | null;
  diskSignature: number;
  kernel: { kernel: string; initrd?: string; cmdline: string };
  fstab: string;
  grubCfg: string;
  domain: DomainModel;
  domainXml: string;
  steps: PlannedStep[];
}

/** Room a filesystem needs beyond the files it holds (metadata, journal, reserved blocks, slack). */
export function minimumRootBytes(unpackedBytes: number): number {
  return Math.ceil(unpackedBytes * 1.2) + 128 * MiB;
}

/**
 * Throws INSUFFICIENT_SPACE, with the smallest --disk that works, when the root partition a disk of this size
 * gets (after swap and the 1 MiB boot gap) cannot hold the bundle. Needs no layout, so it runs before one is
 * planned and before any host check.
 */
export function requireDiskFitsBundle(spec: Pick<VmSpec, 'diskBytes' | 'swapBytes'>, unpackedBytes: number, bundleRef: string): void {
  const rootBytes = Math.floor(spec.diskBytes / MiB) * MiB - Math.ceil(spec.swapBytes / MiB) * MiB - MiB;
  const need = minimumRootBytes(unpackedBytes);
  if (rootBytes >= need) return;
  const minDisk = Math.ceil((need + spec.swapBytes + 2 * MiB) / (256 * MiB)) * 256 * MiB;
  const swap = spec.swapBytes > 0 ? ` with ${formatSize(spec.swapBytes)} of swap` : '';
  throw new VmforgeError(
    'INSUFFICIENT_SPACE',
    `a ${formatSize(spec.diskBytes)} disk${swap} leaves ${formatSize(Math.max(rootBytes, 0))} for the root filesystem; bundle ${bundleRef} unpacks to ${formatSize(unpackedBytes)} and needs ${formatSize(need)}`,
    { hint: `use --disk ${Math.ceil(minDisk / MiB)}M or more${spec.swapBytes > 0 ? ' (or a smaller --swap)' : ''}` },
  );
}

export const KERNEL_CMDLINE = 'console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0';

export function planBuild(spec: VmSpec, wait: boolean, f: BuildFacts): BuildPlan {
  requireDiskFitsBundle(spec, f.manifest.unpackedBytes, f.bundleRef);
  const storage = planStorage(spec, f.storageDir, f.lvm);
  const layout = storage.diskLayout;
  // Unknown OS: refused here, before anything exists, unless --guest-family says how to adapt it.
  requireFamilyFitsOs(spec.guestFamily, f.manifest.os);
  const guestFamily = resolveGuestFamily(spec.guestFamily, detectGuestFamily({ manifestOs: f.manifest.os }), f.manifest.os.prettyName);
  const kernelEntry = f.manifest.kernels[0];
  if (!kernelEntry) {
    throw new VmforgeError('INVALID_INPUT', `bundle ${f.bundleRef} has no kernel in /boot`, {
      hint: 'a bundle must contain a kernel to boot from its own disk; rebuild it with a kernel package installed',
    });
  }
  const swap = swapPartition(layout);
  const swapFsUuid = swap ? f.ids.swapFsUuid : null;
  const clone: ClonePlan | null = f.clone
    ? {
        ...f.clone,
        goldenPath: goldenPathFor(f.storageDir, f.clone.goldenKey),
        exportPath: f.clone.strategy === 'qcow2' ? `${f.runDir}/export/${spec.name}.raw` : null,
      }
    : null;
  const paths = {
    disk: storage.backend === 'lvm' ? storage.lvm.domain.diskPath : `${f.storageDir}/${spec.name}.${clone?.strategy === 'qcow2' ? 'qcow2' : 'img'}`,
    nvram: `${f.storageDir}/${spec.name}.nvram.fd`,
    mountDir: `${f.runDir}/mnt/${spec.name}`,
    consoleLog: `${f.consoleDir}/${spec.name}.log`,
    ...bootFilePaths(f.storageDir, spec.name),
  };
  const cloudInit = spec.cloudInit ? { seedPath: seedPathFor(f.storageDir, spec.name) } : null;
  const kernel = { kernel: kernelEntry.kernel, ...(kernelEntry.initrd ? { initrd: kernelEntry.initrd } : {}), cmdline: KERNEL_CMDLINE };
  const xen = spec.hypervisor === 'xen';
  const kernelCmdline = `root=UUID=${f.ids.rootFsUuid} ro ${xen ? XEN_PV_KERNEL_CMDLINE : KERNEL_CMDLINE}`;
  const kernelBoot = { kind: 'kernel' as const, kernel: paths.kernel, ...(kernelEntry.initrd ? { initrd: paths.initrd } : {}), cmdline: kernelCmdline };
  const boot: DomainBootInput | undefined = xen
    ? spec.xenMode === 'hvm'
      ? { kind: 'hvmloader' }
      : spec.boot === 'kernel'
        ? kernelBoot
        : { kind: 'pygrub' }
    : spec.boot === 'kernel'
      ? { ...kernelBoot, ...(spec.firmware === 'uefi' ? { uefi: { nvramPath: paths.nvram } } : {}) }
      : undefined;
  const domain = domainModelFor({
    name: spec.name,
    uuid: f.ids.uuid,
    hypervisor: f.domainType,
    cpus: spec.cpus,
    memoryMiB: spec.memoryMiB,
    diskPath: paths.disk,
    diskFormat: clone?.strategy === 'qcow2' ? 'qcow2' : 'raw',
    ...storage.domain,
    nic: f.nic,
    ...(f.nic.type === 'none' ? {} : { mac: f.ids.mac }),
    serialLogPath: paths.consoleLog,
    ...(boot ? { boot } : {}),
    ...(cloudInit ? { cdromPath: cloudInit.seedPath } : {}),
    description: `built by vmforge from ${f.bundleRef}`,
  });
  const id = f.identity ?? {};
  const steps: PlannedStep[] = [
    { id: 'inventory.reserve', title: 'Reserve the name in the inventory' },
    ...(id.leaseFrom ? [{ id: 'network.lease' as const, title: `Lease an address and MAC in network ${id.leaseFrom}` }] : []),
    ...(clone ? warmDiskSteps(spec, clone, guestFamily, f.bundleRef) : coldDiskSteps(spec, f, storage, guestFamily, Boolean(swap), Boolean(kernelEntry.initrd))),
    ...(cloudInit ? [{ id: 'cloudinit.seed' as const, title: `Make the cloud-init NoCloud seed ${cloudInit.seedPath}` }] : []),
    { id: 'domain.define', title: `Define libvirt domain (${f.domainType}${xen ? ` ${spec.xenMode ?? 'pv'}` : ''}${spec.firmware === 'uefi' ? ', UEFI' : ''}${cloudInit ? ', seed as CD-ROM' : ''})` },
    ...(id.dhcp ? [{ id: 'dhcp.reserve' as const, title: `Reserve the address in DHCP (${id.dhcp})` }] : []),
    ...(id.dns?.length ? [{ id: 'dns.register' as const, title: `Register in DNS (${id.dns.map((r) => r.split(' ').at(-1)).join(', ')})` }] : []),
  ];
  if (spec.start) steps.push({ id: 'domain.start', title: 'Start the domain' });
  if (spec.start && wait) steps.push({ id: 'boot.wait', title: `Wait for '${spec.name} login:'` });
  steps.push({ id: 'inventory.commit', title: 'Record the VM' });
  return {
    spec,
    guestDomain: f.guestDomain,
    guestFamily,
    bundleRef: f.bundleRef,
    manifest: f.manifest,
    domainType: f.domainType,
    ...(f.accelerator ? { accelerator: f.accelerator } : {}),
    ...(f.bridgeMissing ? { bridgeMissing: f.bridgeMissing } : {}),
    mac: f.ids.mac,
    uuid: f.ids.uuid,
    paths,
    clone,
    storage,
    hostKeys: spec.hostKeys !== false,
    cloudInit,
    layout,
    partitionAccess: f.partitionAccess,
    rootFsUuid: f.ids.rootFsUuid,
    swapFsUuid,
    diskSignature: f.ids.diskSignature,
    kernel,
    fstab: fstabLines({ rootUuid: f.ids.rootFsUuid, fs: spec.fs, ...(swapFsUuid ? { swapUuid: swapFsUuid } : {}) }),
    grubCfg:
      xen && spec.xenMode !== 'hvm'
        ? pygrubCfg({ rootUuid: f.ids.rootFsUuid, fs: spec.fs, kernel: kernel.kernel, ...(kernel.initrd ? { initrd: kernel.initrd } : {}), title: `${f.manifest.os.prettyName} (vmforge ${spec.name})` })
        : grubCfg({ rootUuid: f.ids.rootFsUuid, fs: spec.fs, ...kernel, title: `${f.manifest.os.prettyName} (vmforge ${spec.name})` }),
    domain,
    domainXml: buildDomainXml(domain),
    steps,
  };
}

export function goldenPathFor(storageDir: string, key: string): string {
  return `${storageDir}/golden/${key}.img`;
}

function guestStep(guestFamily: GuestFamily, spec: VmSpec): PlannedStep {
  return { id: 'guest.configure', title: `Adapt the guest (${guestFamily}: hostname, fstab, network, identity${spec.hostKeys === false ? '' : ', SSH host keys'})` };
}

function describeIdentity(p: BuildPlan): string {
  const keys = p.hostKeys ? 'new SSH host keys made on the host (fingerprints in vm show)' : "template's SSH host keys removed, the guest makes new ones at first boot";
  return `  identity: empty machine-id, no persistent NIC rules, ${keys}`;
}

function coldDiskSteps(spec: VmSpec, f: BuildFacts, storage: StoragePlan, guestFamily: GuestFamily, swap: boolean, initrd: boolean): PlannedStep[] {
  const pygrub = spec.hypervisor === 'xen' && spec.xenMode !== 'hvm' && spec.boot !== 'kernel';
  return [
    ...storageDiskSteps(spec, storage, f.partitionAccess),
    { id: 'disk.format', title: `Make ${spec.fs}${swap ? ' and swap' : ''}` },
    { id: 'root.mount', title: 'Mount the root filesystem' },
    { id: 'bundle.extract', title: `Lay down bundle ${f.bundleRef}` },
    guestStep(guestFamily, spec),
    spec.boot === 'kernel'
      ? { id: 'boot.kernel', title: `Copy the guest's kernel${initrd ? ' and initrd' : ''} to host storage (direct kernel boot${spec.firmware === 'uefi' ? ' through OVMF' : ''})` }
      : pygrub
        ? { id: 'boot.pygrub', title: 'Write /boot/grub/grub.cfg for pygrub (no GRUB in the disk: dom0 reads the file)' }
        : { id: 'boot.install', title: 'Install GRUB (BIOS) from the host' },
    { id: 'root.release', title: storage.layout === 'partitions' && storage.backend === 'lvm' ? 'Unmount the root filesystem' : 'Unmount and detach the disk' },
  ];
}

/**
 * The warm path: the golden image holds the bundle, the filesystem and GRUB; per VM only the partition table,
 * swap header, grown root, fresh root UUID, guest edits and grub.cfg (which names that UUID) are written.
 * core.img finds its prefix by partition number, (hd0,msdos1), so it needs no change.
 */
function warmDiskSteps(spec: VmSpec, clone: ClonePlan, guestFamily: GuestFamily, bundleRef: string): PlannedStep[] {
  const grow: PlannedStep = { id: 'disk.grow', title: `Grow ${spec.fs} to the partition (${spec.fs === 'xfs' ? 'xfs_growfs' : 'resize2fs'})` };
  const reuuid: PlannedStep = { id: 'root.reuuid', title: `Give the root filesystem its own UUID (${spec.fs === 'xfs' ? 'xfs_admin' : 'tune2fs'} -U)` };
  const mountRoot: PlannedStep = { id: 'root.mount', title: 'Mount the root filesystem' };
  return [
    { id: 'golden.ensure', title: `Golden image of ${bundleRef} (${spec.fs}): reuse, or prepare once` },
    {
      id: 'clone.create',
      title: clone.strategy === 'qcow2' ? `Create ${formatSize(spec.diskBytes)} qcow2 overlay on the golden image` : `Reflink-copy the golden image, grow to ${formatSize(spec.diskBytes)}`,
    },
    {
      id: 'clone.attach',
      title: `${clone.strategy === 'qcow2' ? 'Export the overlay as raw (FUSE), ' : ''}grow the partition table, write the swap header, attach root`,
    },
    // ext4 grows unmounted (online resize needs CAP_SYS_RESOURCE); xfs only grows mounted.
    ...(spec.fs === 'xfs' ? [reuuid, mountRoot, grow] : [grow, reuuid, mountRoot]),
    guestStep(guestFamily, spec),
    { id: 'boot.configure', title: 'Write grub.cfg for the new root UUID' },
    { id: 'root.release', title: `Unmount and detach the disk${clone.strategy === 'qcow2' ? ', stop the export' : ''}` },
  ];
}

/** Where a --cloud-init VM's NoCloud seed image lives: next to its disk (names have no dots, so no clash). */
export function seedPathFor(storageDir: string, name: string): string {
  return `${storageDir}/${name}.cidata.iso`;
}

/** Where a direct-kernel-boot VM's kernel and initrd live on the host (kept in step by `vm refresh-kernel`). */
export function bootFilePaths(storageDir: string, name: string): { kernel: string; initrd: string } {
  return { kernel: `${storageDir}/${name}.vmlinuz`, initrd: `${storageDir}/${name}.initrd` };
}

/** The plan as text for --dry-run. */
export function describePlan(p: BuildPlan): string {
  const s = p.spec;
  const parts = p.layout.partitions.map(
    (x) => `    ${x.index}: ${x.role.padEnd(4)} start ${formatSize(x.offsetBytes)}, size ${formatSize(x.sizeBytes)}${x.bootable ? ', bootable' : ''}`,
  );
  const net = s.net.mode === 'dhcp' ? 'DHCP' : `static ${s.net.address}/${s.net.prefix}${s.net.gateway ? ` gw ${s.net.gateway}` : ''}`;
  return [
    `Plan for VM ${s.name} (dry run: nothing was changed)`,
    `  bundle:   ${p.bundleRef} (${p.manifest.os.prettyName}, ${formatSize(p.manifest.unpackedBytes)} unpacked, kernel ${p.kernel.kernel})`,
    `  guest:    adapted as ${p.guestFamily}${s.timezone ? `, time zone ${s.timezone}` : ''}, ${describeSelinux(p)}`,
    `  domain:   ${p.domainType}${s.hypervisor === 'xen' ? ` ${s.xenMode ?? 'pv'}` : ''}, ${s.cpus} vCPU, ${formatSize(s.memoryMiB * MiB)}, uuid ${p.uuid}${s.firmware === 'uefi' ? ', UEFI (OVMF)' : ''}`,
    ...(p.accelerator ? [`  accel:    ${p.accelerator}`] : []),
    ...(p.clone
      ? [`  disk:     ${p.paths.disk} ${p.clone.strategy === 'qcow2' ? 'qcow2 overlay' : 'raw reflink copy'} of ${p.clone.goldenPath}, ${formatSize(s.diskBytes)}, MBR:`, ...parts]
      : describeStorage(p.storage, s, parts)),
    `  root fs:  ${s.fs} UUID=${p.rootFsUuid}`,
    `  boot:     ${describeBoot(p)}`,
    `  network:  NIC ${p.domain.interfaces.length ? `${describeNicShort(s.nic)} mac ${p.mac}` : 'none'}; guest ${net}${s.network ? ` (leased from network ${s.network}${p.steps.some((x) => x.id === 'network.lease') ? '; the address shown is the lowest free one now' : ''})` : ''}`,
    ...(p.bridgeMissing ? [`  note:     bridge ${p.bridgeMissing} does not exist yet (needed at start)`] : []),
    describeIdentity(p),
    ...(p.cloudInit ? [`  cloud-init: NoCloud seed ${p.cloudInit.seedPath} (meta-data, user-data${s.nic.type === 'none' ? '' : ', network-config'}), CD-ROM sda`] : []),
    // xenconsoled keeps a Xen guest's console; the domain XML names no log file for it.
    `  console:  ${s.hypervisor === 'xen' ? `virsh console ${s.name} (no log file under Xen)` : p.paths.consoleLog}`,
    `  steps:`,
    ...p.steps.map((x, i) => `    ${String(i + 1).padStart(2)}. ${x.title}`),
  ].join('\n');
}

/** The SELinux edit runs only where the guest has /etc/selinux/config: certain for the RHEL families, rare elsewhere. */
function describeSelinux(p: BuildPlan): string {
  const mode = p.spec.selinux;
  return p.guestFamily.startsWith('rhel') ? `SELinux ${mode}` : `SELinux ${mode} only if the guest has a policy (/etc/selinux/config)`;
}

function describeBoot(p: BuildPlan): string {
  const s = p.spec;
  if (s.boot === 'kernel') return `direct kernel boot${s.firmware === 'uefi' ? ` through OVMF (nvram ${p.paths.nvram})` : ''}: ${p.kernel.kernel} -> ${p.paths.kernel}`;
  if (s.hypervisor === 'xen' && s.xenMode !== 'hvm') return `pygrub reads /boot/grub/grub.cfg in the guest (written by vmforge), kernel ${p.kernel.kernel}`;
  return `GRUB (BIOS) in the disk${s.hypervisor === 'xen' ? ' (hvmloader)' : ''}, kernel ${p.kernel.kernel}`;
}

function describeNicShort(n: NicAttachment): string {
  return n.type === 'bridge' ? `bridge ${n.bridge}` : n.type === 'network' ? `network ${n.network}` : n.type;
}
