/**
 * What a guest adapter reads from the guest before it plans edits. The adapter says what it needs
 * (GuestFilesNeeded); exec/guestfs reads exactly that (GuestRoot.snapshot) and hands it back (GuestFiles), so the
 * adapter stays pure and its tests need no file system.
 */
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
