/** The shape every family adapter has; see adapter.ts for how the caller drives one. */
import type { FileEdit } from '../model/spec.js';
import type { GuestFiles, GuestFilesNeeded } from './current-files.js';
import type { GuestFamily } from './families.js';
import type { GuestEditInput } from './input.js';

export interface GuestAdapter {
  readonly family: GuestFamily;
  /**
   * What edits() reads. Without `listed`: the first read. With the snapshot of that first read: everything,
   * including files found by listing directories (BLS entries, NetworkManager profiles).
   */
  filesToRead(input: GuestEditInput, listed?: GuestFiles): GuestFilesNeeded;
  /** Pure: the edits that make the template root this VM, in the order they must be applied. */
  edits(input: GuestEditInput, current: GuestFiles): FileEdit[];
}
