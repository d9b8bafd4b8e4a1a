/**
 * Host programs: finding them on PATH, and saying which one is missing and which Debian package has it, so a
 * build fails up front with an install hint instead of halfway through.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { VmforgeError } from '../errors.js';

/** Which Debian package ships each host program; used in MISSING_TOOL hints. */
export const TOOL_PACKAGES: Record<string, string> = {
  virsh: 'libvirt-clients',
  'qemu-img': 'qemu-utils',
  'qemu-storage-daemon': 'qemu-system-common',
  debootstrap: 'debootstrap',
  zstd: 'zstd',
  tar: 'tar',
  losetup: 'mount',
  partx: 'util-linux',
  sfdisk: 'fdisk',
  'mkfs.ext4': 'e2fsprogs',
  'mkfs.xfs': 'xfsprogs',
  mkswap: 'util-linux',
  blkid: 'util-linux',
  mount: 'mount',
  umount: 'mount',
  'grub-mkimage': 'grub-common',
  'virt-xml-validate': 'libvirt-clients',
  pigz: 'pigz',
  gzip: 'gzip',
  xz: 'xz-utils',
  openssl: 'openssl',
  xorriso: 'xorriso',
  nsupdate: 'bind9-dnsutils',
  dig: 'bind9-dnsutils',
  dnsmasq: 'dnsmasq-base',
};

const DEFAULT_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Path of an executable: `program` itself when it contains a '/', else the first match on PATH; null when none.
 * Synchronous because argv builders (pigz or gzip?) ask while building an argv; it is a few access() calls.
 */
export function which(program: string, pathEnv = process.env.PATH ?? DEFAULT_PATH): string | null {
  const candidates = program.includes('/') ? [program] : pathEnv.split(delimiter).filter(Boolean).map((d) => join(d, program));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return null;
}

export function missingTool(program: string): VmforgeError {
  const pkg = TOOL_PACKAGES[program];
  return new VmforgeError('MISSING_TOOL', `required host program '${program}' is not installed`, {
    hint: pkg ? `install it with: apt-get install ${pkg}` : `install the package that provides '${program}'`,
  });
}

export async function requireTools(programs: readonly string[]): Promise<void> {
  const missing = programs.filter((p) => !which(p));
  if (!missing.length) return;
  const pkgs = [...new Set(missing.map((m) => TOOL_PACKAGES[m] ?? m))];
  throw new VmforgeError('MISSING_TOOL', `required host program(s) not installed: ${missing.join(', ')}`, {
    hint: `install with: apt-get install ${pkgs.join(' ')}`,
  });
}
