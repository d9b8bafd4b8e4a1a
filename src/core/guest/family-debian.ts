/** Debian with ifupdown: debianEdits (the original bookworm adapter) plus what every family gets. */
import type { FileEdit } from '../model/spec.js';
import type { GuestAdapter } from './adapter-types.js';
import { CLOUD_DIR, cloudInitNetworkEdits } from './cloud-init.js';
import { commonFilesToRead, finishingEdits } from './common.js';
import { dirOf, mergeNeeds } from './current-files.js';
import { debianEdits, debianFilesToRead } from './debian.js';
import { checkInput } from './input.js';

const INTERFACES_D = '/etc/network/interfaces.d';

export const debianAdapter: GuestAdapter = {
  family: 'debian',
  filesToRead: (input) => mergeNeeds(debianFilesToRead(), commonFilesToRead(input), { files: [], dirs: [INTERFACES_D, CLOUD_DIR], links: [] }),
  edits(input, current) {
    checkInput(input);
    const edits = debianEdits(input, current);
    // cloud-init's own stanza for eth0 would be sourced after ours, and ifup refuses an interface defined twice.
    const cloudStanzas = dirOf(current, INTERFACES_D).filter((n) => n.startsWith('50-cloud-init'));
    edits.push(...cloudStanzas.map((n): FileEdit => ({ kind: 'delete', path: `${INTERFACES_D}/${n}` })));
    edits.push(...cloudInitNetworkEdits(dirOf(current, CLOUD_DIR)));
    edits.push(...finishingEdits(input, current, { etcTimezone: true }));
    return edits;
  },
};
