/** SSH host keys: clones of one template would share them, so every VM loses the template's. */
import type { FileEdit } from '../model/spec.js';

export const SSH_DIR = '/etc/ssh';
// ssh_host_key without a type is the SSH protocol 1 key RHEL 6 still generates.
const HOST_KEY_RE = /^ssh_host_(?:[a-z0-9]+_)?key(?:\.pub|-cert\.pub)?$/;

/** Deletes of the template's host keys; [] when no SSH server is installed (no sshd_config). */
export function hostKeyDeletes(sshDir: readonly string[]): FileEdit[] {
  if (!sshDir.includes('sshd_config')) return [];
  return sshDir.filter((name) => HOST_KEY_RE.test(name)).map((name): FileEdit => ({ kind: 'delete', path: `${SSH_DIR}/${name}` }));
}

const HOSTKEYS_UNIT_NAME = 'vmforge-ssh-hostkeys.service';
const HOSTKEYS_UNIT = `/etc/systemd/system/${HOSTKEYS_UNIT_NAME}`;

/** `ssh-keygen -A` makes only the missing keys, so running it every boot costs nothing once they exist. */
const HOSTKEYS_UNIT_TEXT = `# Installed by vmforge: every VM gets its own SSH host keys, made at boot when missing.
[Unit]
Description=Generate missing SSH host keys
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
RemainAfterExit=yes

[Install]
WantedBy=ssh.service
`;

/**
 * Debian and Ubuntu make host keys only in openssh-server's postinst, so ssh.service would fail on a VM without
 * them; this unit makes them at boot. (RHEL's sshd-keygen and Arch's sshdgenkeys already do that themselves.)
 */
export function debianHostKeyEdits(sshDir: readonly string[]): FileEdit[] {
  if (!sshDir.includes('sshd_config')) return [];
  const wants = '/etc/systemd/system/ssh.service.wants';
  return [
    ...hostKeyDeletes(sshDir),
    { kind: 'write', path: HOSTKEYS_UNIT, content: HOSTKEYS_UNIT_TEXT, mode: 0o644 },
    { kind: 'mkdir', path: wants },
    { kind: 'symlink', path: `${wants}/${HOSTKEYS_UNIT_NAME}`, target: HOSTKEYS_UNIT },
  ];
}
