/**
 * What a guest adapter reads from the guest before it plans edits. The adapter says what it needs
 * (GuestFilesNeeded); exec/guestfs reads exactly that (GuestRoot.snapshot) and hands it back (GuestFiles), so the
 * adapter stays pure and its tests need no file system.
 */
import { VmforgeError } from '../../errors.js';

export interface GuestFilesNeeded {
  /** Files whose text is needed. */
  files: string[];
  /** Directories whose entry names are needed. */
  dirs: string[];
  /** Paths whose own symlink target is needed (the last component is not followed). */
  links: string[];
}

export interface GuestFiles {
  /** Text of each file; null when it does not exist. */
  files: Readonly<Record<string, string | null>>;
  /** Sorted entry names of each directory; [] when it does not exist. */
  dirs: Readonly<Record<string, readonly string[]>>;
  /** Target of each symlink, verbatim; null when the path is not a symlink or does not exist. */
  links: Readonly<Record<string, string | null>>;
}

/** Every path of both, without duplicates, in first-seen order. */
export function mergeNeeds(...needs: readonly GuestFilesNeeded[]): GuestFilesNeeded {
  const uniq = (xs: string[]) => [...new Set(xs)];
  return {
    files: uniq(needs.flatMap((n) => n.files)),
    dirs: uniq(needs.flatMap((n) => n.dirs)),
    links: uniq(needs.flatMap((n) => n.links)),
  };
}

// A path the caller did not read is a bug in the caller, not a missing file: the accessors never guess.

export function fileOf(current: GuestFiles, p: string): string | null {
  if (!Object.hasOwn(current.files, p)) throw new VmforgeError('INTERNAL', `guest file ${p} was not read (see the adapter's filesToRead)`);
  return current.files[p] ?? null;
}

export function dirOf(current: GuestFiles, p: string): readonly string[] {
  if (!Object.hasOwn(current.dirs, p)) throw new VmforgeError('INTERNAL', `guest directory ${p} was not listed (see the adapter's filesToRead)`);
  return current.dirs[p] ?? [];
}

export function linkOf(current: GuestFiles, p: string): string | null {
  if (!Object.hasOwn(current.links, p)) throw new VmforgeError('INTERNAL', `guest link ${p} was not read (see the adapter's filesToRead)`);
  return current.links[p] ?? null;
}
