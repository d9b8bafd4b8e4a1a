/**
 * What `vmforge bundle create` leaves out of a bundle made from a live system, as GNU tar --exclude patterns
 * (shell wildcards, '*' also matches '/', matched against member names, which start with './'). Pure: the facts
 * that depend on the host (active swap files, where the bundle store is) are passed in.
 *
 * machine-id cannot be excluded that way: its file must stay (empty, so systemd treats the first boot as the
 * first), and tar has no "archive this file empty". createBundle excludes it and adds an empty file with the same
 * owner, mode and time under the same name instead (`emptyFiles`).
 */
import { posix } from 'node:path';
import { invalidInput } from '../errors.js';
import { SCRATCH_EXCLUDES } from './create.js';

export const LIVE_SYSTEM_EXCLUDES: readonly string[] = Object.freeze([
  ...SCRATCH_EXCLUDES,
  // mkfs makes a fresh one on the VM disk.
  'lost+found',
  // Package caches: large, stale by the time a VM boots, refetched by the package manager.
  './var/cache/apt/archives/*.deb',
  './var/cache/apt/archives/partial/*',
  './var/cache/apt/*.bin',
  './var/lib/apt/lists/*',
  './var/cache/dnf/*',
  './var/cache/yum/*',
  './var/cache/zypp/packages/*',
  './var/cache/pacman/pkg/*',
  './var/cache/apk/*',
  // DHCP leases: a VM asking for its template's address would confuse the DHCP server.
  './var/lib/dhcp/*.leases',
  './var/lib/dhcp/*.lease',
  './var/lib/dhclient/*',
  './var/lib/dhcpcd/*',
  './var/lib/NetworkManager/*.lease',
  './var/lib/NetworkManager/dhclient-*',
  './var/lib/systemd/netif/leases/*',
  './var/lib/wicked/lease-*',
  // Per-machine secrets: every VM must get its own.
  './etc/ssh/ssh_host_*',
  './var/lib/systemd/random-seed',
]);

/** Archived empty instead of with their content (see the file comment). */
export const LIVE_SYSTEM_EMPTIED: readonly string[] = Object.freeze(['./etc/machine-id']);

/**
 * dbus keeps its own copy on older systems. An empty one would be invalid for dbus, so it goes (when it is a
 * regular file; the usual symlink to /etc/machine-id stays); dbus falls back to /etc/machine-id.
 */
export const DBUS_MACHINE_ID = './var/lib/dbus/machine-id';

export interface LiveFacts {
  /** Absolute, symlinks resolved. */
  root: string;
  /** Active swap files (absolute host paths, from /proc/swaps). */
  swapFiles: readonly string[];
  /** The bundle store (absolute, symlinks resolved): the bundle being written lands in it. */
  storeDir: string;
  /** /var/lib/dbus/machine-id in the root is a regular file. */
  dbusMachineIdIsFile: boolean;
}

/** The default list plus the host-dependent patterns, then the user's. */
export function liveSystemExcludes(facts: LiveFacts, extra: readonly string[] = []): string[] {
  const out = [...LIVE_SYSTEM_EXCLUDES];
  for (const swap of facts.swapFiles) {
    const member = memberNameInRoot(facts.root, swap);
    if (member) out.push(escapeWildcards(member));
  }
  const store = memberNameInRoot(facts.root, facts.storeDir);
  if (store) out.push(`${escapeWildcards(store)}/*`);
  if (facts.dbusMachineIdIsFile) out.push(DBUS_MACHINE_ID);
  for (const e of extra) out.push(normalizeExcludePattern(e));
  return [...new Set(out)];
}

/** `./rel/path` when `absPath` is strictly inside `root`; undefined otherwise. Both absolute, normalized. */
export function memberNameInRoot(root: string, absPath: string): string | undefined {
  const rel = posix.relative(posix.normalize(root), posix.normalize(absPath));
  if (!rel || rel === '..' || rel.startsWith('../') || posix.isAbsolute(rel)) return undefined;
  return `./${rel}`;
}

/**
 * Patterns as users write them: `/var/log/*` means the root's /var/log, which tar names `./var/log/...`; a
 * pattern without a leading '/' or './' (like `*.pyc`, `lost+found`) matches anywhere, as tar does.
 */
export function normalizeExcludePattern(pattern: string): string {
  if (!pattern || /[\n\0]/.test(pattern)) throw invalidInput(`exclude pattern ${JSON.stringify(pattern)} is empty or contains a newline/NUL`);
  if (pattern === '/' || pattern === './' || pattern === '.') throw invalidInput(`exclude pattern '${pattern}' would exclude the whole root`);
  if (pattern.startsWith('/')) return `.${pattern.replace(/\/+$/, '')}`;
  return pattern.replace(/(.)\/+$/, '$1');
}

/** Swap areas from /proc/swaps that are files (partitions are not in the root). Octal escapes (\040) decoded. */
export function parseProcSwaps(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n').slice(1)) {
    const [path, type] = line.trim().split(/\s+/);
    if (!path || type !== 'file') continue;
    out.push(path.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8))));
  }
  return out;
}

/** A literal path as a tar wildcard pattern. */
export function escapeWildcards(path: string): string {
  return path.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
