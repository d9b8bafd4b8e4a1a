/** Root's password hash and SSH keys: the only credentials vmforge puts into a guest. */
import { VmforgeError, invalidInput } from '../../errors.js';
import type { FileEdit } from '../model/spec.js';
import { splitLines } from './text.js';

/** Modular crypt format: '$id$' then salt/params/hash from crypt's alphabet ('=' and ',' for rounds=). */
const CRYPT_HASH_RE = /^\$[0-9a-z]{1,3}\$[A-Za-z0-9./$=,-]+$/;

export function shadowWithRootHash(shadow: string | null, hash: string): string {
  if (!CRYPT_HASH_RE.test(hash)) {
    throw invalidInput('root password hash is not a crypt(3) hash', "generate one with 'mkpasswd -m yescrypt' or 'openssl passwd -6'");
  }
  if (shadow === null) {
    throw new VmforgeError('NOT_FOUND', 'the guest has no /etc/shadow, so the root password cannot be set', { hint: 'check the template bundle' });
  }
  const lines = splitLines(shadow);
  const i = lines.findIndex((line) => line.startsWith('root:'));
  if (i === -1) throw new VmforgeError('NOT_FOUND', "the guest's /etc/shadow has no root entry", { hint: 'check the template bundle' });
  const fields = lines[i]!.split(':');
  fields[1] = hash;
  lines[i] = fields.join(':');
  return `${lines.join('\n')}\n`;
}

export const ROOT_SSH_DIR = '/root/.ssh';
export const ROOT_AUTHORIZED_KEYS = `${ROOT_SSH_DIR}/authorized_keys`;

const KEY_TYPES = /^(?:ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp(?:256|384|521)|sk-(?:ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)(?:-cert-v01@openssh\.com)?$/;

/**
 * One authorized_keys line: optional options, a key type, base64. Checked because a pasted private key or a
 * line break inside a key would lock the user out without any error.
 */
export function validateAuthorizedKey(line: string): string {
  const text = line.trim();
  if (text.includes('PRIVATE KEY')) throw invalidInput('the SSH key given is a private key', 'give the public key (the .pub file)');
  if (/[\0\r\n]/.test(text)) throw invalidInput('an SSH public key must be one line');
  const tokens = text.split(/\s+/);
  const at = tokens.findIndex((t) => KEY_TYPES.test(t));
  if (at === -1 || at > 1 || !/^[A-Za-z0-9+/]+={0,2}$/.test(tokens[at + 1] ?? '')) {
    throw invalidInput(`SSH key '${text.slice(0, 40)}...' is not an OpenSSH public key`, "give a line like 'ssh-ed25519 AAAA... user@host' (the .pub file)");
  }
  return text;
}

/** Appends the keys root does not have yet, so a rebuild from an already-adapted root adds nothing twice. */
export function authorizedKeysEdits(keys: readonly string[], existing: string | null): FileEdit[] {
  if (keys.length === 0) return [];
  const lines = splitLines(existing ?? '');
  const have = new Set(lines.map((l) => l.trim()));
  for (const key of keys.map(validateAuthorizedKey)) {
    if (!have.has(key)) {
      lines.push(key);
      have.add(key);
    }
  }
  // sshd's StrictModes refuses keys in a group- or world-writable directory or file.
  return [
    { kind: 'mkdir', path: ROOT_SSH_DIR, mode: 0o700 },
    { kind: 'write', path: ROOT_AUTHORIZED_KEYS, content: `${lines.join('\n')}\n`, mode: 0o600 },
  ];
}
