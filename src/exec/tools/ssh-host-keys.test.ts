/**
 * Host keys made with node:crypto, checked against the real ssh-keygen: it must derive our public line from our
 * private file, print our fingerprint, and find the headers `ssh-keygen -m PEM` would write. ssh-keygen reads
 * files only, so each key goes to a 0600 file in a temp dir that the test removes.
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostKeyType } from '../../core/ssh/host-keys.js';
import { opensshEd25519PrivateKey } from '../../core/ssh/openssh-format.js';
import { fingerprintLine } from '../../core/ssh/public-key.js';
import { VmforgeError } from '../../errors.js';
import { HostProcessRunner } from '../runner.js';
import { generateHostKeys, publicHostKeys, startHostKeys, wipeHostKeys, type GeneratedHostKey } from './ssh-host-keys.js';

const runner = new HostProcessRunner();
// Required, not optional: scripts/install-deps.sh installs it (openssh-client), and these checks are the only
// evidence that other tools read our key files.
const hasKeygen = ['/usr/bin/ssh-keygen', '/bin/ssh-keygen', '/usr/local/bin/ssh-keygen'].some((p) => existsSync(p));
const GOLDEN = path.join(import.meta.dirname, '../../core/ssh/__golden__/ed25519-rfc8032-1.key');

let tmp: string;
let keys: GeneratedHostKey[];
/** Copies of the private files, for the checks after wipeHostKeys has zeroed the originals. */
const privateText = new Map<string, string>();

// An RSA-3072 prime search: well under a second on an idle core, over 10 s (the default hook limit) on a loaded one.
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'vmforge-hostkeys-unit-'));
  ({ keys } = await generateHostKeys({ comment: 'root@web01' }));
  for (const k of keys) privateText.set(k.type, k.privateKey.toString('latin1'));
}, 120_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function keyFiles(k: GeneratedHostKey): Promise<{ priv: string; pub: string }> {
  const priv = path.join(tmp, `ssh_host_${k.type}_key`);
  await writeFile(priv, privateText.get(k.type)!, { mode: 0o600 });
  await writeFile(`${priv}.pub`, `${k.publicKey}\n`);
  return { priv, pub: `${priv}.pub` };
}

describe('generateHostKeys', () => {
  it('makes ed25519, ecdsa and rsa keys in the formats ssh-keygen -m PEM writes', () => {
    expect(keys.map((k) => k.type)).toEqual(['ed25519', 'ecdsa', 'rsa']);
    expect(privateText.get('ed25519')).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n(?:[A-Za-z0-9+/=]{70}\n)+[A-Za-z0-9+/=]{1,70}\n-----END OPENSSH PRIVATE KEY-----\n$/);
    expect(privateText.get('ecdsa')).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END EC PRIVATE KEY-----\n$/);
    expect(privateText.get('rsa')).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END RSA PRIVATE KEY-----\n$/);
    expect(keys[0]!.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]+ root@web01$/);
    expect(keys[1]!.publicKey).toMatch(/^ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBB[A-Za-z0-9+/]+=* root@web01$/);
    expect(fingerprintLine(keys[2]!.publicKey)).toMatch(/^3072 SHA256:\S+ root@web01 \(RSA\)$/);
  });

  it('runs where ssh-keygen is installed', () => {
    expect(hasKeygen, 'ssh-keygen not found: install openssh-client (./scripts/install-deps.sh does)').toBe(true);
  });

  it('gives keys whose public half and fingerprint ssh-keygen derives itself', async () => {
    for (const k of keys) {
      const { priv, pub } = await keyFiles(k);
      const { stdout: derived } = await runner.run(['ssh-keygen', '-y', '-f', priv]);
      // PEM files carry no comment, so ssh-keygen prints none for them (as with keys it made with -m PEM).
      expect(derived.trim(), k.type).toBe(k.type === 'ed25519' ? k.publicKey : k.publicKey.replace(/ root@web01$/, ''));
      const { stdout: listed } = await runner.run(['ssh-keygen', '-l', '-f', pub]);
      expect(listed.trim()).toBe(fingerprintLine(k.publicKey));
      expect(listed).toContain(` ${k.fingerprint} root@web01 `);
    }
  });

  it('writes the Ed25519 file byte for byte as ssh-keygen does, given its check int', async () => {
    // ssh-keygen makes a key; the same seed, public key, comment and check int must give the same file.
    const file = path.join(tmp, 'by_ssh_keygen');
    await runner.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'root@web99', '-f', file], { input: '' });
    const text = await readFile(file, 'latin1');
    const b = Buffer.from(text.split('\n').slice(1, -2).join(''), 'base64');
    const priv = 15 + 8 + 8 + 4 + 4 + (4 + 51) + 4; // the private section, after the public part
    const checkInt = b.readUInt32BE(priv);
    const secret = b.subarray(priv + 8 + 15 + 36 + 4, priv + 8 + 15 + 36 + 4 + 64);
    const ours = opensshEd25519PrivateKey({ seed: secret.subarray(0, 32), publicKey: secret.subarray(32), comment: 'root@web99', checkInt });
    expect(ours).toBe(text);
  });

  it('has a known-answer Ed25519 file that ssh-keygen reads', async () => {
    const file = path.join(tmp, 'golden_ed25519');
    await copyFile(GOLDEN, file);
    await chmod(file, 0o600);
    const { stdout } = await runner.run(['ssh-keygen', '-y', '-f', file]);
    expect(stdout.trim()).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea root@web01');
  });

  it('keeps the private half out of JSON, spreads and inspect, and wipes it on request', () => {
    const secretLine = privateText.get('rsa')!.split('\n')[1]!;
    expect(JSON.stringify(keys)).not.toMatch(/PRIVATE|privateKey/);
    expect(JSON.stringify({ ...keys[2] })).not.toContain(secretLine);
    expect(inspect(keys, { depth: 5 })).not.toContain(secretLine);
    expect(Object.keys(keys[0]!).sort()).toEqual(['fingerprint', 'publicKey', 'type']);
    expect(publicHostKeys(keys)).toEqual(keys.map((k) => ({ type: k.type, publicKey: k.publicKey, fingerprint: k.fingerprint })));
    wipeHostKeys(keys);
    for (const k of keys) expect(k.privateKey.every((x) => x === 0)).toBe(true);
  });

  it('refuses odd comments and repeated or no types', async () => {
    for (const opts of [
      { comment: 'root@web01 -N x' },
      { comment: '' },
      { comment: 'root@web01', types: ['rsa', 'rsa'] as const },
      { comment: 'root@web01', types: [] as const },
    ]) {
      await expect(generateHostKeys(opts)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    }
  });
});

