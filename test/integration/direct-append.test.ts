/**
 * The blob writer (batch-appender.ts), with O_DIRECT asked for, on filesystems that treat O_DIRECT differently:
 * ramfs refuses to open a file with it (the writer falls back to buffered writes), tmpfs takes it since Linux 6.6
 * (and refused it before), and a full tmpfs makes a write fail with ENOSPC in the middle of a transfer. The files
 * must be byte-exact either way, and the writer's state true after the failure (and the store's own staging
 * loop, stageBlob, reports the full disk). A publish into a store on tmpfs and a pull into one on ramfs end to
 * end. And `bundles.directIo: on` in the config file alone (no VMFORGE_DIRECT_IO) switches `vmforge repo serve`
 * and a client made from the config (repoClientFor, as `bundle pull` and `vm build` make it) to O_DIRECT.
 */
import { execa, type ResultPromise } from 'execa';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoClientFor } from '../../src/app/bundle-source.js';
import { BatchAppender, BATCH_BYTES, type WriteState } from '../../src/bundles/batch-appender.js';
import { DIRECT_IO_ENV, openDirect } from '../../src/bundles/direct-io.js';
import { RepoClient } from '../../src/bundles/repo-client.js';
import { BundleStore } from '../../src/bundles/store.js';
import { parseConfig } from '../../src/config/load.js';
import { VmforgeError } from '../../src/errors.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { REPO, requireRoot } from '../harness/env.js';
import { makeTestBundle, servedUrl, startTestRepo, type TestRepo } from '../harness/repo-fixture.js';
import { patternBytes as bytes, sha256Hex as sha } from '../harness/pattern-bytes.js';

requireRoot();

const MiB = 1024 * 1024;
const RW = 'rw-token-odirect-5e4d3c2b1a0f9e8d';
const RO = 'ro-token-odirect-1a2b3c4d5e6f7a8b';
let work: string;
const mounts: string[] = [];
let seq = 0;
/** The variable as the test process found it: it is unset here so that only what the tests pass counts. */
const envBefore = process.env[DIRECT_IO_ENV];

async function mountAt(name: string, type: string, options?: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir);
  await execa('mount', ['-t', type, ...(options ? ['-o', options] : []), `vmforge-odirect-${name}`, dir]);
  mounts.push(dir);
  return dir;
}

beforeAll(async () => {
  delete process.env[DIRECT_IO_ENV];
  work = await mkdtemp('/var/tmp/vmforge-odirect-');
});
afterAll(async () => {
  if (envBefore !== undefined) process.env[DIRECT_IO_ENV] = envBefore;
  for (const m of mounts.reverse()) await execa('umount', [m]).catch(() => execa('umount', ['-l', m]).catch(() => undefined));
  await rm(work, { recursive: true, force: true });
});

/** Appends `all` after its first `have` bytes (already in the file) in 64 KiB chunks; returns the state. */
async function append(dir: string, all: Buffer, have: number): Promise<{ path: string; w: WriteState; direct: boolean; err?: unknown }> {
  const path = join(dir, `f${seq++}.partial`);
  await writeFile(path, all.subarray(0, have));
  const fh = await open(path, 'a+');
  const w: WriteState = { hash: createHash('sha256').update(all.subarray(0, have)), hashed: have, fetched: 0 };
  let direct = false;
  let err: unknown;
  try {
    const a = await BatchAppender.open(path, fh, w, all.length, () => undefined, { directIo: true });
    direct = a.directIO;
    try {
      for (let off = have; off < all.length; off += 65536) {
        if (!a.push(all.subarray(off, Math.min(all.length, off + 65536)))) await a.ready();
      }
    } catch (e) {
      err = e;
    }
    await a.finish().catch((e: unknown) => (err ??= e));
  } finally {
    await fh.close();
  }
  return { path, w, direct, ...(err === undefined ? {} : { err }) };
}

