/** Edits and reads every family shares: credentials, time zone and SELinux, in one order for all. */
import type { FileEdit } from '../model/spec.js';
import { authorizedKeysEdits, ROOT_AUTHORIZED_KEYS, shadowWithRootHash } from './accounts.js';
import { dirOf, fileOf, type GuestFiles, type GuestFilesNeeded } from './current-files.js';
import type { GuestEditInput } from './input.js';
import { SELINUX_CONFIG, selinuxEdits } from './selinux.js';
import { SSH_DIR } from './ssh-host-keys.js';
import { timezoneEdits, zoneDirOf } from './timezone.js';

export const SHADOW = '/etc/shadow';
export const HOSTS = '/etc/hosts';
export const MACHINE_ID = '/etc/machine-id';

export function commonFilesToRead(input: GuestEditInput): GuestFilesNeeded {
  return {
    files: [HOSTS, SHADOW, MACHINE_ID, ROOT_AUTHORIZED_KEYS, SELINUX_CONFIG],
    dirs: [SSH_DIR, ...(input.timezone === undefined ? [] : [zoneDirOf(input.timezone)])],
    links: [],
  };
}

export function rootPasswordEdits(input: GuestEditInput, current: GuestFiles): FileEdit[] {
  if (input.rootPasswordHash === undefined) return [];
  return [{ kind: 'write', path: SHADOW, content: shadowWithRootHash(fileOf(current, SHADOW), input.rootPasswordHash) }];
}

/**
 * authorized_keys, time zone and SELinux. SELinux comes last: /.autorelabel must cover every file written before
 * it, and a relabel fixes the labels of root's new .ssh too.
 */
export function finishingEdits(
  input: GuestEditInput,
  current: GuestFiles,
  opts: { etcTimezone: boolean; sysconfigClock?: string | null },
): FileEdit[] {
  const edits = authorizedKeysEdits(input.sshAuthorizedKeys ?? [], fileOf(current, ROOT_AUTHORIZED_KEYS));
  if (input.timezone !== undefined) edits.push(...timezoneEdits(input.timezone, dirOf(current, zoneDirOf(input.timezone)), opts));
  edits.push(...selinuxEdits(input.selinux ?? 'relabel', fileOf(current, SELINUX_CONFIG)));
  return edits;
}
