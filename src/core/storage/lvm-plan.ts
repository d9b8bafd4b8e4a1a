/**
 * LVM storage as data: which logical volumes a VM gets, the exact lvcreate/lvremove argv for each, and the
 * device paths the rest of the build uses. Pure: the VG's free space and extent size come in as facts (from
 * `vgs`/`lvs`, whose output is parsed here too), so a plan is fully decided before anything runs.
 *
 * KVM/QEMU: one LV per VM (`vmf-NAME`) holding a whole disk, with the same MBR layout as the file backend's
 * image. Xen PV: one LV per partition (`vmf-NAME-root`, `vmf-NAME-swap`) and no partition table, the classic
 * Xen layout (xvda1, xvda2).
 */
import { invalidInput, VmforgeError } from '../../errors.js';
import { MIN_ROOT_BYTES, planDiskLayout, type DiskLayout } from '../disk/layout.js';
import type { DomainDiskLayout } from '../domain-xml/defaults.js';
import type { DomainType } from '../domain-xml/model.js';
import type { FsType } from '../model/spec.js';
import { validateVmName } from '../names.js';
import { formatSize, MiB } from '../units.js';

/** Every LV vmforge makes starts with this, so `lvs` shows at a glance which volumes are vmforge's. */
export const LV_PREFIX = 'vmf-';

export type StorageSpec = { backend: 'file' } | LvmStorageSpec;
export interface LvmStorageSpec {
  backend: 'lvm';
  vg: string;
  /** A thin pool in `vg`: volumes are thin (`lvcreate -V ... --thinpool`), allocated as they are written. */
  thinPool?: string;
}

// ---------------------------------------------------------------------------------------------------
// Names

const NAME_RE = /^[A-Za-z0-9+_.-]+$/;
/** NAME_LEN in lvm2 is 128 including the NUL. */
const MAX_NAME = 127;
/** Device-mapper names (VG and LV joined by '-', each '-' doubled) are limited to DM_NAME_LEN - 1. */
const MAX_DM_NAME = 127;
/** Substrings lvm2 keeps for its hidden sub-volumes (lvm(8), "VALID NAMES"; lvm 2.03 adds the VDO and writecache ones). */
const RESERVED_LV_SUBSTRINGS = ['_cdata', '_cmeta', '_corig', '_cpool', '_cvol', '_iorig', '_mimage', '_mlog', '_pmspare', '_rimage', '_rmeta', '_tdata', '_tmeta', '_vdata', '_vorigin', '_wcorig'];
/** lvm2 refuses LV names starting with these. */
const RESERVED_LV_PREFIXES = ['snapshot', 'pvmove'];

export type LvmNameKind = 'volume group' | 'logical volume' | 'thin pool';

/** Validates a VG or LV name by lvm2's rules; returns it unchanged. */
export function validateLvmName(kind: LvmNameKind, name: string): string {
  const hint = "use letters, digits and '+', '_', '.', '-' (not first)";
  if (name.length === 0) throw invalidInput(`${kind} name is empty`, hint);
  if (name.length > MAX_NAME) throw invalidInput(`${kind} name is ${name.length} characters long; LVM allows ${MAX_NAME}`);
  if (!NAME_RE.test(name)) throw invalidInput(`${kind} name ${JSON.stringify(name)} has characters LVM does not allow`, hint);
  if (name.startsWith('-')) throw invalidInput(`${kind} name ${JSON.stringify(name)} starts with '-'`, hint);
  if (name === '.' || name === '..') throw invalidInput(`${kind} name ${JSON.stringify(name)} is reserved`, 'choose another name');
  if (kind !== 'volume group') {
    const prefix = RESERVED_LV_PREFIXES.find((p) => name.startsWith(p));
    if (prefix !== undefined) throw invalidInput(`${kind} name ${JSON.stringify(name)} starts with '${prefix}', which LVM reserves`, 'choose another name');
    const sub = RESERVED_LV_SUBSTRINGS.find((s) => name.includes(s));
    if (sub !== undefined) throw invalidInput(`${kind} name ${JSON.stringify(name)} contains '${sub}', which LVM reserves for internal volumes`, 'choose another name');
  }
  return name;
}