/** A stand-in for makers that must not make real keys (the real maker's own slot would be taken twice). */
function fakeKey(type: HostKeyType, comment: string): GeneratedHostKey {
  const stored = { type, publicKey: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea ${comment}`, fingerprint: 'SHA256:x' };
  return Object.defineProperty(stored, 'privateKey', { value: Buffer.from('not a key'), enumerable: false }) as GeneratedHostKey;
}

describe('startHostKeys', () => {
  it('hands over the types asked for, once', async () => {
    const pending = startHostKeys({ comment: 'root@web02', types: ['ed25519', 'ecdsa'] });
    const got = await pending.take(['ecdsa']);
    expect(got.map((k) => k.type)).toEqual(['ecdsa']);
    expect(got[0]!.publicKey).toMatch(/ root@web02$/);
    await expect(pending.take(['ecdsa'])).rejects.toMatchObject({ code: 'INTERNAL' });
    pending.discard(); // after take: nothing left to do
    await expect(startHostKeys({ comment: 'root@web02', types: ['ed25519'] }).take(['rsa'])).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('makes at most two keys at once in the process, however many builds ask', async () => {
    let inFlight = 0;
    let most = 0;
    const slow = async (type: HostKeyType, comment: string): Promise<GeneratedHostKey> => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, 10));
      inFlight--;
      return fakeKey(type, comment);
    };
    const builds = ['a', 'b', 'c'].map((n) => startHostKeys({ comment: `root@${n}`, types: ['ed25519', 'ecdsa'] }, slow));
    const got = await Promise.all(builds.map((b) => b.take(['ed25519', 'ecdsa'])));
    expect(got.flat().map((k) => k.publicKey.split(' ')[2])).toEqual(['root@a', 'root@a', 'root@b', 'root@b', 'root@c', 'root@c']);
    expect(most).toBe(2);
  });

  it('stops waiting when the build is cancelled', async () => {
    const ac = new AbortController();
    const pending = startHostKeys({ comment: 'root@web03', types: ['ed25519'] });
    ac.abort();
    await expect(pending.take(['ed25519'], ac.signal)).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('turns a failed generation into a typed error at take, and a discarded one into nothing', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const boom = async () => {
        throw new Error('no entropy today');
      };
      startHostKeys({ comment: 'root@web04', types: ['rsa'] }, boom).discard();
      startHostKeys({ comment: 'root@web04', types: ['rsa'] }, boom); // never taken, never discarded
      const failed = startHostKeys({ comment: 'root@web04', types: ['ed25519', 'rsa'] }, async (type, comment) => {
        if (type === 'rsa') throw new Error('no entropy today');
        return fakeKey(type, comment);
      });
      await new Promise((r) => setTimeout(r, 50));
      const err = await failed.take(['ed25519', 'rsa']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VmforgeError);
      expect(err).toMatchObject({ code: 'INTERNAL', message: "could not make the VM's SSH host keys: no entropy today" });
      expect((err as VmforgeError).hint).toMatch(/--no-host-keys/);
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
