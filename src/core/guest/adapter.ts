/**
 * The entry point for callers: the adapter for a guest family, and the two-pass read it needs.
 *
 *   const family = resolveGuestFamily(flag, detectGuestFamily({ current: await guest.snapshot(DETECTION_READS),
 *                                                               manifestOs: manifest.os }), manifest.os.prettyName);
 *   const adapter = guestAdapterFor(family);
 *   const current = await readGuestFiles(adapter, input, (needs) => guest.snapshot(needs));
 *   await guest.applyEdits(adapter.edits(input, current));
 */
import type { GuestAdapter } from './adapter-types.js';
import type { GuestFiles, GuestFilesNeeded } from './current-files.js';
import { debianAdapter } from './family-debian.js';
import { networkdAdapter } from './family-networkd.js';
import { rhel8Adapter } from './family-rhel8.js';
import { rhel9Adapter } from './family-rhel9.js';
import { rhelLegacyAdapter } from './family-rhel-legacy.js';
import { ubuntuAdapter } from './family-ubuntu.js';
import type { GuestFamily } from './families.js';
import type { GuestEditInput } from './input.js';

export type { GuestAdapter } from './adapter-types.js';
export type { GuestEditInput } from './input.js';
export type { GuestFamily } from './families.js';
export { GUEST_FAMILIES, parseGuestFamily, requireFamilyFitsOs, resolveGuestFamily } from './families.js';
export { DETECTION_READS, describeGuestOs, detectGuestFamily } from './detect.js';
export { SELINUX_MODES, parseSelinuxMode, type SelinuxMode } from './selinux.js';

const ADAPTERS: Record<GuestFamily, GuestAdapter> = {
  debian: debianAdapter,
  ubuntu: ubuntuAdapter,
  'systemd-networkd': networkdAdapter,
  'rhel-legacy': rhelLegacyAdapter,
  rhel8: rhel8Adapter,
  rhel9: rhel9Adapter,
};

export function guestAdapterFor(family: GuestFamily): GuestAdapter {
  return ADAPTERS[family];
}

/**
 * Reads what the adapter needs in two passes: the first lists directories, the second reads the files found in
 * them (BLS entries, NetworkManager profiles). `snapshot` is GuestRoot.snapshot; only new paths are read twice.
 */
export async function readGuestFiles(
  adapter: GuestAdapter,
  input: GuestEditInput,
  snapshot: (needs: GuestFilesNeeded) => Promise<GuestFiles>,
): Promise<GuestFiles> {
  const first = await snapshot(adapter.filesToRead(input));
  const all = adapter.filesToRead(input, first);
  const more: GuestFilesNeeded = {
    files: all.files.filter((p) => !Object.hasOwn(first.files, p)),
    dirs: all.dirs.filter((p) => !Object.hasOwn(first.dirs, p)),
    links: all.links.filter((p) => !Object.hasOwn(first.links, p)),
  };
  if (more.files.length + more.dirs.length + more.links.length === 0) return first;
  const second = await snapshot(more);
  return {
    files: { ...first.files, ...second.files },
    dirs: { ...first.dirs, ...second.dirs },
    links: { ...first.links, ...second.links },
  };
}