/** The /dev/mapper name of VG/LV. */
export function dmName(vg: string, lv: string): string {
  return `${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`;
}

function checkDmName(vg: string, lv: string): void {
  const n = dmName(vg, lv).length;
  if (n > MAX_DM_NAME) {
    throw invalidInput(`the device-mapper name of ${vg}/${lv} would be ${n} characters; the limit is ${MAX_DM_NAME}`, 'use a shorter VM or volume group name');
  }
}

/**
 * Parses a storage spec: 'file' (image files in the storage dir), 'lvm:VG' (linear LVs in VG), or
 * 'lvm:VG/POOL' (thin LVs from the thin pool POOL in VG).
 */
export function parseStorageSpec(text: string): StorageSpec {
  const t = text.trim();
  if (t === 'file') return { backend: 'file' };
  if (t.startsWith('lvm:')) return parseLvmStorageSpec(t);
  throw invalidInput(`storage ${JSON.stringify(text)} is not a storage backend`, "use 'file', 'lvm:VG' or 'lvm:VG/THINPOOL'");
}

export function parseLvmStorageSpec(text: string): LvmStorageSpec {
  const m = /^lvm:([^/]*)(?:\/([^/]*))?$/.exec(text.trim());
  if (!m) throw invalidInput(`storage ${JSON.stringify(text)} is not of the form lvm:VG or lvm:VG/THINPOOL`, 'for example lvm:vg0 or lvm:vg0/pool0');
  const vg = validateLvmName('volume group', m[1] ?? '');
  if (m[2] === undefined) return { backend: 'lvm', vg };
  return { backend: 'lvm', vg, thinPool: validateLvmName('thin pool', m[2]) };
}

// ---------------------------------------------------------------------------------------------------
// Facts from vgs / lvs

export interface VgFacts {
  freeBytes: number;
  extentBytes: number;
}

/** `vgs` for one VG's free space and extent size, in bytes without suffix (parsed by parseVgsOutput). */
export function vgsArgv(vg: string): string[] {
  return ['vgs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'vg_free,vg_extent_size', validateLvmName('volume group', vg)];
}

const BYTES_RE = /^\d+$/;

function bytesField(value: string | undefined, what: string, source: string): number {
  const n = Number(value);
  if (value === undefined || !BYTES_RE.test(value) || !Number.isSafeInteger(n)) {
    throw new VmforgeError('COMMAND_FAILED', `cannot read ${what} from ${source} output: ${JSON.stringify(value ?? '')}`);
  }
  return n;
}

export function parseVgsOutput(stdout: string, vg: string): VgFacts {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length !== 1) {
    throw new VmforgeError('COMMAND_FAILED', `vgs printed ${lines.length} lines for volume group ${vg}, expected 1`, {
      hint: 'check the name with `vgs`; two VGs with one name need --select vg_uuid=...',
    });
  }
  const [free, extent, ...rest] = lines[0]!.split(/\s+/);
  if (rest.length > 0) throw new VmforgeError('COMMAND_FAILED', `vgs printed more fields than asked for: ${JSON.stringify(lines[0])}`);
  const facts = { freeBytes: bytesField(free, 'vg_free', 'vgs'), extentBytes: bytesField(extent, 'vg_extent_size', 'vgs') };
  checkExtent(facts.extentBytes);
  return facts;
}

export interface ThinPoolFacts {
  sizeBytes: number;
  /** data_percent: how full the pool's data volume is. */
  dataPercent: number;
  /** Bytes of the pool not yet allocated to any thin volume. */
  freeBytes: number;
}

