/**
 * Where a VM's disk lives and how it is laid out, for the build plan: image files in the storage dir or LVM
 * logical volumes, holding one whole disk with an MBR (KVM/QEMU, Xen HVM, Xen PV --xen-disk disk) or, under
 * Xen PV, the classic layout of separate root and swap devices without a partition table (xvda1, xvda2).
 *
 * Everything above the block device (mkfs, mount, bundle, guest edits, boot) is the same for every backend;
 * only disk.create and disk.attach differ, and only they read this plan's backend.
 */
import { invalidInput } from '../../errors.js';
import { MIN_ROOT_BYTES, PARTITION_TYPE_LINUX, PARTITION_TYPE_SWAP, SECTOR_SIZE, planDiskLayout, type DiskLayout, type PartitionPlan } from '../disk/layout.js';
import type { DomainDiskLayout } from '../domain-xml/defaults.js';
import type { VmSpec } from '../model/spec.js';
import { lvmDestroyArgv, parseStorageSpec, planLvmStorage, type LvmStoragePlan } from '../storage/lvm-plan.js';
import { formatSize, MiB } from '../units.js';
import type { PlannedStep } from './build-plan.js';

/** Facts about the VG (and thin pool) from vgs/lvs; free space absent when they could not be read. */
export interface LvmFacts {
  vgFreeBytes?: number;
  extentBytes: number;
  poolFreeBytes?: number;
  /** Said in the plan, e.g. why free space was not checked. */
  note?: string;
}

export type DiskLayoutKind = DomainDiskLayout['kind'];

interface StorageCommon {
  layout: DiskLayoutKind;
  /** Whole disk: the MBR layout. Partitions: one entry per device, each at offset 0 of its own image/LV. */
  diskLayout: DiskLayout;
  /** Spread into the domain input (after diskPath, so an LV path wins). */
  domain: { diskPath?: string; diskSourceType?: 'block'; diskLayout?: DomainDiskLayout };
}

export type StoragePlan =
  | (StorageCommon & { backend: 'file'; rootImage: string; swapImage: string | null })
  | (StorageCommon & { backend: 'lvm'; lvm: LvmStoragePlan; note: string | null });

/** KVM/QEMU and Xen HVM always get a whole disk; Xen PV follows --xen-disk. */
export function diskLayoutKindOf(spec: Pick<VmSpec, 'hypervisor' | 'xenDisk'>): DiskLayoutKind {
  return spec.hypervisor === 'xen' && spec.xenDisk === 'partitions' ? 'partitions' : 'whole-disk';
}

export function swapImagePath(storageDir: string, name: string): string {
  return `${storageDir}/${name}-swap.img`;
}

export function planStorage(spec: VmSpec, storageDir: string, lvmFacts: LvmFacts | undefined): StoragePlan {
  const layout = diskLayoutKindOf(spec);
  const backend = parseStorageSpec(spec.storage ?? 'file');
  if (backend.backend === 'file') {
    const rootImage = `${storageDir}/${spec.name}.img`;
    if (layout === 'whole-disk') {
      return { backend: 'file', layout, rootImage, swapImage: null, diskLayout: planDiskLayout({ diskBytes: spec.diskBytes, swapBytes: spec.swapBytes, fs: spec.fs }), domain: {} };
    }
    const swapBytes = Math.ceil(spec.swapBytes / MiB) * MiB;
    const rootBytes = Math.floor((spec.diskBytes - swapBytes) / MiB) * MiB;
    const swapImage = swapBytes > 0 ? swapImagePath(storageDir, spec.name) : null;
    return {
      backend: 'file',
      layout,
      rootImage,
      swapImage,
      diskLayout: partitionsLayout(rootBytes, swapBytes, spec.fs),
      domain: { diskLayout: swapImage ? { kind: 'partitions', swapPath: swapImage } : { kind: 'partitions' } },
    };
  }
  if (!lvmFacts) throw invalidInput(`no facts about volume group ${backend.vg}`, 'this is a bug: the build reads them with vgs first');
  const lvm = planLvmStorage({
    vg: backend.vg,
    ...(backend.thinPool ? { thinPool: backend.thinPool } : {}),
    vmName: spec.name,
    hypervisor: spec.hypervisor === 'xen' ? 'xen' : 'kvm',
    diskBytes: spec.diskBytes,
    swapBytes: spec.swapBytes,
    fs: spec.fs,
    layout,
    ...(lvmFacts.vgFreeBytes === undefined ? {} : { vgFreeBytes: lvmFacts.vgFreeBytes }),
    extentBytes: lvmFacts.extentBytes,
    ...(lvmFacts.poolFreeBytes === undefined ? {} : { poolFreeBytes: lvmFacts.poolFreeBytes }),
  });
  const diskLayout =
    lvm.diskLayout ??
    partitionsLayout(lvm.volumes.find((v) => v.role === 'root')?.sizeBytes ?? 0, lvm.volumes.find((v) => v.role === 'swap')?.sizeBytes ?? 0, spec.fs);
  return { backend: 'lvm', layout, lvm, note: lvmFacts.note ?? null, diskLayout, domain: lvm.domain };
}

