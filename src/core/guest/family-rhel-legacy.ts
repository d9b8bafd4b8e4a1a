/**
 * RHEL/CentOS 5-7 and Fedora before 29: ifcfg-eth0 edited in place, HOSTNAME in /etc/sysconfig/network, GRUB
 * legacy (6) or GRUB 2 (7) entries pointed at the new root. RHEL 6 has no systemd: no machine-id to empty
 * unless the template has one, and its ZONE in /etc/sysconfig/clock is kept in step with /etc/localtime.
 */
import type { GuestAdapter } from './adapter-types.js';
import { dirOf, fileOf } from './current-files.js';
import { elFilesToRead, elHeadEdits, elTailEdits } from './el-common.js';
import { ifcfgFile, NETWORK_SCRIPTS, staleIfcfgDeletes } from './ifcfg.js';
import { checkInput } from './input.js';

const SYSTEMD_LIB = '/usr/lib/systemd';

export const rhelLegacyAdapter: GuestAdapter = {
  family: 'rhel-legacy',
  filesToRead: (input, listed) =>
    elFilesToRead(input, listed, { files: [`${NETWORK_SCRIPTS}/ifcfg-${input.iface}`], dirs: [SYSTEMD_LIB], links: [] }),
  edits(input, current) {
    const names = checkInput(input);
    const ifcfg = `${NETWORK_SCRIPTS}/ifcfg-${input.iface}`;
    return [
      ...elHeadEdits(input, current, names, { legacyHostname: true }),
      ...staleIfcfgDeletes(dirOf(current, NETWORK_SCRIPTS), input.iface),
      { kind: 'write', path: ifcfg, content: ifcfgFile(input.iface, input.net, names.domain, input.connectionUuid, fileOf(current, ifcfg)), mode: 0o644 },
      ...elTailEdits(input, current, { hasSystemd: dirOf(current, SYSTEMD_LIB).includes('systemd') }),
    ];
  },
};
