/**
 * Ubuntu 18.04+ (netplan + systemd-networkd + systemd-resolved). Same file layout as Debian otherwise, so the
 * hosts file, GRUB defaults and SSH host key handling are Debian's.
 */
import { parseOsRelease } from '../../bundles/manifest.js';
import type { FileEdit } from '../model/spec.js';
import type { GuestAdapter } from './adapter-types.js';
import { CLOUD_DIR, cloudInitNetworkEdits } from './cloud-init.js';
import { commonFilesToRead, finishingEdits, HOSTS, rootPasswordEdits } from './common.js';
import { dirOf, fileOf, mergeNeeds } from './current-files.js';
import { hostsFile } from './hosts.js';
import { freshIdentityEdits } from './identity.js';
import { checkInput } from './input.js';
import { grubDefaults } from './kernel-args.js';
import { netplanYaml } from './netplan.js';
import { debianHostKeyEdits, SSH_DIR } from './ssh-host-keys.js';
import { serialGettyEdits } from './systemd-units.js';
import { withNewline } from './text.js';

const NETPLAN_DIR = '/etc/netplan';
const OUR_NETPLAN = '50-vmforge.yaml';
const GRUB_DEFAULTS = '/etc/default/grub';
const OS_RELEASE = '/etc/os-release';

/** '18.04' -> 1804; NaN-safe: an unreadable version counts as new. */
function ubuntuVersion(osRelease: string | null): number {
  const m = /^(\d+)\.(\d+)/.exec(parseOsRelease(osRelease ?? '').VERSION_ID ?? '');
  return m ? Number(m[1]) * 100 + Number(m[2]) : Number.POSITIVE_INFINITY;
}

export const ubuntuAdapter: GuestAdapter = {
  family: 'ubuntu',
  filesToRead: (input) => mergeNeeds(commonFilesToRead(input), { files: [GRUB_DEFAULTS, OS_RELEASE], dirs: [NETPLAN_DIR, CLOUD_DIR], links: [] }),
  edits(input, current) {
    const { hostname, domain } = checkInput(input);
    const sshDir = dirOf(current, SSH_DIR);
    const edits: FileEdit[] = [
      { kind: 'write', path: '/etc/hostname', content: `${hostname}\n` },
      { kind: 'write', path: HOSTS, content: hostsFile(hostname, domain, fileOf(current, HOSTS)) },
      { kind: 'write', path: '/etc/fstab', content: withNewline(input.fstabText) },
      // netplan merges every file here; the template's (cloud-init's match on the template's MAC) must go.
      ...dirOf(current, NETPLAN_DIR)
        .filter((n) => /\.ya?ml$/.test(n) && n !== OUR_NETPLAN)
        .map((n): FileEdit => ({ kind: 'delete', path: `${NETPLAN_DIR}/${n}` })),
      { kind: 'mkdir', path: NETPLAN_DIR },
      // 0600: netplan 0.106+ warns about (and later refuses) configuration others can read.
      {
        kind: 'write',
        path: `${NETPLAN_DIR}/${OUR_NETPLAN}`,
        content: netplanYaml(input.iface, input.net, domain, { defaultRoute: ubuntuVersion(fileOf(current, OS_RELEASE)) >= 2204 }),
        mode: 0o600,
      },
      ...cloudInitNetworkEdits(dirOf(current, CLOUD_DIR)),
      ...freshIdentityEdits({ hasSystemd: true, machineIdExists: true, sshDir: [] }),
      ...serialGettyEdits('/lib/systemd/system'),
      { kind: 'mkdir', path: '/etc/default' },
      { kind: 'write', path: GRUB_DEFAULTS, content: grubDefaults(fileOf(current, GRUB_DEFAULTS), { dropStale: true }) },
      ...rootPasswordEdits(input, current),
      ...debianHostKeyEdits(sshDir),
      ...finishingEdits(input, current, { etcTimezone: true }),
    ];
    return edits;
  },
};