/** `lvs` for one thin pool's size and usage (parsed by parseThinPoolLvsOutput). */
export function thinPoolLvsArgv(vg: string, pool: string): string[] {
  return [
    'lvs',
    '--noheadings',
    '--units',
    'b',
    '--nosuffix',
    '-o',
    'lv_size,data_percent,lv_attr',
    `${validateLvmName('volume group', vg)}/${validateLvmName('thin pool', pool)}`,
  ];
}

export function parseThinPoolLvsOutput(stdout: string, vg: string, pool: string): ThinPoolFacts {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length !== 1) throw new VmforgeError('COMMAND_FAILED', `lvs printed ${lines.length} lines for ${vg}/${pool}, expected 1`);
  const [size, percent, attr, ...rest] = lines[0]!.split(/\s+/);
  if (rest.length > 0 || attr === undefined) throw new VmforgeError('COMMAND_FAILED', `unexpected lvs output for ${vg}/${pool}: ${JSON.stringify(lines[0])}`);
  // lv_attr's first character is the volume type; 't' is a thin pool.
  if (!attr.startsWith('t')) {
    throw invalidInput(`${vg}/${pool} is not a thin pool (lv_attr ${attr})`, `create one with lvcreate --type thin-pool -L SIZE -n ${pool} ${vg}, or use lvm:${vg}`);
  }
  const sizeBytes = bytesField(size, 'lv_size', 'lvs');
  const m = /^(\d{1,3})(?:\.(\d{1,2}))?$/.exec(percent ?? '');
  if (!m) throw new VmforgeError('COMMAND_FAILED', `cannot read data_percent from lvs output: ${JSON.stringify(percent ?? '')}`);
  // Hundredths of a percent as an integer, and BigInt, so a multi-TiB pool loses no bytes to float rounding.
  const hundredths = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  if (hundredths > 10000) throw new VmforgeError('COMMAND_FAILED', `data_percent ${percent} of ${vg}/${pool} is over 100`);
  const freeBytes = Number((BigInt(sizeBytes) * BigInt(10000 - hundredths)) / 10000n);
  return { sizeBytes, dataPercent: hundredths / 100, freeBytes };
}

function checkExtent(extentBytes: number): void {
  // lvm2 extents are a power of two of at least one sector.
  if (!Number.isSafeInteger(extentBytes) || extentBytes < 512 || (extentBytes & (extentBytes - 1)) !== 0) {
    throw invalidInput(`extent size ${String(extentBytes)} is not a power of two of at least 512 bytes`);
  }
}

// ---------------------------------------------------------------------------------------------------
// The plan

export type LvRole = 'disk' | 'root' | 'swap';

export interface LvmVolumePlan {
  role: LvRole;
  lv: string;
  /** Rounded up to whole extents, as lvcreate would round it: the size the device will really have. */
  sizeBytes: number;
  /** /dev/VG/LV: the stable path lvm(8) recommends over /dev/mapper names. */
  device: string;
  create: string[];
  undo: string[];
}

export interface LvmPlanInput {
  vg: string;
  thinPool?: string;
  vmName: string;
  hypervisor: DomainType;
  /** Total space for the VM, as `--disk`: one LV of this size, or (Xen) root = diskBytes - swapBytes. */
  diskBytes: number;
  swapBytes: number;
  fs?: FsType;
  /** Default: 'whole-disk' under KVM/QEMU, 'partitions' under Xen. Xen HVM needs 'whole-disk'. */
  layout?: DomainDiskLayout['kind'];
  /**
   * From parseVgsOutput. Linear volumes are checked against it; thin volumes do not take VG extents. Absent:
   * not known (a dry run on a host without vgs), so not checked.
   */
  vgFreeBytes?: number;
  extentBytes: number;
  /** From parseThinPoolLvsOutput; thin volumes are checked against it when given. */
  poolFreeBytes?: number;
}

