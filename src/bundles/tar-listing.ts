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
