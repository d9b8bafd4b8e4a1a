/**
 * A VM's SSH host keys, made on the host with ssh-keygen so their fingerprints are known before the VM first
 * boots (`vm show`, `vm known-hosts`). The key files live only in a private temp directory that is removed
 * before this returns, failure or not; the private halves come back as Buffers for the guest edits only.
 *
 * A GeneratedHostKey's `privateKey` is not enumerable: JSON.stringify (--json output, the operations log),
 * object spread and util.inspect leave it out, so passing a key where a StoredHostKey is expected cannot leak it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { HOST_KEY_TYPES, storedHostKey, type HostKeyType, type StoredHostKey } from '../../core/ssh/host-keys.js';
import { invalidInput } from '../../errors.js';
import type { CommandRunner } from '../runner.js';

export interface GeneratedHostKey extends StoredHostKey {
  /** The private key file (OpenSSH format for Ed25519, PEM for ECDSA/RSA). Non-enumerable; see above. */
  readonly privateKey: Buffer;
}

export interface GenerateHostKeysOptions {
  /** An existing root-only directory (vmforge's run dir); the keys are made in a fresh 0700 directory under it. */
  tmpDir: string;
  /** The .pub comment, 'root@NAME' (what the guest's own ssh-keygen -A would write). */
  comment: string;
  /** Default: ed25519, ecdsa, rsa. */
  types?: readonly HostKeyType[];
  signal?: AbortSignal;
}

/** RSA size set explicitly: ssh-keygen's default changed over time (2048, then 3072). */
const RSA_BITS = '3072';

/**
 * argv for one key. ECDSA and RSA keys are written as PEM, which every OpenSSH reads (the newer OpenSSH
 * format needs 6.5+; RHEL 6 ships 5.3). The empty passphrase is an argument, not a secret.
 */
export function sshKeygenArgv(type: HostKeyType, comment: string, file: string): string[] {
  const byType: Record<HostKeyType, string[]> = {
    ed25519: [],
    ecdsa: ['-b', '256', '-m', 'PEM'],
    rsa: ['-b', RSA_BITS, '-m', 'PEM'],
  };
  return ['ssh-keygen', '-q', '-t', type, ...byType[type], '-N', '', '-C', comment, '-f', file];
}

export async function generateHostKeys(runner: CommandRunner, opts: GenerateHostKeysOptions): Promise<{ keys: GeneratedHostKey[] }> {
  const types = opts.types ?? HOST_KEY_TYPES;
  if (types.length === 0 || new Set(types).size !== types.length) throw invalidInput(`host key types ${JSON.stringify(types)} must be a list without repeats`);
  // The comment ends up in known_hosts-adjacent output and guest files: one printable token.
  if (!/^[\x21-\x7e]{1,255}$/.test(opts.comment)) throw invalidInput(`SSH host key comment ${JSON.stringify(opts.comment)} must be one printable word`);
  if (!path.isAbsolute(opts.tmpDir)) throw invalidInput(`temporary directory ${opts.tmpDir} is not an absolute path`);

  // mkdtemp makes the directory 0700; ssh-keygen makes the private files 0600 inside it.
  const dir = await mkdtemp(path.join(opts.tmpDir, 'vmforge-hostkeys-'));
  try {
    const keys: GeneratedHostKey[] = [];
    for (const type of types) {
      const file = path.join(dir, `ssh_host_${type}_key`);
      // stdin closed: ssh-keygen would otherwise wait for an answer if it ever asked one.
      await runner.run(sshKeygenArgv(type, opts.comment, file), { input: '', timeoutMs: 120_000, signal: opts.signal });
      const stored = storedHostKey(type, await readFile(`${file}.pub`, 'utf8'));
      keys.push(withPrivateKey(stored, await readFile(file)));
    }
    return { keys };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Only what may be stored and shown: a fresh object per key, with no private half. */
export function publicHostKeys(keys: readonly StoredHostKey[]): StoredHostKey[] {
  return keys.map((k) => ({ type: k.type, publicKey: k.publicKey, fingerprint: k.fingerprint }));
}

/** Overwrites the private halves in memory once they are written into the guest. */
export function wipeHostKeys(keys: readonly GeneratedHostKey[]): void {
  for (const k of keys) k.privateKey.fill(0);
}

function withPrivateKey(stored: StoredHostKey, privateKey: Buffer): GeneratedHostKey {
  return Object.defineProperty({ ...stored }, 'privateKey', { value: privateKey, enumerable: false, writable: false, configurable: false }) as GeneratedHostKey;
}