/** Root (index 1, xvda1) and swap (index 2, xvda2), each the whole of its own device. */
function partitionsLayout(rootBytes: number, swapBytes: number, fs: VmSpec['fs']): DiskLayout {
  if (rootBytes < MIN_ROOT_BYTES[fs]) {
    throw invalidInput(`the root device would be ${formatSize(Math.max(rootBytes, 0))}; ${fs} needs at least ${formatSize(MIN_ROOT_BYTES[fs])}`, 'make --disk larger or --swap smaller');
  }
  const part = (index: number, role: 'root' | 'swap', sizeBytes: number): PartitionPlan => ({
    index,
    role,
    type: role === 'root' ? PARTITION_TYPE_LINUX : PARTITION_TYPE_SWAP,
    bootable: false,
    startLba: 0,
    sectors: sizeBytes / SECTOR_SIZE,
    offsetBytes: 0,
    sizeBytes,
  });
  const partitions = [part(1, 'root', rootBytes), ...(swapBytes > 0 ? [part(2, 'swap', swapBytes)] : [])];
  return { diskBytes: rootBytes + swapBytes, sectorSize: SECTOR_SIZE, totalSectors: (rootBytes + swapBytes) / SECTOR_SIZE, firstPartitionLba: 0, partitions };
}

export function storageDiskSteps(spec: VmSpec, st: StoragePlan, partitionAccess: string): PlannedStep[] {
  const size = (n: number) => formatSize(n);
  if (st.backend === 'file') {
    if (st.layout === 'whole-disk') {
      return [
        { id: 'disk.create', title: `Create ${size(spec.diskBytes)} sparse disk + MBR` },
        { id: 'disk.attach', title: `Attach partitions (${partitionAccess})` },
      ];
    }
    const [root, swap] = st.diskLayout.partitions;
    return [
      { id: 'disk.create', title: `Create sparse images, no partition table: root ${size(root?.sizeBytes ?? 0)}${swap ? `, swap ${size(swap.sizeBytes)}` : ''}` },
      { id: 'disk.attach', title: `Attach ${swap ? 'each image to a loop device' : 'the image to a loop device'} (no offset)` },
    ];
  }
  const lvs = st.lvm.volumes.map((v) => `${v.lv} ${size(v.sizeBytes)}`).join(', ');
  const thin = st.lvm.thinPool ? ` (thin, pool ${st.lvm.thinPool})` : '';
  if (st.layout === 'whole-disk') {
    return [
      { id: 'disk.create', title: `Create logical volume ${lvs}${thin} in ${st.lvm.vg} + MBR` },
      { id: 'disk.attach', title: `Attach partitions of the LV (${partitionAccess})` },
    ];
  }
  return [
    { id: 'disk.create', title: `Create logical volumes ${lvs}${thin} in ${st.lvm.vg}, no partition table` },
    { id: 'disk.attach', title: 'Use the logical volumes as root and swap devices (nothing to attach)' },
  ];
}

/** The disk lines of `--dry-run`, with every LVM command as it will run. */
export function describeStorage(st: StoragePlan, spec: VmSpec, mbrLines: string[]): string[] {
  if (st.backend === 'file') {
    if (st.layout === 'whole-disk') return [`  disk:     ${st.rootImage} raw sparse ${formatSize(spec.diskBytes)}, MBR:`, ...mbrLines];
    const [root, swap] = st.diskLayout.partitions;
    return [
      `  disk:     Xen partitions layout, no partition table (root fs made on the whole image):`,
      `    xvda1: root ${st.rootImage} raw sparse ${formatSize(root?.sizeBytes ?? 0)}`,
      ...(swap && st.swapImage ? [`    xvda2: swap ${st.swapImage} raw sparse ${formatSize(swap.sizeBytes)}`] : []),
    ];
  }
  const l = st.lvm;
  const argv = (a: string[]) => `    $ ${a.join(' ')}`;
  return [
    `  storage:  LVM, volume group ${l.vg}${l.thinPool ? `, thin pool ${l.thinPool}` : ''}, extent ${formatSize(l.extentBytes)}, ${formatSize(l.totalBytes)} in all${st.note ? ` (${st.note})` : ''}`,
    ...(st.layout === 'whole-disk'
      ? [`  disk:     ${l.volumes[0]?.device} (block), MBR:`, ...mbrLines]
      : [`  disk:     Xen partitions layout, no partition table:`, ...l.volumes.map((v, i) => `    xvda${i + 1}: ${v.role} ${v.device} (block) ${formatSize(v.sizeBytes)}`)]),
    `  lvm commands:`,
    ...l.volumes.map((v) => argv(v.create)),
    `  undo / destroy:`,
    ...l.undo.map(argv),
  ];
}

/** What `vm destroy` removes for a VM's storage, from its recorded spec: image files, or lvremove argv. */
export interface StorageDestroyPlan {
  /** Image files (root/whole disk first); empty under LVM. */
  files: string[];
  /** Backing files or devices whose loop devices are released first. */
  loopBackings: string[];
  lvremove: string[][];
}

export function planStorageDestroy(spec: Pick<VmSpec, 'name' | 'hypervisor' | 'xenDisk' | 'storage' | 'swapBytes'>, storageDir: string, diskPath: string): StorageDestroyPlan {
  const layout = diskLayoutKindOf(spec);
  const backend = parseStorageSpec(spec.storage ?? 'file');
  if (backend.backend === 'lvm') {
    return { files: [], loopBackings: layout === 'whole-disk' ? [diskPath] : [], lvremove: lvmDestroyArgv(backend, spec.name, layout, spec.swapBytes) };
  }
  const files = layout === 'partitions' && spec.swapBytes > 0 ? [diskPath, swapImagePath(storageDir, spec.name)] : [diskPath];
  return { files, loopBackings: files, lvremove: [] };
}
