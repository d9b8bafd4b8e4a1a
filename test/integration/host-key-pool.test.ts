/**
 * The RSA host key pool (src/exec/tools/host-key-pool.ts) on real files and real processes: claims never hand
 * one key to two takers, the lock keeps one filler per pool (and is taken over from a dead one), a damaged pool
 * file is skipped, a build through the CLI installs a pooled key and leaves a background filler that tops the
 * pool up, and a filler whose state dir is removed exits without recreating it.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pidAlive } from '../../src/exec/pid.js';
import {
  claimPooledKey,
  clearPool,
  fillerRunning,
  fillPool,
  hostKeyPoolDir,
  makeRsaPem,
  pooledKeyCount,
  refillInBackground,
} from '../../src/exec/tools/host-key-pool.js';
import { rsaHostKeyFromPem, startHostKeys } from '../../src/exec/tools/ssh-host-keys.js';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, requireRoot, uniqueName, type TestEnv } from '../harness/env.js';

requireRoot();

let work: string;
/** Real RSA 3072 keys made once; `make` hands out copies so the pool can wipe its own. */
let pems: Buffer[];
let next = 0;
const make = async () => Buffer.from(pems[next++ % pems.length] as Buffer);

beforeAll(async () => {
  work = await mkdtemp('/var/tmp/vmforge-it-keypool-');
  await chmod(work, 0o755);
  pems = await Promise.all([makeRsaPem(), makeRsaPem(), makeRsaPem()]);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const fingerprintOf = (pem: Buffer) => rsaHostKeyFromPem(Buffer.from(pem), 'x').fingerprint;

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('pool files', () => {
  it('an absent pool is an empty one', async () => {
    const dir = join(work, 'absent');
    expect(await pooledKeyCount(dir)).toBe(0);
    expect(await claimPooledKey(dir)).toBeNull();
  });

  it('fills to the target with private files in a private directory, and a second filler is turned away', async () => {
    const dir = join(work, 'fill');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = async () => {
      await gate;
      return make();
    };
    const first = fillPool(dir, 3, { make: slow });
    await waitFor('the first filler to hold the lock', () => fillerRunning(dir), 5000);
    const second = await fillPool(dir, 3, { make });
    expect(second).toEqual({ made: 0, count: 0, busy: true });
    release();
    expect(await first).toEqual({ made: 3, count: 3, busy: false });
    expect(await fillerRunning(dir)).toBe(false);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const files = await readdir(dir);
    expect(files).toHaveLength(3);
    for (const f of files) {
      expect(f).toMatch(/^[0-9a-f]{32}\.pem$/);
      expect((await stat(join(dir, f))).mode & 0o777).toBe(0o600);
      expect(await readFile(join(dir, f), 'utf8')).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    }
    // Full: nothing more is made.
    expect(await fillPool(dir, 3, { make })).toEqual({ made: 0, count: 3, busy: false });
  });

  it('hands each key to exactly one of many concurrent takers, and the pool is then empty', async () => {
    const dir = join(work, 'claims');
    await fillPool(dir, 3, { make });
    const claimed = await Promise.all(Array.from({ length: 10 }, () => claimPooledKey(dir)));
    const got = claimed.filter((p): p is Buffer => p !== null);
    expect(got).toHaveLength(3);
    expect(new Set(got.map((p) => p.toString())).size).toBe(3);
    expect(await pooledKeyCount(dir)).toBe(0);
  });

  it('takes over the lock of a dead filler and of a starter that died before writing a pid, not a fresh one', async () => {
    const dir = join(work, 'stale');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const lock = join(dir, '.fill.lock');
    // A pid that is not running: a child that has exited.
    const dead = spawnSync('true').pid;
    expect(pidAlive(dead)).toBe(false);
    await writeFile(lock, `${dead}\n`);
    expect(await fillerRunning(dir)).toBe(false);
    expect((await fillPool(dir, 1, { make })).made).toBe(1);
    await writeFile(lock, '');
    expect(await fillerRunning(dir)).toBe(true);
    expect((await fillPool(dir, 2, { make })).busy).toBe(true);
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);
    expect((await fillPool(dir, 2, { make })).made).toBe(1);
    expect(await pooledKeyCount(dir)).toBe(2);
  });
});

describe('host keys from the pool', () => {
  it('the RSA key of a build is a pooled one; without a pool key it is made', async () => {
    const dir = join(work, 'take');
    await fillPool(dir, 1, { make });
    const pooled = fingerprintOf(await readFile(join(dir, (await readdir(dir))[0] as string)));
    const keys = await startHostKeys({ comment: 'root@pooled', poolDir: dir }).take(['ed25519', 'ecdsa', 'rsa']);
    expect(keys.find((k) => k.type === 'rsa')?.fingerprint).toBe(pooled);
    expect(keys.find((k) => k.type === 'rsa')?.publicKey).toMatch(/^ssh-rsa \S+ root@pooled$/);
    expect(await pooledKeyCount(dir)).toBe(0);
    const again = await startHostKeys({ comment: 'root@made', poolDir: dir }).take(['rsa']);
    expect(again[0]?.fingerprint).toMatch(/^SHA256:/);
    expect(again[0]?.fingerprint).not.toBe(pooled);
  });

  it('skips a damaged pool file (it leaves the pool) and takes the next', async () => {
    const dir = join(work, 'damaged');
    await fillPool(dir, 1, { make });
    const good = fingerprintOf(await readFile(join(dir, (await readdir(dir))[0] as string)));
    await writeFile(join(dir, `${'0'.repeat(32)}.pem`), '-----BEGIN RSA PRIVATE KEY-----\ngarbage\n', { mode: 0o600 });
    await writeFile(join(dir, `${'f'.repeat(32)}.pem`), pems[0]!.subarray(0, 100), { mode: 0o600 });
    const [k] = await startHostKeys({ comment: 'root@x', poolDir: dir }).take(['rsa']);
    // Whatever order the claims took, damaged files are dropped until the good key turns up.
    expect(k?.fingerprint).toBe(good);
    expect(await pooledKeyCount(dir)).toBeLessThanOrEqual(2);
  });
});

describe('the background filler', () => {
  it('exits without recreating a state dir removed while it fills', async () => {
    const state = join(work, 'gone-state');
    const dir = hostKeyPoolDir(state);
    const cfg = join(work, 'gone.yaml');
    await writeFile(cfg, `stateDir: ${state}\nssh:\n  hostKeyPool: 50\n`);
    const started = await refillInBackground(dir, 50, {
      execPath: process.execPath,
      execArgv: ['--import', 'tsx'],
      entry: join(process.cwd(), 'src/cli/main.ts'),
      configPath: cfg,
    });
    expect(started).toBe(true);
    const pid = Number((await readFile(join(dir, '.fill.lock'), 'utf8')).trim());
    expect(pidAlive(pid)).toBe(true);
    // A second start while it runs is refused (one filler per pool).
    expect(await refillInBackground(dir, 50, { execPath: process.execPath, execArgv: [], entry: '/nonexistent', configPath: cfg })).toBe(false);
    await waitFor('the first pooled key', async () => (await pooledKeyCount(dir)) >= 1, 60_000);
    await rm(state, { recursive: true, force: true });
    await waitFor('the filler to exit', async () => !pidAlive(pid), 60_000);
    expect(await stat(state).catch(() => null)).toBeNull();
  });
});

describe('vm build through the CLI with a pool', () => {
  let env: TestEnv;
  let bundle: string;
  const name = uniqueName('wtkp');
  beforeAll(async () => {
    await ensureLibvirt();
    bundle = await ensureTemplate();
    env = await makeTestEnv('ssh:\n  hostKeyPool: 2\n');
  });
  afterAll(async () => {
    await env.cli(['vm', 'destroy', name]);
    expect(await leftovers(env, name)).toEqual([]);
    // The filler this build started may still run: wait for it so it does not outlive the test.
    const dir = hostKeyPoolDir(env.config.stateDir);
    await waitFor('the filler to finish', async () => !(await fillerRunning(dir)), 120_000);
    await env.cleanup();
  });

  it('cache keys --fill fills the pool; the build installs a pooled RSA key and a background filler tops the pool up', async () => {
    const dir = hostKeyPoolDir(env.config.stateDir);
    const fill = await env.cli(['cache', 'keys', '--fill']);
    expect(fill.exitCode, fill.stderr).toBe(0);
    expect(fill.stdout).toBe('host key pool: 2 of 2 rsa-3072 keys ready');
    const pooled = await Promise.all((await readdir(dir)).filter((f) => f.endsWith('.pem')).map(async (f) => fingerprintOf(await readFile(join(dir, f)))));
    expect(pooled).toHaveLength(2);

    const r = await env.cli(['vm', 'build', name, '--bundle', bundle, '--memory', '256M', '--disk', '2G', '--swap', '128M', '--no-start', '--net', 'none']);
    expect(r.exitCode, r.stderr).toBe(0);
    const shown = JSON.parse((await env.cli(['vm', 'show', name, '--json'])).stdout) as { sshHostKeys: { type: string; fingerprint: string }[] };
    const rsa = shown.sshHostKeys.find((k) => k.type === 'rsa');
    expect(pooled).toContain(rsa?.fingerprint);
    // That key left the pool for good; the filler the build started brings the pool back to 2.
    await waitFor('the pool to be refilled', async () => (await pooledKeyCount(dir)) === 2 && !(await fillerRunning(dir)), 120_000);
    const now = await Promise.all((await readdir(dir)).filter((f) => f.endsWith('.pem')).map(async (f) => fingerprintOf(await readFile(join(dir, f)))));
    expect(now).not.toContain(rsa?.fingerprint);

    const status = await env.cli(['cache', 'keys', '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ count: 2, target: 2, type: 'rsa-3072', fillerRunning: false });
    const cleared = await env.cli(['cache', 'keys', '--clear']);
    expect(cleared.stdout).toBe('removed 2 pooled host keys');
    expect(await pooledKeyCount(dir)).toBe(0);
    expect(await clearPool(dir)).toBe(0);
  });
});
