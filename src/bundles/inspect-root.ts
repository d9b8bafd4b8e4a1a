/**
 * What createBundle records about a template root: its OS, kernels and architecture. Read through GuestRoot, so a
 * link such as /etc/os-release -> /usr/lib/os-release reads the guest's file, never the host's.
 */
import { GuestRoot } from '../exec/guestfs/guest-root.js';
import {
  ALL_BOOTLOADER_PROBE_PATHS,
  detectBootloader,
  detectOs,
  elfArch,
  findKernels,
  parseOsRelease,
  RELEASE_FILE_PATHS,
  type Bootloader,
  type KernelEntry,
  type Manifest,
  type ReleaseFiles,
} from './manifest.js';

const OS_RELEASE_MAX_BYTES = 1024 * 1024;
/** Enough for the ELF identification and e_machine. */
const ELF_HEAD_BYTES = 64;

export async function readOsRelease(guest: GuestRoot): Promise<Record<string, string>> {
  for (const p of ['/etc/os-release', '/usr/lib/os-release']) {
    const buf = await guest.readHead(p, OS_RELEASE_MAX_BYTES);
    if (buf) return parseOsRelease(buf.toString('utf8'));
  }
  return {};
}

export async function listKernels(guest: GuestRoot): Promise<KernelEntry[]> {
  return findKernels(await guest.list('/boot'));
}

/** The release files detectOs reads, each from the first of its candidate paths that is a regular file. */
export async function readReleaseFiles(guest: GuestRoot): Promise<ReleaseFiles> {
  const first = async (paths: readonly string[]) => {
    for (const p of paths) {
      const buf = await guest.readHead(p, OS_RELEASE_MAX_BYTES);
      if (buf) return buf.toString('utf8');
    }
    return undefined;
  };
  return {
    osRelease: await first(RELEASE_FILE_PATHS.osRelease),
    redhatRelease: await first(RELEASE_FILE_PATHS.redhatRelease),
    debianVersion: await first(RELEASE_FILE_PATHS.debianVersion),
    suseRelease: await first(RELEASE_FILE_PATHS.suseRelease),
    archRelease: (await first(RELEASE_FILE_PATHS.archRelease)) !== undefined,
  };
}

export async function probeBootloader(guest: GuestRoot): Promise<Bootloader> {
  const present = new Set<string>();
  for (const p of ALL_BOOTLOADER_PROBE_PATHS) if (await guest.exists(p)) present.add(p);
  return detectBootloader((p) => present.has(p));
}

/** Machine name of the root's userland, from the ELF header of a binary every Linux root has. */
export async function detectArch(guest: GuestRoot): Promise<string | undefined> {
  for (const p of ['/usr/bin/env', '/bin/sh', '/usr/bin/sh', '/sbin/init', '/usr/lib/systemd/systemd']) {
    const head = await guest.readHead(p, ELF_HEAD_BYTES);
    const arch = head && elfArch(head);
    if (arch) return arch;
  }
  return undefined;
}

/** What createBundle puts in the manifest about the root itself. `root` is an absolute host directory. */
export async function inspectRoot(root: string): Promise<Pick<Manifest, 'os' | 'kernels'> & { arch: string | undefined; bootloader: Bootloader }> {
  const guest = new GuestRoot(root);
  const [release, kernels, arch, bootloader] = await Promise.all([readReleaseFiles(guest), listKernels(guest), detectArch(guest), probeBootloader(guest)]);
  return { os: detectOs(release), kernels, arch, bootloader };
}
