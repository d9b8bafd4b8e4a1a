/**
 * A real NoCloud seed image made by xorriso: blkid must see an iso9660 filesystem labelled cidata (what
 * cloud-init looks for), and the files must read back unchanged under their own names, through Rock Ridge (what
 * Linux guests read) and Joliet. Read back with xorriso, not a loop mount: not every host kernel has isofs.
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudInitSeedFiles } from '../../src/core/guest/cloud-init-seed.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { makeSeedImage } from '../../src/exec/tools/cloud-init-seed.js';
import { requireRoot } from '../harness/env.js';

requireRoot();

const runner = new HostProcessRunner();
let work: string;

const files = cloudInitSeedFiles({
  instanceId: '6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f',
  hostname: 'web01',
  domain: 'example.com',
  sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZtZm9yZ2UtdGVzdC1rZXktbm90LWEtcmVhbC1vbmU admin@example.com'],
  keepHostKeys: true,
  network: {
    mac: '52:54:00:ab:cd:ef',
    net: { mode: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1', dns: ['192.0.2.53'] },
  },
});

beforeAll(async () => {
  work = await mkdtemp('/var/tmp/vmforge-it-seed-');
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('makeSeedImage with xorriso', () => {
  const image = () => path.join(work, 'seed.iso');

  it('makes an iso9660 image labelled cidata, alone in its directory', async () => {
    await makeSeedImage(runner, { path: image(), files });
    expect(await readdir(work)).toEqual(['seed.iso']);
    expect((await stat(image())).mode & 0o777).toBe(0o600);
    const { stdout } = await runner.run(['blkid', '-o', 'export', image()]);
    expect(stdout).toMatch(/^LABEL=cidata$/m);
    expect(stdout).toMatch(/^TYPE=iso9660$/m);
  });

  it('holds the files as given (read back by xorriso)', async () => {
    const out = path.join(work, 'extract');
    await runner.run(['xorriso', '-osirrox', 'on', '-indev', image(), '-extract', '/', out]);
    expect((await readdir(out)).sort()).toEqual(['meta-data', 'network-config', 'user-data']);
    for (const [name, text] of Object.entries(files)) expect(await readFile(path.join(out, name), 'utf8'), name).toBe(text);
    await rm(out, { recursive: true, force: true });
  });

  it('carries the same names for readers without Rock Ridge (Joliet)', async () => {
    const { stdout } = await runner.run(['xorriso', '-indev', image(), '-read_fs', 'norock', '-ls', '/']);
    expect(stdout.split('\n').filter(Boolean).sort()).toEqual(["'meta-data'", "'network-config'", "'user-data'"]);
  });

  it('refuses to replace an existing image', async () => {
    const before = await readFile(image());
    await expect(makeSeedImage(runner, { path: image(), files })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await readFile(image())).equals(before)).toBe(true);
    expect((await readdir(work)).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