describe('blob writer without O_DIRECT or out of space', () => {
  it('falls back to buffered writes on ramfs, byte-exact, also when resuming from an odd offset', async () => {
    const dir = await mountAt('ramfs', 'ramfs');
    for (const [size, have] of [
      [0, 0],
      [1, 0],
      [4095, 0],
      [4096, 0],
      [4097, 0],
      [4 * MiB - 1, 0],
      [4 * MiB + 1, 0],
      [9 * MiB + 3, 5001],
    ] as const) {
      const all = bytes(size, size);
      const r = await append(dir, all, have);
      expect(r.direct).toBe(false);
      expect(r.err).toBeUndefined();
      expect(r.w.hashed).toBe(size);
      expect(r.w.hash.digest('hex')).toBe(sha(all));
      expect((await readFile(r.path)).equals(all)).toBe(true);
    }
    // The alignment probe's scratch file is gone.
    expect((await readdir(dir)).filter((f) => f.startsWith('dioprobe-'))).toEqual([]);
  });

  it('writes byte-exact on tmpfs, whichever way it treats O_DIRECT', async () => {
    const dir = await mountAt('tmpfs', 'tmpfs', 'size=64m');
    for (const [size, have] of [
      [4097, 0],
      [4 * MiB + 1, 0],
      [9 * MiB + 3, 4095],
    ] as const) {
      const all = bytes(size, size);
      const r = await append(dir, all, have);
      expect(r.err).toBeUndefined();
      expect(r.w.hash.digest('hex')).toBe(sha(all));
      expect((await readFile(r.path)).equals(all)).toBe(true);
    }
  });

  it('keeps the state true when the disk fills up mid-transfer, and stageBlob says so and leaves nothing', async () => {
    const dir = await mountAt('full', 'tmpfs', 'size=6m');
    const all = bytes(16 * MiB + 7);
    const r = await append(dir, all, 3);
    expect((r.err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(r.w.hashed).toBeLessThan(all.length);
    const onDisk = await readFile(r.path);
    expect(onDisk.length).toBeGreaterThanOrEqual(r.w.hashed);
    expect(onDisk.subarray(0, r.w.hashed).equals(all.subarray(0, r.w.hashed))).toBe(true);
    expect(r.w.hash.digest('hex')).toBe(sha(all.subarray(0, r.w.hashed)));
    await rm(r.path);

    const store = new BundleStore(join(dir, 'store'));
    const e = await store.stageBlob(Readable.from([all])).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(VmforgeError);
    expect((e as VmforgeError).code).toBe('INSUFFICIENT_SPACE');
    expect(await readdir(join(dir, 'store', 'tmp'))).toEqual([]);
  });

  it('publishes to a store on tmpfs and pulls into one on ramfs', async () => {
    // ramfs reports no free space, which the repository server checks before an upload: its store is on tmpfs.
    const srvDir = await mountAt('tmpfs-e2e', 'tmpfs', 'size=128m');
    const dir = await mountAt('ramfs-e2e', 'ramfs');
    const runner = new HostProcessRunner();
    const b = await makeTestBundle(runner, { work: srvDir, storeDir: join(srvDir, 'src-store'), name: 'odirect-a', seed: 'a', randomKiB: 9 * 1024 + 3 });
    let srv: TestRepo | undefined;
    try {
      srv = await startTestRepo(srvDir, { rw: RW, ro: RO, maxUploadBytes: 64 * MiB, directIo: true });
      const res = await new RepoClient(srv.url, RW, { directIo: true }).publish({ manifest: b.manifest, blobPath: b.blobPath, manifestPath: '' });
      expect(res.alreadyPresent).toBe(false);
      const there = await srv.store.resolve('odirect-a:1');
      expect(sha(await readFile(there.blobPath))).toBe(b.manifest.sha256);
      const dest = new BundleStore(join(dir, 'dest-store'));
      const pulled = await new RepoClient(srv.url, RO, { directIo: true }).pull('odirect-a:1', dest);
      expect(sha(await readFile(pulled.blobPath))).toBe(b.manifest.sha256);
      expect(pulled.directIo).toBe(false);
      expect(await readdir(join(dir, 'dest-store', 'tmp'))).toEqual([]);
    } finally {
      await srv?.app.close();
    }
  });
});

describe('bundles.directIo in the config file', () => {
  it('makes repo serve and a pull write with O_DIRECT, with no VMFORGE_DIRECT_IO; off, the pull writes buffered', async () => {
    expect(process.env[DIRECT_IO_ENV]).toBeUndefined();
    // On a filesystem that takes O_DIRECT (ext4 under /var/tmp here), or the test would prove nothing.
    const dir = await mkdtemp(join(work, 'cfg-'));
    await writeFile(join(dir, 'probe'), '');
    const probe = await openDirect(join(dir, 'probe'), 1, BATCH_BYTES);
    expect(probe, `${dir} does not take O_DIRECT`).toBeDefined();
    await probe?.fh.close();

    await writeFile(join(dir, 'token'), `${RW}\n`);
    const configText = (directIo: 'on' | 'off') =>
      [
        `stateDir: ${dir}/state`,
        'bundles:',
        `  directIo: ${directIo}`,
        'repository:',
        `  tokenFile: ${dir}/token`,
        'repoServer:',
        '  maxUploadBytes: 64M',
        '  tokens:',
        '    - name: odirect-cfg',
        `      tokenFile: ${dir}/token`,
        '      scopes: [read, write]',
        '',
      ].join('\n');
    const configPath = join(dir, 'config.yaml');
    await writeFile(configPath, configText('on'));
    const runner = new HostProcessRunner();
    const b = await makeTestBundle(runner, { work: dir, storeDir: join(dir, 'src-store'), name: 'odirect-cfg', seed: 'c', randomKiB: 9 * 1024 + 3 });

    const proc: ResultPromise = execa(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'repo', 'serve', '--listen', '127.0.0.1:0', '--data', join(dir, 'data'), '--config', configPath],
      // process.env has no VMFORGE_DIRECT_IO (beforeAll): only the config file asks for O_DIRECT.
      { cwd: REPO, reject: false },
    );
    let stderr = '';
    proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      const url = await servedUrl(proc);
      const on = parseConfig(configText('on'), configPath);
      const res = await (await repoClientFor(on, url)).publish({ manifest: b.manifest, blobPath: b.blobPath, manifestPath: '' });
      expect(res.alreadyPresent).toBe(false);
      const there = await new BundleStore(join(dir, 'data')).resolve('odirect-cfg:1');
      expect(sha(await readFile(there.blobPath))).toBe(b.manifest.sha256);

      const pulled = await (await repoClientFor(on, url)).pull('odirect-cfg:1', new BundleStore(join(dir, 'dest-on')));
      expect(pulled.alreadyPresent).toBe(false);
      expect(pulled.directIo).toBe(true);
      expect(sha(await readFile(pulled.blobPath))).toBe(b.manifest.sha256);

      const off = parseConfig(configText('off'), configPath);
      const pulledOff = await (await repoClientFor(off, url)).pull('odirect-cfg:1', new BundleStore(join(dir, 'dest-off')));
      expect(pulledOff.directIo).toBe(false);
      expect(sha(await readFile(pulledOff.blobPath))).toBe(b.manifest.sha256);
    } finally {
      proc.kill('SIGTERM');
      await proc;
    }
    // The server's log line of the upgraded upload says how the blob was written.
    const published = stderr
      .split('\n')
      .filter((l) => l.includes('bundle published'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(published, stderr).toHaveLength(1);
    expect(published[0]).toMatchObject({ bundle: 'odirect-cfg:1', directIo: true });
  });
});
