/**
 * Host keys made by vmforge (node:crypto), checked with the real ssh-keygen: the fingerprints must be the ones
 * `ssh-keygen -l` prints, the private halves must belong to the public ones, and written into a guest root
 * through GuestRoot they must have the modes sshd accepts.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostKeyTypesFor, withHostKeys } from '../../src/core/guest/ssh-host-keys.js';
import { knownHostsLines } from '../../src/core/ssh/known-hosts.js';
import { fingerprintLine } from '../../src/core/ssh/public-key.js';
import { GuestRoot } from '../../src/exec/guestfs/guest-root.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { generateHostKeys, publicHostKeys, wipeHostKeys, type GeneratedHostKey } from '../../src/exec/tools/ssh-host-keys.js';
import { requireRoot } from '../harness/env.js';

requireRoot();

const runner = new HostProcessRunner();
let work: string;
let keys: GeneratedHostKey[];

beforeAll(async () => {
  work = await mkdtemp('/var/tmp/vmforge-it-hostkeys-');
  ({ keys } = await generateHostKeys({ comment: 'root@web01' }));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('generateHostKeys, checked with ssh-keygen', () => {
  it('makes ed25519, ecdsa and rsa keys', () => {
    expect(keys.map((k) => k.type)).toEqual(['ed25519', 'ecdsa', 'rsa']);
    expect(keys[1]!.privateKey.toString()).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
    expect(keys[2]!.privateKey.toString()).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(JSON.stringify(keys)).not.toMatch(/PRIVATE/);
  });

  it('computes the fingerprints ssh-keygen -l prints', async () => {
    for (const k of keys) {
      const pub = path.join(work, `check_${k.type}.pub`);
      await writeFile(pub, `${k.publicKey}\n`);
      const { stdout } = await runner.run(['ssh-keygen', '-l', '-f', pub]);
      expect(stdout.trim()).toBe(fingerprintLine(k.publicKey));
      expect(stdout).toContain(` ${k.fingerprint} root@web01 `);
    }
  });

  it('writes them into a guest root with the modes sshd wants, each private key matching its public one', async () => {
    const root = path.join(work, 'root');
    await mkdir(path.join(root, 'etc/ssh'), { recursive: true });
    await writeFile(path.join(root, 'etc/ssh/sshd_config'), 'PermitRootLogin prohibit-password\n');
    const template = ['sshd_config', 'ssh_host_dsa_key', 'ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub'];
    for (const n of template.slice(1)) await writeFile(path.join(root, 'etc/ssh', n), 'template key\n', { mode: 0o640 });
    const plain = template.slice(1).map((n) => ({ kind: 'delete' as const, path: `/etc/ssh/${n}` }));
    const types = hostKeyTypesFor(template);
    const { edits, installed } = withHostKeys(plain, template, keys.filter((k) => types.includes(k.type)));
    expect(installed).toBe(true);
    await new GuestRoot(root).applyEdits(edits);
    expect((await readdir(path.join(root, 'etc/ssh'))).sort()).toEqual(['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'sshd_config']);
    const priv = path.join(root, 'etc/ssh/ssh_host_ed25519_key');
    expect((await stat(priv)).mode & 0o777).toBe(0o600);
    expect((await stat(`${priv}.pub`)).mode & 0o777).toBe(0o644);
    const { stdout } = await runner.run(['ssh-keygen', '-y', '-f', priv]);
    expect(stdout.trim().split(' ').slice(0, 2)).toEqual(keys[0]!.publicKey.split(' ').slice(0, 2));
    expect(await readFile(`${priv}.pub`, 'utf8')).toBe(`${keys[0]!.publicKey}\n`);
  });

  it('gives known_hosts lines ssh-keygen finds the VM in', async () => {
    const file = path.join(work, 'known_hosts');
    await writeFile(file, knownHostsLines(['web01', 'web01.example.com', '192.0.2.10'], publicHostKeys(keys)));
    for (const host of ['web01', '192.0.2.10']) {
      const { stdout } = await runner.run(['ssh-keygen', '-F', host, '-f', file]);
      expect(stdout.split('\n').filter((l) => l && !l.startsWith('#'))).toHaveLength(3);
    }
    const res = await runner.run(['ssh-keygen', '-F', 'web02', '-f', file], { okCodes: [1] });
    expect(res.exitCode).toBe(1);
  });

  it('wipes the private halves on request', () => {
    wipeHostKeys(keys);
    for (const k of keys) expect(k.privateKey.every((b) => b === 0)).toBe(true);
  });
});