export interface LvmStoragePlan {
  vg: string;
  thinPool: string | null;
  layout: DomainDiskLayout['kind'];
  extentBytes: number;
  /** In creation order. */
  volumes: LvmVolumePlan[];
  /** Every undo argv, in the order to run them (reverse of creation). */
  undo: string[][];
  totalBytes: number;
  /** Whole-disk: the MBR layout written at byte 0 of the one LV, exactly as the file backend does for its image. */
  diskLayout: DiskLayout | null;
  /** What the domain gets (spread into DomainInput). */
  domain: { diskPath: string; diskFormat: 'raw'; diskSourceType: 'block'; diskLayout: DomainDiskLayout };
}

const roundUp = (n: number, unit: number) => Math.ceil(n / unit) * unit;
const roundDown = (n: number, unit: number) => Math.floor(n / unit) * unit;

export function planLvmStorage(input: LvmPlanInput): LvmStoragePlan {
  const vg = validateLvmName('volume group', input.vg);
  const thinPool = input.thinPool === undefined ? null : validateLvmName('thin pool', input.thinPool);
  validateVmName(input.vmName);
  checkExtent(input.extentBytes);
  const { diskBytes, swapBytes, extentBytes } = input;
  if (!Number.isSafeInteger(diskBytes) || diskBytes <= 0) throw invalidInput(`disk size ${String(diskBytes)} is not a positive whole number of bytes`, 'give the disk size like 4G');
  if (!Number.isSafeInteger(swapBytes) || swapBytes < 0) throw invalidInput(`swap size ${String(swapBytes)} is not a whole number of bytes >= 0`, 'give the swap size like 512M, or 0 for no swap');
  const layout = input.layout ?? (input.hypervisor === 'xen' ? 'partitions' : 'whole-disk');
  if (layout === 'partitions' && input.hypervisor !== 'xen') {
    throw invalidInput('one LV per partition is the Xen PV layout; a KVM/QEMU guest needs a whole disk with a partition table', 'leave the layout at whole-disk');
  }

  const volume = (role: LvRole, lv: string, sizeBytes: number): LvmVolumePlan => {
    validateLvmName('logical volume', lv);
    checkDmName(vg, lv);
    const create =
      thinPool === null
        ? ['lvcreate', '-n', lv, '-L', `${sizeBytes}b`, vg, '-y', '--wipesignatures', 'y']
        : ['lvcreate', '-n', lv, '-V', `${sizeBytes}b`, '--thinpool', thinPool, vg, '-y', '--wipesignatures', 'y'];
    return { role, lv, sizeBytes, device: `/dev/${vg}/${lv}`, create, undo: ['lvremove', '-y', `${vg}/${lv}`] };
  };

  let volumes: LvmVolumePlan[];
  let diskLayout: DiskLayout | null = null;
  let domainLayout: DomainDiskLayout;
  if (layout === 'whole-disk') {
    const lvBytes = roundUp(diskBytes, extentBytes);
    // The table describes the device as it will be, after lvcreate's rounding.
    diskLayout = planDiskLayout({ diskBytes: lvBytes, swapBytes, ...(input.fs ? { fs: input.fs } : {}) });
    volumes = [volume('disk', `${LV_PREFIX}${input.vmName}`, lvBytes)];
    domainLayout = { kind: 'whole-disk' };
  } else {
    const rootBytes = diskBytes - swapBytes;
    const minRoot = MIN_ROOT_BYTES[input.fs ?? 'ext4'];
    if (rootBytes < minRoot) {
      throw invalidInput(
        `disk of ${formatSize(diskBytes)} with ${formatSize(swapBytes)} of swap leaves ${formatSize(Math.max(rootBytes, 0))} for the root filesystem; at least ${formatSize(minRoot)} is needed`,
        `make the disk at least ${formatSize(minRoot + swapBytes)}${swapBytes > 0 ? ' or the swap smaller' : ''}`,
      );
    }
    volumes = [volume('root', `${LV_PREFIX}${input.vmName}-root`, roundUp(rootBytes, extentBytes))];
    if (swapBytes > 0) volumes.push(volume('swap', `${LV_PREFIX}${input.vmName}-swap`, roundUp(swapBytes, extentBytes)));
    const swap = volumes.find((v) => v.role === 'swap');
    domainLayout = swap ? { kind: 'partitions', swapPath: swap.device } : { kind: 'partitions' };
  }

  const totalBytes = volumes.reduce((a, v) => a + v.sizeBytes, 0);
  checkSpace(input, vg, thinPool, layout, volumes);

  return {
    vg,
    thinPool,
    layout,
    extentBytes,
    volumes,
    undo: volumes.map((v) => v.undo).reverse(),
    totalBytes,
    diskLayout,
    domain: { diskPath: volumes[0]!.device, diskFormat: 'raw', diskSourceType: 'block', diskLayout: domainLayout },
  };
}

