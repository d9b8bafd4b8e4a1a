/**
 * Counts what GNU tar archived from its `-vv` listing (sent to a side pipe with --index-file), so the file count
 * and unpacked size come from the same single pass that produces the archive, and match it exactly.
 *
 * A line looks like `-rw-r--r--+ 0/0   1234 2024-01-01 12:00 ./path` (`ls -l` style; device nodes show
 * `major,minor` in the size column, hard links are type `h` with size 0). Only the first three columns are read,
 * so odd file names (tar escapes newlines as `\n`) cannot confuse it.
 */
export interface TarTotals {
  entries: number;
  /** Sum of regular file sizes (apparent size for sparse files; hard links add nothing). */
  bytes: number;
}

export function emptyTotals(): TarTotals {
  return { entries: 0, bytes: 0 };
}

/** Adds one listing line to the totals; returns false for a line that is not an entry (left uncounted). */
export function addListingLine(totals: TarTotals, line: string): boolean {
  const m = /^([-hdlcbpsCDMNLKSV])\S*\s+\S+\s+(\S+)\s/.exec(line);
  if (!m) return false;
  totals.entries++;
  // Contiguous ('C') files are regular files for our purpose.
  if (m[1] === '-' || m[1] === 'C') {
    const size = Number(m[2]);
    if (Number.isSafeInteger(size)) totals.bytes += size;
  }
  return true;
}

export interface ListingEntry {
  /** ls-style type letter: '-' file, 'd' directory, 'l' symlink, 'h' hard link, 'c'/'b' devices, ... */
  type: string;
  /** Normalized: no leading './' or '/', no trailing '/' ('' for the root itself). */
  path: string;
  /** Symlink target (verbatim) or hard link target (normalized like `path`). */
  linkTarget?: string;
}

/**
 * The member of one `tar -tvv` line (`-rw-r--r-- 0/0  6 2026-07-02 19:03 ./etc/debian_version`), or undefined for
 * a line that is not an entry. A name that itself contains ' -> ' or ' link to ' is split at the first one: only
 * the paths vmforge probes (os-release, /boot, ...) are looked at, and none of those has one.
 */
export function parseListingEntry(line: string): ListingEntry | undefined {
  const m = /^([-hdlcbpsCDMNLKSV])\S*\s+\S+\s+\S+\s+\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)? (.*)$/.exec(line);
  if (!m) return undefined;
  const type = m[1] as string;
  let name = m[2] as string;
  let linkTarget: string | undefined;
  const sep = type === 'l' ? ' -> ' : type === 'h' ? ' link to ' : undefined;
  if (sep) {
    const i = name.indexOf(sep);
    if (i >= 0) {
      linkTarget = name.slice(i + sep.length);
      name = name.slice(0, i);
      if (type === 'h') linkTarget = normalizeMemberName(linkTarget);
    }
  }
  return { type, path: normalizeMemberName(name), ...(linkTarget !== undefined ? { linkTarget } : {}) };
}

/** `./etc/x`, `/etc/x`, `etc/x/` -> `etc/x`; `./` -> ''. */
export function normalizeMemberName(name: string): string {
  return name.replace(/^(\.\/|\/)+/, '').replace(/^\.$/, '').replace(/\/+$/, '');
}
