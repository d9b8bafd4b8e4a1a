/**
 * RHEL 8 and its rebuilds, Fedora 29-35: NetworkManager reads both ifcfg files and keyfiles. The template decides:
 * a template with ifcfg profiles for its NIC keeps that format (admins and tools there expect ifcfg); one
 * without gets a keyfile, the format RHEL 9 moves everyone to.
 */
import type { FileEdit } from '../model/spec.js';
import type { GuestAdapter } from './adapter-types.js';
import { dirOf, fileOf } from './current-files.js';
import { elFilesToRead, elHeadEdits, elTailEdits } from './el-common.js';
import { hasNicIfcfg, ifcfgFile, NETWORK_SCRIPTS, staleIfcfgDeletes } from './ifcfg.js';
import { checkInput } from './input.js';
import { keyfileEdits, keyfileNames, keyfilesIn, keyfilesToRead, NM_CONNECTIONS, staleKeyfileDeletes } from './nm-keyfile.js';

export const rhel8Adapter: GuestAdapter = {
  family: 'rhel8',
  filesToRead: (input, listed) =>
    elFilesToRead(input, listed, { files: [`${NETWORK_SCRIPTS}/ifcfg-${input.iface}`, ...keyfilesToRead(listed)], dirs: [], links: [] }),
  edits(input, current) {
    const names = checkInput(input);
    const scripts = dirOf(current, NETWORK_SCRIPTS);
    const ifcfg = `${NETWORK_SCRIPTS}/ifcfg-${input.iface}`;
    const useIfcfg = hasNicIfcfg(scripts) || keyfileNames(dirOf(current, NM_CONNECTIONS)).length === 0;
    // Either way, every other ethernet profile of the template goes: NetworkManager would pick among them.
    const network: FileEdit[] = useIfcfg
      ? [
          ...staleKeyfileDeletes(keyfilesIn(current), ''),
          ...staleIfcfgDeletes(scripts, input.iface),
          { kind: 'write', path: ifcfg, content: ifcfgFile(input.iface, input.net, names.domain, input.connectionUuid, fileOf(current, ifcfg)), mode: 0o644 },
        ]
      : [
          ...staleIfcfgDeletes(scripts, ''),
          ...staleKeyfileDeletes(keyfilesIn(current), `${input.iface}.nmconnection`),
          ...keyfileEdits(input.iface, input.net, names.domain, input.connectionUuid),
        ];
    return [...elHeadEdits(input, current, names, { legacyHostname: false }), ...network, ...elTailEdits(input, current, { hasSystemd: true })];
  },
};
