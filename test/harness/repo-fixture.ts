/**
 * What the repository tests share: small real bundles (made by createBundle from a tiny tree with an incompressible
 * file, so an upload takes many socket reads and can be cut in the middle) and an in-process repository server on
 * 127.0.0.1 with a read-write and a read-only token, whose log lines the test can read.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import type net from 'node:net';
import { join } from 'node:path';
import type { ResultPromise } from 'execa';
import type { FastifyInstance } from 'fastify';
import { createBundle } from '../../src/bundles/create.js';
import type { Manifest } from '../../src/bundles/manifest.js';
import { BundleStore } from '../../src/bundles/store.js';
import { configSchema, type Config } from '../../src/config/schema.js';
import type { HostRunner } from '../../src/exec/runner.js';
import { buildRepoServer, type RepoLog } from '../../src/server/repo/server.js';

export interface TestBundle {
  manifest: Manifest;
  blobPath: string;
  bytes: Buffer;
}

/** A Debian-looking tree with `randomKiB` of random data and a seed file (different seeds: different sha256). */
export async function makeTestBundle(
  runner: HostRunner,
  opts: { work: string; storeDir: string; name: string; seed: string; randomKiB: number },
): Promise<TestBundle> {
  const root = join(opts.work, `tree-${opts.name}`);
  for (const d of ['etc', 'boot', 'usr/bin', 'data']) await mkdir(join(root, d), { recursive: true });
  await writeFile(join(root, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n');
  await copyFile('/usr/bin/env', join(root, 'usr/bin/env'));
  await writeFile(join(root, 'boot/vmlinuz-6.1.0-9-test'), 'kernel');
  await writeFile(join(root, 'boot/initrd.img-6.1.0-9-test'), 'initrd');
  await writeFile(join(root, 'data/random'), randomBytes(opts.randomKiB * 1024));
  await writeFile(join(root, 'data/seed'), opts.seed);
  const res = await createBundle(runner, { rootDir: root, name: opts.name, version: '1', compression: 'zstd', storeDir: opts.storeDir, created: '2026-01-01T00:00:00.000Z' });
  return { manifest: res.manifest, blobPath: res.blobPath, bytes: await readFile(res.blobPath) };
}

export interface TestRepo {
  port: number;
  url: string;
  dataDir: string;
  store: BundleStore;
  app: FastifyInstance;
  logs: { level: string; obj: Record<string, unknown>; msg: string }[];
}

/**
 * A repository server in a fresh data dir under `work`; `over` overrides repoServer settings, `directIo` is what
 * `repo serve` would pass (default false). Close it with app.close().
 */
export async function startTestRepo(
  work: string,
  opts: { rw: string; ro: string; maxUploadBytes: number; over?: Record<string, unknown>; directIo?: boolean },
): Promise<TestRepo> {
  const base = await mkdtemp(join(work, 'srv-'));
  const dataDir = join(base, 'data');
  await mkdir(dataDir);
  const config: Config['repoServer'] = configSchema.parse({
    repoServer: {
      maxUploadBytes: String(opts.maxUploadBytes),
      idleTimeoutSeconds: 10,
      tokens: [
        { name: 'writer', token: opts.rw, scopes: ['read', 'write'] },
        { name: 'reader', token: opts.ro, scopes: ['read'] },
      ],
      ...opts.over,
    },
  }).repoServer;
  const logs: TestRepo['logs'] = [];
  const log: RepoLog = {
    info: (obj, msg) => logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
    warn: (obj, msg) => logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj, msg) => logs.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  };
  const store = new BundleStore(dataDir);
  const app = await buildRepoServer({ store, config, log, directIo: opts.directIo ?? false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as net.AddressInfo).port;
  return { port, url: `http://127.0.0.1:${port}`, dataDir, store, app, logs };
}

/** The URL a `vmforge repo serve --listen 127.0.0.1:0` child prints once it listens; rejects if it exits first. */
export function servedUrl(proc: ResultPromise): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    proc.then((r) => reject(new Error(`repo serve exited early: ${String(r.stderr)}`)), reject);
  });
}
