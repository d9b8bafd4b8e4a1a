/**
 * Generic systemd guests networked by systemd-networkd (Arch and similar). The DNS servers reach the resolver only
 * through systemd-resolved, so it is enabled and /etc/resolv.conf points at its stub, unless the template already
 * made resolv.conf a link (then something else owns it).
 */
import type { FileEdit } from '../model/spec.js';
import type { GuestAdapter } from './adapter-types.js';
import { CLOUD_DIR, cloudInitNetworkEdits } from './cloud-init.js';
import { commonFilesToRead, finishingEdits, HOSTS, rootPasswordEdits } from './common.js';
import { dirOf, fileOf, linkOf, mergeNeeds } from './current-files.js';
import { hostsFile } from './hosts.js';
import { freshIdentityEdits } from './identity.js';
import { checkInput } from './input.js';
import { grubDefaults } from './kernel-args.js';
import { networkdFile } from './networkd.js';
import { SSH_DIR } from './ssh-host-keys.js';
import { aliasUnit, enableUnit, serialGettyEdits } from './systemd-units.js';
import { withNewline } from './text.js';

const NETWORK_DIR = '/etc/systemd/network';
const UNIT_DIR = '/usr/lib/systemd/system';
const GRUB_DEFAULTS = '/etc/default/grub';
const RESOLV_CONF = '/etc/resolv.conf';

export const networkdAdapter: GuestAdapter = {
  family: 'systemd-networkd',
  filesToRead: (input) => mergeNeeds(commonFilesToRead(input), { files: [GRUB_DEFAULTS], dirs: [NETWORK_DIR, CLOUD_DIR], links: [RESOLV_CONF] }),
  edits(input, current) {
    const { hostname, domain } = checkInput(input);
    const grub = fileOf(current, GRUB_DEFAULTS);
    const edits: FileEdit[] = [
      { kind: 'write', path: '/etc/hostname', content: `${hostname}\n` },
      { kind: 'write', path: HOSTS, content: hostsFile(hostname, domain, fileOf(current, HOSTS)) },
      { kind: 'write', path: '/etc/fstab', content: withNewline(input.fstabText) },
      { kind: 'mkdir', path: NETWORK_DIR },
      // networkd applies the first file (in lexical order) whose [Match] fits; '10-' sorts before the usual
      // '20-wired.network' a template may have, so the template's file stays but is not used for eth0.
      { kind: 'write', path: `${NETWORK_DIR}/10-vmforge-${input.iface}.network`, content: networkdFile(input.iface, input.net, domain), mode: 0o644 },
      ...enableUnit(UNIT_DIR, 'systemd-networkd.service', 'multi-user.target'),
      aliasUnit(UNIT_DIR, 'systemd-networkd.service', 'dbus-org.freedesktop.network1.service'),
      ...enableUnit(UNIT_DIR, 'systemd-networkd.socket', 'sockets.target'),
      ...enableUnit(UNIT_DIR, 'systemd-networkd-wait-online.service', 'network-online.target'),
      ...enableUnit(UNIT_DIR, 'systemd-resolved.service', 'sysinit.target'),
      aliasUnit(UNIT_DIR, 'systemd-resolved.service', 'dbus-org.freedesktop.resolve1.service'),
    ];
    if (linkOf(current, RESOLV_CONF) === null) edits.push({ kind: 'symlink', path: RESOLV_CONF, target: '/run/systemd/resolve/stub-resolv.conf' });
    edits.push(
      ...cloudInitNetworkEdits(dirOf(current, CLOUD_DIR)),
      // Arch's sshdgenkeys.service makes missing host keys at boot, so deleting them is enough.
      ...freshIdentityEdits({ hasSystemd: true, machineIdExists: true, sshDir: dirOf(current, SSH_DIR) }),
      ...serialGettyEdits(UNIT_DIR),
      // Arch has /etc/default/grub only with GRUB installed; a template without it keeps having none.
      ...(grub === null ? [] : [{ kind: 'write', path: GRUB_DEFAULTS, content: grubDefaults(grub, { dropStale: true }) } satisfies FileEdit]),
      ...rootPasswordEdits(input, current),
      ...finishingEdits(input, current, { etcTimezone: false }),
    );
    return edits;
  },
};
