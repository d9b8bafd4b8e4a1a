import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import type { CommandRunner, RunResult } from '../runner.js';
import { generateHostKeys, publicHostKeys, sshKeygenArgv, wipeHostKeys } from './ssh-host-keys.js';

const PUB: Record<string, string> = {
  ed25519: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICbwMis9j92+8KOzrrQiD1jqXDR+a0TWt9mRowXVheX5 root@web01',
  ecdsa:
    'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIaKjLGpKLjdTTJk+YM/Ibz0EazdJUjkU3dDERRMD/AzaGHtzxVZoG8AIsGUMwYNM3bqO0nek5PMMwom91hg5O4= root@web01',
};
const SECRET = 'not-really-a-key-but-secret';

/** Stands in for ssh-keygen: writes the two files where -f says, or fails for `failOn`. */
class FakeKeygen implements CommandRunner {
  calls: string[][] = [];
  constructor(private readonly failOn?: string) {}
  async run(argv: readonly string[]): Promise<RunResult> {
    this.calls.push([...argv]);
    const type = argv[argv.indexOf('-t') + 1]!;
    if (type === this.failOn) throw new VmforgeError('COMMAND_FAILED', 'ssh-keygen exited with 1');
    const file = argv[argv.indexOf('-f') + 1]!;
    await writeFile(file, `-----BEGIN OPENSSH PRIVATE KEY-----\n${SECRET}\n-----END OPENSSH PRIVATE KEY-----\n`, { mode: 0o600 });
    await writeFile(`${file}.pub`, `${PUB[type]}\n`);
    return { stdout: '', stderr: '', exitCode: 0 };
  }
}

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'vmforge-hostkeys-unit-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('sshKeygenArgv', () => {
  it('asks for no passphrase, our comment, PEM for ECDSA and RSA', () => {
    expect(sshKeygenArgv('ed25519', 'root@web01', '/x/k')).toEqual(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'root@web01', '-f', '/x/k']);
    expect(sshKeygenArgv('rsa', 'root@web01', '/x/k')).toEqual(['ssh-keygen', '-q', '-t', 'rsa', '-b', '3072', '-m', 'PEM', '-N', '', '-C', 'root@web01', '-f', '/x/k']);
  });
});

describe('generateHostKeys', () => {
  it('returns public key and fingerprint; the private half stays out of JSON, spreads and inspect', async () => {
    const { keys } = await generateHostKeys(new FakeKeygen(), { tmpDir: tmp, comment: 'root@web01', types: ['ed25519', 'ecdsa'] });
    expect(keys.map((k) => k.type)).toEqual(['ed25519', 'ecdsa']);
    expect(keys[0]!.fingerprint).toBe('SHA256:msXUgXU2OKc7Swj2F1Z/r5yu4h3A7Gjtxjom9rGzNtw');
    expect(keys[0]!.privateKey.toString()).toContain(SECRET);
    expect(JSON.stringify(keys)).not.toContain(SECRET);
    expect(JSON.stringify({ ...keys[0] })).not.toContain(SECRET);
    expect(inspect(keys, { depth: 5 })).not.toContain(SECRET);
    expect(Object.keys(keys[0]!).sort()).toEqual(['fingerprint', 'publicKey', 'type']);
    expect(publicHostKeys(keys)).toEqual([
      { type: 'ed25519', publicKey: PUB.ed25519, fingerprint: 'SHA256:msXUgXU2OKc7Swj2F1Z/r5yu4h3A7Gjtxjom9rGzNtw' },
      { type: 'ecdsa', publicKey: PUB.ecdsa, fingerprint: 'SHA256:RMeieOqmK/eRQDquvTzvsnvt0csF6vD0xBe/FtPN4Ps' },
    ]);
    wipeHostKeys(keys);
    expect(keys[0]!.privateKey.every((b) => b === 0)).toBe(true);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('removes its temp directory when ssh-keygen fails halfway', async () => {
    const runner = new FakeKeygen('ecdsa');
    await expect(generateHostKeys(runner, { tmpDir: tmp, comment: 'root@web01', types: ['ed25519', 'ecdsa'] })).rejects.toMatchObject({ code: 'COMMAND_FAILED' });
    expect(runner.calls).toHaveLength(2);
    expect(await readdir(tmp)).toEqual([]);
    const keyDir = path.dirname(runner.calls[0]![runner.calls[0]!.indexOf('-f') + 1]!);
    expect(keyDir.startsWith(tmp)).toBe(true);
    expect(existsSync(keyDir)).toBe(false);
  });

  it('refuses odd comments, repeated types and a relative temp dir before running anything', async () => {
    const runner = new FakeKeygen();
    for (const opts of [
      { tmpDir: tmp, comment: 'root@web01 -N x' },
      { tmpDir: tmp, comment: '' },
      { tmpDir: tmp, comment: 'root@web01', types: ['rsa', 'rsa'] as const },
      { tmpDir: tmp, comment: 'root@web01', types: [] as const },
      { tmpDir: 'relative', comment: 'root@web01' },
    ]) {
      await expect(generateHostKeys(runner, opts)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    }
    expect(runner.calls).toEqual([]);
  });
});
