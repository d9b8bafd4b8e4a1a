/** SSH host keys: clones of one template would share them, so every VM loses the template's. */
import { invalidInput } from '../../errors.js';
import type { FileEdit } from '../model/spec.js';
import { HOST_KEY_TYPES, type HostKeyType } from '../ssh/host-keys.js';
import { parsePublicKey } from '../ssh/public-key.js';

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
const HOSTKEYS_WANTS = '/etc/systemd/system/ssh.service.wants';

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
  const wants = HOSTKEYS_WANTS;
  return [
    ...hostKeyDeletes(sshDir),
    { kind: 'write', path: HOSTKEYS_UNIT, content: HOSTKEYS_UNIT_TEXT, mode: 0o644 },
    { kind: 'mkdir', path: wants },
    { kind: 'symlink', path: `${wants}/${HOSTKEYS_UNIT_NAME}`, target: HOSTKEYS_UNIT },
  ];
}

// ---- the VM's own host keys, made on the host -------------------------------------------------------------

/** A host key pair for the guest. The private half is only ever turned into a FileEdit, never stored. */
export interface GuestHostKey {
  type: HostKeyType;
  /** The private key file's bytes as ssh-keygen wrote them (OpenSSH or PEM format: ASCII). */
  privateKey: Uint8Array;
  /** The .pub line. */
  publicKey: string;
}

/** Guest path of the private key of `type`; the public one is this plus '.pub'. */
export function hostKeyPath(type: HostKeyType): string {
  return `${SSH_DIR}/ssh_host_${type}_key`;
}

/**
 * Writes of the keys: private 0600 (sshd refuses a key others can read; a RHEL template's root:ssh_keys owner
 * is kept by GuestRoot and still fits), public 0644.
 */
export function hostKeyWrites(keys: readonly GuestHostKey[]): FileEdit[] {
  const seen = new Set<HostKeyType>();
  return keys.flatMap((k): FileEdit[] => {
    if (seen.has(k.type)) throw invalidInput(`two ${k.type} host keys given for one VM`);
    seen.add(k.type);
    const pub = parsePublicKey(k.publicKey);
    // Checked as text, never quoted back: the message must not carry any of the key.
    const priv = new TextDecoder('utf-8', { fatal: false }).decode(k.privateKey);
    if (!/^-----BEGIN [A-Z ]*PRIVATE KEY-----\n[\x20-\x7e\n]+-----END [A-Z ]*PRIVATE KEY-----\n?$/.test(priv)) {
      throw invalidInput(`the ${k.type} host key's private half is not a PEM/OpenSSH private key file`);
    }
    const line = [pub.algorithm, pub.base64, ...(pub.comment ? [pub.comment] : [])].join(' ');
    return [
      { kind: 'write', path: hostKeyPath(k.type), content: priv.endsWith('\n') ? priv : `${priv}\n`, mode: 0o600 },
      { kind: 'write', path: `${hostKeyPath(k.type)}.pub`, content: `${line}\n`, mode: 0o644 },
    ];
  });
}

/** Where the host key writes go when the adapter planned no host-key edit: with the other files, before SELinux. */
const SELINUX_EDIT_PATHS = new Set(['/.autorelabel', '/etc/selinux/config']);

/**
 * An adapter's edits with the VM's own host keys installed instead of "delete the template's and make new ones
 * at first boot": deletes of the paths written become the writes (deletes of other kinds of key, DSA or
 * protocol 1 ones a template may have, stay), and Debian's first-boot unit goes, as there is nothing left to
 * make. `installed` is false, and the edits unchanged, when the guest has no SSH server (no sshd_config) or no
 * keys are given: then there are no fingerprints to store either.
 *
 *   const { edits, installed } = withHostKeys(adapter.edits(input, current), dirOf(current, SSH_DIR), keys);
 */
export function withHostKeys(edits: readonly FileEdit[], sshDir: readonly string[], keys: readonly GuestHostKey[]): { edits: FileEdit[]; installed: boolean } {
  if (!sshDir.includes('sshd_config') || keys.length === 0) return { edits: [...edits], installed: false };
  const writes = hostKeyWrites(keys);
  const written = new Set(writes.map((w) => w.path));
  const isHostKeyEdit = (e: FileEdit) => e.kind === 'delete' && e.path.startsWith(`${SSH_DIR}/`) && HOST_KEY_RE.test(e.path.slice(SSH_DIR.length + 1));
  const isUnitEdit = (e: FileEdit) =>
    (e.kind === 'write' && e.path === HOSTKEYS_UNIT) ||
    (e.kind === 'mkdir' && e.path === HOSTKEYS_WANTS) ||
    (e.kind === 'symlink' && e.path === `${HOSTKEYS_WANTS}/${HOSTKEYS_UNIT_NAME}`);

  const firstKeyEdit = edits.findIndex((e) => isHostKeyEdit(e) || isUnitEdit(e));
  const anchor = firstKeyEdit >= 0 ? firstKeyEdit : edits.findIndex((e) => SELINUX_EDIT_PATHS.has(e.path));
  const out: FileEdit[] = [];
  edits.forEach((e, i) => {
    if (i === anchor) out.push(...writes);
    if (isUnitEdit(e) || (e.kind === 'delete' && written.has(e.path))) return;
    out.push(e);
  });
  if (anchor < 0) out.push(...writes);
  return { edits: out, installed: true };
}

/**
 * Which key types to make for a guest: those its template had (its sshd is known to load them, and an old
 * OpenSSH such as RHEL 6's would not read an Ed25519 key), or all three when the template had none.
 */
export function hostKeyTypesFor(sshDir: readonly string[]): HostKeyType[] {
  const had = HOST_KEY_TYPES.filter((t) => sshDir.includes(`ssh_host_${t}_key`) || sshDir.includes(`ssh_host_${t}_key.pub`));
  return had.length > 0 ? had : [...HOST_KEY_TYPES];
}
