/**
 * What must not be shared between clones of one template, for every family: the machine id, NIC naming rules
 * bound to the template's MAC address, and the SSH host keys.
 */
import type { FileEdit } from '../model/spec.js';
import { hostKeyDeletes } from './ssh-host-keys.js';

/**
 * Empty (not missing): systemd fills it at first boot and treats the boot as the first one. The D-Bus copy goes,
 * or systemd (and RHEL 6's dbus, which has only that one) would reuse it.
 */
export function machineIdEdits(opts: { hasSystemd: boolean; machineIdExists: boolean }): FileEdit[] {
  const edits: FileEdit[] = [];
  if (opts.hasSystemd || opts.machineIdExists) edits.push({ kind: 'write', path: '/etc/machine-id', content: '' });
  edits.push({ kind: 'delete', path: '/var/lib/dbus/machine-id' });
  return edits;
}

/** udev on RHEL 6 and old Debian pins eth0 to the template's MAC here, so the VM's NIC would come up as eth1. */
export const PERSISTENT_NET_RULES: readonly FileEdit[] = [
  { kind: 'delete', path: '/etc/udev/rules.d/70-persistent-net.rules' },
  { kind: 'delete', path: '/etc/udev/rules.d/75-persistent-net-generator.rules' },
];

export function freshIdentityEdits(opts: { hasSystemd: boolean; machineIdExists: boolean; sshDir: readonly string[] }): FileEdit[] {
  return [...machineIdEdits(opts), ...PERSISTENT_NET_RULES, ...hostKeyDeletes(opts.sshDir)];
}
