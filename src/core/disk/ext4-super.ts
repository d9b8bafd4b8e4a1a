/**
 * The few ext4 superblock fields the warm build decides on (pure): whether resize2fs will demand an `e2fsck -f`
 * first (it does unless the filesystem is clean, error-free and checked no earlier than its last mount), and
 * whether `tune2fs -U` is a superblock write (metadata_csum_seed) or a rewrite of every metadata checksum.
 */

/** The superblock starts 1024 bytes into the filesystem and is 1024 bytes long. */
export const EXT4_SUPER_OFFSET = 1024;
export const EXT4_SUPER_BYTES = 1024;

const MAGIC = 0xef53;
const STATE_VALID = 0x1;
const STATE_ERROR = 0x2;
const RO_COMPAT_METADATA_CSUM = 0x400;
const INCOMPAT_CSUM_SEED = 0x2000;
const INCOMPAT_64BIT = 0x80;

export interface Ext4Super {
  blockSize: number;
  blocksCount: number;
  freeBlocksCount: number;
  inodesCount: number;
  freeInodesCount: number;
  /** Seconds since the epoch (with the 8 high bits of the 64-bit time fields). */
  mountTime: number;
  lastCheckTime: number;
  clean: boolean;
  hasErrors: boolean;
  metadataCsum: boolean;
  csumSeed: boolean;
}

export function parseExt4Super(sb: Uint8Array): Ext4Super {
  if (sb.length < EXT4_SUPER_BYTES) throw new Error(`an ext4 superblock is ${EXT4_SUPER_BYTES} bytes, got ${sb.length}`);
  const v = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
  const u32 = (o: number) => v.getUint32(o, true);
  if (v.getUint16(0x38, true) !== MAGIC) throw new Error('not an ext2/3/4 superblock (bad magic)');
  const incompat = u32(0x60);
  const is64 = (incompat & INCOMPAT_64BIT) !== 0;
  const state = v.getUint16(0x3a, true);
  return {
    blockSize: 1024 * 2 ** u32(0x18),
    blocksCount: u32(0x04) + (is64 ? u32(0x150) * 2 ** 32 : 0),
    freeBlocksCount: u32(0x0c) + (is64 ? u32(0x158) * 2 ** 32 : 0),
    inodesCount: u32(0x00),
    freeInodesCount: u32(0x10),
    mountTime: u32(0x2c) + (sb[0x275] as number) * 2 ** 32,
    lastCheckTime: u32(0x40) + (sb[0x277] as number) * 2 ** 32,
    clean: (state & STATE_VALID) !== 0,
    hasErrors: (state & STATE_ERROR) !== 0,
    metadataCsum: (u32(0x64) & RO_COMPAT_METADATA_CSUM) !== 0,
    csumSeed: (incompat & INCOMPAT_CSUM_SEED) !== 0,
  };
}

/** resize2fs (unmounted, without -f) refuses to run and asks for `e2fsck -f` exactly in these cases. */
export function resizeNeedsCheck(s: Ext4Super): boolean {
  return !s.clean || s.hasErrors || s.lastCheckTime < s.mountTime || s.freeBlocksCount > s.blocksCount || s.freeInodesCount > s.inodesCount;
}
