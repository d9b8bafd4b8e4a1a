/**
 * What the three RHEL-family adapters share: everything but the network profile. They differ in how the NIC is
 * configured (ifcfg, keyfile, or whichever the template uses) and whether HOSTNAME= in sysconfig/network matters.
 */
import type { FileEdit } from '../model/spec.js';
import { CLOUD_DIR, cloudInitNetworkEdits } from './cloud-init.js';
import { commonFilesToRead, finishingEdits, HOSTS, MACHINE_ID, rootPasswordEdits } from './common.js';
import { dirOf, fileOf, mergeNeeds, type GuestFiles, type GuestFilesNeeded } from './current-files.js';
import { elBootEdits, elBootFilesToRead } from './el-boot.js';
import { rhelHostsFile } from './hosts.js';
import { freshIdentityEdits } from './identity.js';
import { NETWORK_SCRIPTS, SYSCONFIG_NETWORK, sysconfigNetwork } from './ifcfg.js';
import type { CheckedNames, GuestEditInput } from './input.js';
import { NM_CONNECTIONS } from './nm-keyfile.js';
import { SSH_DIR } from './ssh-host-keys.js';
import { withNewline } from './text.js';

const SYSCONFIG_CLOCK = '/etc/sysconfig/clock';

export function elFilesToRead(input: GuestEditInput, listed: GuestFiles | undefined, more: GuestFilesNeeded): GuestFilesNeeded {
  return mergeNeeds(
    commonFilesToRead(input),
    elBootFilesToRead(listed),
    { files: [SYSCONFIG_NETWORK, SYSCONFIG_CLOCK], dirs: [NETWORK_SCRIPTS, NM_CONNECTIONS, CLOUD_DIR], links: [] },
    more,
  );
}

/** Names, fstab and /etc/sysconfig/network; `legacyHostname` also puts HOSTNAME= there (RHEL 6 reads only that). */
export function elHeadEdits(input: GuestEditInput, current: GuestFiles, names: CheckedNames, opts: { legacyHostname: boolean }): FileEdit[] {
  const sysconfig = fileOf(current, SYSCONFIG_NETWORK);
  const edits: FileEdit[] = [
    { kind: 'write', path: '/etc/hostname', content: `${names.fqdn}\n` },
    { kind: 'write', path: HOSTS, content: rhelHostsFile(names.hostname, names.domain, input.net, fileOf(current, HOSTS)) },
    { kind: 'write', path: '/etc/fstab', content: withNewline(input.fstabText) },
  ];
  const network = sysconfigNetwork(sysconfig, opts.legacyHostname ? names.fqdn : undefined);
  if (opts.legacyHostname || (sysconfig !== null && network !== sysconfig)) edits.push({ kind: 'write', path: SYSCONFIG_NETWORK, content: network });
  return edits;
}

/**
 * Identity, boot entries, credentials, time zone, SELinux. RHEL's sshd-keygen (a unit on 7+, the init script
 * on 6) makes missing host keys at boot, so deleting them is enough.
 */
export function elTailEdits(input: GuestEditInput, current: GuestFiles, opts: { hasSystemd: boolean }): FileEdit[] {
  return [
    ...cloudInitNetworkEdits(dirOf(current, CLOUD_DIR)),
    ...freshIdentityEdits({ hasSystemd: opts.hasSystemd, machineIdExists: fileOf(current, MACHINE_ID) !== null, sshDir: dirOf(current, SSH_DIR) }),
    ...elBootEdits(current, input.rootFsUuid),
    ...rootPasswordEdits(input, current),
    ...finishingEdits(input, current, { etcTimezone: false, sysconfigClock: opts.hasSystemd ? undefined : fileOf(current, SYSCONFIG_CLOCK) }),
  ];
}
