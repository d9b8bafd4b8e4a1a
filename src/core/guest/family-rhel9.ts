/**
 * RHEL 9 and its rebuilds (Rocky, Alma), Fedora 36+: NetworkManager keyfiles only. A template's leftover
 * ifcfg profiles are removed, since the ifcfg-rh plugin, when installed, would still load them.
 */
import type { GuestAdapter } from './adapter-types.js';
import { dirOf } from './current-files.js';
import { elFilesToRead, elHeadEdits, elTailEdits } from './el-common.js';
import { NETWORK_SCRIPTS, staleIfcfgDeletes } from './ifcfg.js';
import { checkInput } from './input.js';
import { keyfileEdits, keyfilesIn, keyfilesToRead, staleKeyfileDeletes } from './nm-keyfile.js';

export const rhel9Adapter: GuestAdapter = {
  family: 'rhel9',
  filesToRead: (input, listed) => elFilesToRead(input, listed, { files: keyfilesToRead(listed), dirs: [], links: [] }),
  edits(input, current) {
    const names = checkInput(input);
    return [
      ...elHeadEdits(input, current, names, { legacyHostname: false }),
      ...staleIfcfgDeletes(dirOf(current, NETWORK_SCRIPTS), ''),
      ...staleKeyfileDeletes(keyfilesIn(current), `${input.iface}.nmconnection`),
      ...keyfileEdits(input.iface, input.net, names.domain, input.connectionUuid),
      ...elTailEdits(input, current, { hasSystemd: true }),
    ];
  },
};