/**
 * Linear LVs take extents from the VG now; thin LVs take pool blocks only as the guest writes, so they are
 * checked against the pool's free data space (when known) rather than the VG: a full pool stalls every
 * thin volume in it, so a VM that would fill it on its own is refused.
 */
function checkSpace(input: LvmPlanInput, vg: string, thinPool: string | null, layout: DomainDiskLayout['kind'], volumes: LvmVolumePlan[]): void {
  const totalBytes = volumes.reduce((a, v) => a + v.sizeBytes, 0);
  const where = thinPool === null ? `volume group ${vg}` : `thin pool ${vg}/${thinPool}`;
  const free = thinPool === null ? input.vgFreeBytes : input.poolFreeBytes;
  if (free === undefined) return;
  if (!Number.isSafeInteger(free) || free < 0) throw invalidInput(`free space of ${where} (${String(free)}) is not a number of bytes`);
  if (totalBytes <= free) return;

  // The largest --disk whose volumes, rounded to extents, still fit.
  const extent = input.extentBytes;
  const swapLv = layout === 'partitions' && input.swapBytes > 0 ? roundUp(input.swapBytes, extent) : 0;
  const largestLvSpace = roundDown(free - swapLv, extent);
  const largestDisk = layout === 'partitions' ? largestLvSpace + input.swapBytes : largestLvSpace;
  const largestMiB = Math.floor(largestDisk / MiB);
  const minRoot = MIN_ROOT_BYTES[input.fs ?? 'ext4'];
  // Smallest disk the layout accepts at all (planDiskLayout adds the 1 MiB boot gap and rounds swap to MiB).
  const smallestDisk = layout === 'partitions' ? minRoot + input.swapBytes : MiB + minRoot + roundUp(input.swapBytes, MiB);
  const hint =
    largestMiB * MiB < smallestDisk
      ? `${where} has no room for this VM; free space in it${thinPool === null ? ' (or vgextend it)' : ' (or lvextend the pool)'}${swapLv > 0 ? ', or use less --swap' : ''}`
      : `the largest disk that fits is ${formatSize(largestMiB * MiB)}: use --disk ${largestMiB}M or less, or free space in ${where}`;
  throw new VmforgeError(
    'INSUFFICIENT_SPACE',
    `${where} has ${formatSize(free)} free; VM ${input.vmName} needs ${formatSize(totalBytes)} (${volumes.map((v) => `${v.lv} ${formatSize(v.sizeBytes)}`).join(' + ')}, in ${formatSize(extent)} extents)`,
    { hint },
  );
}

/**
 * The lvremove argv that destroy runs for a VM built on `storage`, from the spec alone (LV names are derived
 * from the VM name, so nothing else needs recording). Reverse creation order, as the build's undo.
 */
export function lvmDestroyArgv(storage: LvmStorageSpec, vmName: string, layout: DomainDiskLayout['kind'], swapBytes: number): string[][] {
  const lvs = layout === 'whole-disk' ? [`${LV_PREFIX}${vmName}`] : [`${LV_PREFIX}${vmName}-root`, ...(swapBytes > 0 ? [`${LV_PREFIX}${vmName}-swap`] : [])];
  return lvs.reverse().map((lv) => ['lvremove', '-y', `${storage.vg}/${validateLvmName('logical volume', lv)}`]);
}
