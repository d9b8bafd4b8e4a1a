/**
 * A VM's SSH host keys as vmforge keeps them: type, public key and fingerprint. The private halves go into the
 * guest and nowhere else, so nothing here has a field for them; this is the shape stored in the inventory and
 * shown by `vm show`.
 */
import { invalidInput } from '../../errors.js';
import { fingerprintOf, parsePublicKey } from './public-key.js';

/** ssh-keygen's -t names, which are also the middle of the guest file names (/etc/ssh/ssh_host_TYPE_key). */
export const HOST_KEY_TYPES = ['ed25519', 'ecdsa', 'rsa'] as const;
export type HostKeyType = (typeof HOST_KEY_TYPES)[number];

export interface StoredHostKey {
  type: HostKeyType;
  /** The .pub line: 'ssh-ed25519 AAAA... root@web01'. */
  publicKey: string;
  /** 'SHA256:...', as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

const ALGORITHM_OF_TYPE: Record<HostKeyType, RegExp> = {
  ed25519: /^ssh-ed25519$/,
  ecdsa: /^ecdsa-sha2-nistp(?:256|384|521)$/,
  rsa: /^ssh-rsa$/,
};

export function isHostKeyType(s: string): s is HostKeyType {
  return (HOST_KEY_TYPES as readonly string[]).includes(s);
}

/** The stored form of a key: its public line checked against its type, its fingerprint computed. */
export function storedHostKey(type: HostKeyType, publicKeyLine: string): StoredHostKey {
  const key = parsePublicKey(publicKeyLine);
  if (!ALGORITHM_OF_TYPE[type].test(key.algorithm)) throw invalidInput(`a ${type} host key cannot be a ${key.algorithm} key`);
  const publicKey = [key.algorithm, key.base64, ...(key.comment ? [key.comment] : [])].join(' ');
  return { type, publicKey, fingerprint: fingerprintOf(key) };
}

/**
 * Reads the inventory's JSON back ('[{"type":..,"publicKey":..,"fingerprint":..}]'). Each fingerprint is
 * recomputed and must match, so a damaged record is an error rather than a wrong known_hosts line.
 */
export function parseStoredHostKeys(json: string): StoredHostKey[] {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    throw invalidInput('the stored SSH host keys are not JSON');
  }
  if (!Array.isArray(data)) throw invalidInput('the stored SSH host keys are not a list');
  return data.map((item: unknown, i) => {
    const rec = item as Partial<Record<keyof StoredHostKey, unknown>> | null;
    if (typeof rec !== 'object' || rec === null || typeof rec.type !== 'string' || typeof rec.publicKey !== 'string' || typeof rec.fingerprint !== 'string') {
      throw invalidInput(`stored SSH host key ${i + 1} lacks type, publicKey or fingerprint`);
    }
    if (!isHostKeyType(rec.type)) throw invalidInput(`stored SSH host key ${i + 1} has unknown type '${rec.type}'`);
    const key = storedHostKey(rec.type, rec.publicKey);
    if (key.fingerprint !== rec.fingerprint) throw invalidInput(`stored SSH host key ${i + 1} does not match its fingerprint ${rec.fingerprint}`);
    return key;
  });
}
