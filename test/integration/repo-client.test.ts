/**
 * The repository client over real HTTP on 127.0.0.1, against the real repository server (buildRepoServer)
 * with a fault-injecting HTTP proxy in front of it where a test needs the network to misbehave: publish and
 * pull of the real Debian template bundle, a download cut mid-way and resumed with Range (in one run and across
 * runs), corrupted bytes rejected with nothing stored, tokens refused; the CLI's `bundle import` of plain tar
 * archives, `bundle create` default excludes on a tree, `bundle publish`/`pull`, and `vm build --dry-run` of a
 * bundle only the repository has.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile, chmod, utimes } from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveOrPull } from '../../src/app/bundle-source.js';
import { createContext } from '../../src/app/context.js';
import { RepoClient } from '../../src/bundles/repo-client.js';
import { BundleStore, type ResolvedBundle } from '../../src/bundles/store.js';
import { parseConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { VmforgeError } from '../../src/errors.js';
import type { PipelineEvent } from '../../src/pipeline/events.js';
import { buildRepoServer } from '../../src/server/repo/server.js';
import { ensureTemplate, REPO, requireRoot, TEMPLATE_CACHE } from '../harness/env.js';

requireRoot();

const RW = 'rw-token-client-0123456789';
const RO = 'ro-token-client-0123456789';

let work: string;
let template: ResolvedBundle;
let repo: { app: FastifyInstance; url: string; dataDir: string; store: BundleStore };
let proxy: Proxy;

interface ProxyFault {
  /** Cut the connection after this many body bytes of the next blob GET (once). */
  cutAfter?: number;
  /** Flip one byte at this offset of every blob body. */
  corruptAt?: number;
}

interface Proxy {
  url: string;
  fault: ProxyFault;
  /** Request lines and Range headers of blob GETs seen. */
  blobRequests: { range?: string; ifRange?: string }[];
  server: http.Server;
}

/** An HTTP proxy to the repository that can cut or corrupt blob downloads. */
async function startProxy(target: string): Promise<Proxy> {
  const t = new URL(target);
  const p: Proxy = { url: '', fault: {}, blobRequests: [], server: http.createServer() };
  p.server.on('request', (req, res) => {
    const isBlob = req.method === 'GET' && /\/blob$/.test(req.url ?? '');
    if (isBlob) p.blobRequests.push({ ...(req.headers.range ? { range: req.headers.range } : {}), ...(req.headers['if-range'] ? { ifRange: String(req.headers['if-range']) } : {}) });
    const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent: false }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      const cut = isBlob ? p.fault.cutAfter : undefined;
      if (cut !== undefined) p.fault.cutAfter = undefined;
      const corruptAt = isBlob ? p.fault.corruptAt : undefined;
      let seen = 0;
      upRes.on('data', (chunk: Buffer) => {
        let c = chunk;
        if (corruptAt !== undefined && corruptAt >= seen && corruptAt < seen + c.length) {
          c = Buffer.from(c);
          c[corruptAt - seen] = (c[corruptAt - seen] as number) ^ 0xff;
        }
        if (cut !== undefined && seen + c.length >= cut) {
          res.write(c.subarray(0, cut - seen));
          upRes.destroy();
          // The client sees the connection drop mid-body.
          res.socket?.destroy();
          return;
        }
        seen += c.length;
        if (!res.write(c)) {
          upRes.pause();
          res.once('drain', () => upRes.resume());
        }
      });
      upRes.on('end', () => res.end());
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => p.server.listen(0, '127.0.0.1', r));
  p.url = `http://127.0.0.1:${(p.server.address() as net.AddressInfo).port}`;
  return p;
}

async function startRepo(): Promise<typeof repo> {
  const dataDir = join(work, 'repo-data');
  await mkdir(dataDir, { recursive: true });
  const config = configSchema.parse({
    repoServer: {
      tokens: [
        { name: 'writer', token: RW, scopes: ['read', 'write'] },
        { name: 'reader', token: RO, scopes: ['read'] },
      ],
    },
  }).repoServer;
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const store = new BundleStore(dataDir);
  const app = await buildRepoServer({ store, config, log: quiet });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url: `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`, dataDir, store };
}

const fastRetries = { retries: 3, retryBaseMs: 20 };

async function freshStore(label: string): Promise<BundleStore> {
  return new BundleStore(await mkdtemp(join(work, `store-${label}-`)));
}

const ls = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).sort();

async function expectNothingStored(store: BundleStore): Promise<void> {
  expect(await store.list()).toEqual([]);
  expect(await ls(join(store.dir, 'blobs', 'sha256'))).toEqual([]);
  expect(await ls(store.tmpDir)).toEqual([]);
}

async function expectPulledWhole(store: BundleStore, expected: ResolvedBundle): Promise<void> {
  const v = await store.verify(`${expected.manifest.name}:${expected.manifest.version}`);
  expect(v.ok).toBe(true);
  expect(v.actualSha256).toBe(expected.manifest.sha256);
  expect((await store.resolve(`${expected.manifest.name}:${expected.manifest.version}`)).manifest).toEqual(expected.manifest);
  // No partial or lock left behind.
  expect(await ls(store.tmpDir)).toEqual([]);
}

/** The CLI from source with its own config (bundle store in the test dir, never the shared template cache). */
async function cli(configPath: string, args: string[], env: Record<string, string> = {}) {
  const r = await execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), ...args], {
    cwd: REPO,
    env: { VMFORGE_CONFIG: configPath, ...env },
    reject: false,
    timeout: 300_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function writeConfig(dir: string, extra = ''): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'config.yaml');
  await writeFile(path, `stateDir: ${dir}/state\nbundles:\n  dir: ${dir}/bundles\n${extra}`);
  return path;
}

beforeAll(async () => {
  work = await mkdtemp('/var/tmp/vmforge-repo-client-');
  template = await new BundleStore(TEMPLATE_CACHE).resolve(await ensureTemplate());
  repo = await startRepo();
  proxy = await startProxy(repo.url);
});

afterAll(async () => {
  await repo?.app.close().catch(() => undefined);
  await new Promise((r) => proxy?.server.close(r));
  if (work) await rm(work, { recursive: true, force: true });
});

describe('publish and pull (real server)', () => {
  it('publishes the Debian template bundle and pulls it into a fresh store, verified', async () => {
    const client = new RepoClient(repo.url, RW, fastRetries);
    const progress: number[] = [];
    const pub = await client.publish(template, { onProgress: (p) => progress.push(p.bytes) });
    expect(pub).toMatchObject({ ref: `${template.manifest.name}:${template.manifest.version}`, bytes: template.manifest.compressedBytes, alreadyPresent: false });
    expect(progress.at(-1)).toBe(template.manifest.compressedBytes);
    // Publishing the same bundle again sends nothing.
    expect((await client.publish(template)).alreadyPresent).toBe(true);
    expect((await client.list()).map((m) => m.sha256)).toContain(template.manifest.sha256);
    expect((await client.manifest(template.manifest.name)).sha256).toBe(template.manifest.sha256);

    const store = await freshStore('pull');
    const rssBefore = process.memoryUsage().rss;
    const pulled = await new RepoClient(repo.url, RO, fastRetries).pull(template.manifest.name, store);
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    expect(pulled).toMatchObject({ alreadyPresent: false, bytesFetched: template.manifest.compressedBytes, resumedFrom: 0, attempts: 1 });
    await expectPulledWhole(store, template);
    // A blob of ~110 MiB must not have been held in memory.
    expect(rssGrowth).toBeLessThan(64 * 1024 * 1024);
    expect((await new RepoClient(repo.url, RO).pull(template.manifest.name, store)).alreadyPresent).toBe(true);

    // The same bytes published under another version: pulled without downloading the blob again.
    const aliasStore = await freshStore('alias');
    const alias = await aliasStore.put({ ...template.manifest, version: 'alias', created: '2020-01-01T00:00:00.000Z' }, { blob: template.blobPath });
    expect((await client.publish(alias)).alreadyPresent).toBe(false);
    const viaAlias = await new RepoClient(repo.url, RO).pull(`${template.manifest.name}:alias`, store);
    expect(viaAlias).toMatchObject({ alreadyPresent: false, bytesFetched: 0 });
    expect((await store.verify(`${template.manifest.name}:alias`)).ok).toBe(true);
  });

  it('refuses a publish without a token (401) and with a read-only token (403), with hints', async () => {
    const store = await freshStore('tok');
    const entry = await store.put({ ...template.manifest, version: 'token-test' }, { blob: template.blobPath });
    const noToken = await new RepoClient(repo.url, undefined, fastRetries).publish(entry).catch((e: unknown) => e);
    expect(noToken).toBeInstanceOf(VmforgeError);
    expect((noToken as VmforgeError).code).toBe('UNAUTHORIZED');
    expect((noToken as VmforgeError).hint).toMatch(/repository\.tokenFile/);
    const readOnly = await new RepoClient(repo.url, RO, fastRetries).publish(entry).catch((e: unknown) => e);
    expect((readOnly as VmforgeError).code).toBe('FORBIDDEN');
    expect(await repo.store.has(template.manifest.name, 'token-test')).toBe(false);
    const missing = await new RepoClient(repo.url, RO).pull('no-such-bundle', store).catch((e: unknown) => e);
    expect((missing as VmforgeError).code).toBe('NOT_FOUND');
  });

  it('tells an unreachable repository apart, after its retries', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const e = await new RepoClient(`http://127.0.0.1:${port}`, RO, { retries: 2, retryBaseMs: 10 }).list().catch((x: unknown) => x);
    expect((e as VmforgeError).code).toBe('UNREACHABLE');
    expect((e as VmforgeError).message).toMatch(/ECONNREFUSED/);
    expect((e as VmforgeError).message).toMatch(/gave up after 3 attempts/);
  });
});

describe('interrupted and damaged downloads (through a proxy)', () => {
  it('resumes a download cut mid-way with a Range request, and verifies it', async () => {
    const store = await freshStore('resume');
    const total = template.manifest.compressedBytes;
    proxy.blobRequests = [];
    proxy.fault = { cutAfter: Math.floor(total * 0.4) };
    const notices: string[] = [];
    const r = await new RepoClient(proxy.url, RO, fastRetries).pull(template.manifest.name, store, { onNotice: (m) => notices.push(m) });
    expect(r.attempts).toBe(2);
    expect(proxy.blobRequests).toHaveLength(2);
    expect(proxy.blobRequests[0]?.range).toBeUndefined();
    const range = /^bytes=(\d+)-$/.exec(proxy.blobRequests[1]?.range ?? '');
    expect(range).not.toBeNull();
    const resumedAt = Number(range?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(Math.floor(total * 0.4));
    expect(proxy.blobRequests[1]?.ifRange).toBe(`"${template.manifest.sha256}"`);
    // Only the missing part came twice over the wire.
    expect(r.bytesFetched).toBe(total);
    expect(notices.join('\n')).toMatch(/retrying/);
    await expectPulledWhole(store, template);
  });

  it('keeps the partial file of a pull that gave up, and the next pull resumes it', async () => {
    const store = await freshStore('rerun');
    const total = template.manifest.compressedBytes;
    proxy.blobRequests = [];
    proxy.fault = { cutAfter: Math.floor(total / 3) };
    const first = await new RepoClient(proxy.url, RO, { retries: 0, retryBaseMs: 10 }).pull(template.manifest.name, store).catch((e: unknown) => e);
    expect((first as VmforgeError).code).toBe('UNREACHABLE');
    expect((first as VmforgeError).hint).toMatch(/resumes/);
    expect(await store.list()).toEqual([]);
    const partial = join(store.tmpDir, `resume-${template.manifest.sha256}.partial`);
    const kept = (await stat(partial)).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(total);

    const second = await new RepoClient(proxy.url, RO, fastRetries).pull(template.manifest.name, store);
    expect(second.resumedFrom).toBe(kept);
    expect(second.bytesFetched).toBe(total - kept);
    expect(proxy.blobRequests.at(-1)?.range).toBe(`bytes=${kept}-`);
    await expectPulledWhole(store, template);
  });

  it('rejects bytes that do not hash to the manifest, storing nothing', async () => {
    const store = await freshStore('corrupt');
    proxy.fault = { corruptAt: 12345 };
    try {
      const e = await new RepoClient(proxy.url, RO, fastRetries).pull(template.manifest.name, store).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(VmforgeError);
      expect((e as VmforgeError).code).toBe('DIGEST_MISMATCH');
      expect((e as VmforgeError).message).toMatch(/Nothing was stored/);
    } finally {
      proxy.fault = {};
    }
    await expectNothingStored(store);
  });

  it('starts over when a partial from an earlier run holds bad bytes', async () => {
    const store = await freshStore('badpartial');
    await mkdir(store.tmpDir, { recursive: true });
    const partial = join(store.tmpDir, `resume-${template.manifest.sha256}.partial`);
    // The right length of the first half, wrong content.
    await writeFile(partial, Buffer.alloc(Math.floor(template.manifest.compressedBytes / 2), 7));
    const notices: string[] = [];
    const r = await new RepoClient(repo.url, RO, fastRetries).pull(template.manifest.name, store, { onNotice: (m) => notices.push(m) });
    expect(r.resumedFrom).toBeGreaterThan(0);
    expect(notices.join('\n')).toMatch(/downloading it whole once more/);
    await expectPulledWhole(store, template);
  });
});

describe('vm build with a bundle only the repository has', () => {
  it('pulls it before building (resolveOrPull), and a dry run only reads its manifest', async () => {
    const dir = await mkdtemp(join(work, 'build-'));
    const yaml = `stateDir: ${dir}/state\nbundles:\n  dir: ${dir}/bundles\nrepository:\n  url: ${repo.url}\n`;
    const configPath = join(dir, 'config.yaml');
    await writeFile(configPath, yaml);

    const dry = await cli(configPath, ['vm', 'build', 'pulltest', '--bundle', template.manifest.name, '--dry-run'], { VMFORGE_REPO_TOKEN: RO });
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stderr).toMatch(/would pull it from/);
    expect(await ls(join(dir, 'bundles', 'manifests'))).toEqual([]);

    const ctx = await createContext({ config: parseConfig(yaml, configPath) });
    try {
      process.env.VMFORGE_REPO_TOKEN = RO;
      const events: PipelineEvent[] = [];
      const got = await resolveOrPull(ctx, template.manifest.name, (e) => events.push(e));
      expect(got.manifest.sha256).toBe(template.manifest.sha256);
      expect(events.some((e) => e.type === 'step.progress' && e.done === template.manifest.compressedBytes)).toBe(true);
      expect((await ctx.bundles.verify(template.manifest.name)).ok).toBe(true);
      // Now local: no second pull.
      const again: PipelineEvent[] = [];
      await resolveOrPull(ctx, template.manifest.name, (e) => again.push(e));
      expect(again).toEqual([]);
    } finally {
      delete process.env.VMFORGE_REPO_TOKEN;
      await ctx.close();
    }
  });
});

describe('bundle import (CLI)', () => {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  async function makeRoot(dir: string): Promise<void> {
    for (const d of ['etc', 'boot/grub', 'usr/bin', 'usr/lib', 'var/log']) await mkdir(join(dir, d), { recursive: true });
    await writeFile(join(dir, 'usr/lib/os-release'), 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n');
    await symlink('../usr/lib/os-release', join(dir, 'etc/os-release'));
    await writeFile(join(dir, 'etc/redhat-release'), 'Rocky Linux release 9.3 (Blue Onyx)\n');
    await writeFile(join(dir, 'boot/vmlinuz-5.14.0-362.8.1.el9_3.x86_64'), 'kernel');
    await writeFile(join(dir, 'boot/initramfs-5.14.0-362.8.1.el9_3.x86_64.img'), 'initrd');
    await writeFile(join(dir, 'boot/grub/grub.cfg'), '# grub2\n');
    await copyFile('/usr/bin/env', join(dir, 'usr/bin/env'));
    await writeFile(join(dir, 'var/log/messages'), 'x'.repeat(5000));
  }

  it('imports a plain `tar czpf` of a root: OS, kernel, bootloader, counts; the file becomes the blob', async () => {
    const dir = await mkdtemp(join(work, 'import-'));
    const root = join(dir, 'root');
    await makeRoot(root);
    const tgz = join(dir, 'rocky9-root.tar.gz');
    await execa('tar', ['czpf', tgz, '-C', root, '.']);
    const configPath = await writeConfig(join(dir, 'cfg'));

    const r = await cli(configPath, ['bundle', 'import', tgz, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout) as Record<string, unknown> & { os: Record<string, string>; kernels: { version: string; initrd?: string }[] };
    expect(m.name).toBe('rocky9-root');
    expect(m.os).toEqual({ id: 'rocky', versionId: '9.3', prettyName: 'Rocky Linux 9.3 (Blue Onyx)', family: 'rhel' });
    expect(m.arch).toBe((await execa('uname', ['-m'])).stdout.trim());
    expect(m.kernels).toEqual([{ version: '5.14.0-362.8.1.el9_3.x86_64', kernel: '/boot/vmlinuz-5.14.0-362.8.1.el9_3.x86_64', initrd: '/boot/initramfs-5.14.0-362.8.1.el9_3.x86_64.img' }]);
    expect(m.bootloader).toBe('grub2');
    expect(m.compression).toBe('gzip');
    expect(m.source).toEqual({ kind: 'import', file: 'rocky9-root.tar.gz' });
    const listing = (await execa('tar', ['tzf', tgz])).stdout.trim().split('\n');
    expect(m.fileCount).toBe(listing.length);
    expect(m.unpackedBytes).toBe(5000 + 'kernel'.length + 'initrd'.length + '# grub2\n'.length + (await stat('/usr/bin/env')).size + (await stat(join(root, 'usr/lib/os-release'))).size + (await stat(join(root, 'etc/redhat-release'))).size);
    expect(m.sha256).toBe(sha(await readFile(tgz)));
    const verify = await cli(configPath, ['bundle', 'verify', 'rocky9-root']);
    expect(verify.stdout).toMatch(/OK/);
    // Nothing left in the store's scratch space.
    expect(await ls(join(dir, 'cfg/bundles/tmp'))).toEqual([]);
  });

  it('imports .tar.xz and .tar.zst archives without a ./ prefix, detecting the format by content', async () => {
    const dir = await mkdtemp(join(work, 'import2-'));
    const root = join(dir, 'root');
    await makeRoot(root);
    await rm(join(root, 'etc/os-release'));
    await rm(join(root, 'usr/lib/os-release'));
    await rm(join(root, 'boot/grub/grub.cfg'));
    await writeFile(join(root, 'boot/grub/menu.lst'), 'default 0\n');
    const xz = join(dir, 'old.tar.xz');
    await execa('tar', ['cJpf', xz, '-C', root, 'etc', 'boot', 'usr', 'var']);
    // Misnamed on purpose: the content decides.
    const zst = join(dir, 'other.tgz');
    await execa('tar', ['--zstd', '-cpf', zst, '-C', root, '.']);
    const configPath = await writeConfig(join(dir, 'cfg'));

    const a = await cli(configPath, ['bundle', 'import', xz, '--name', 'old', '--version', '1', '--json']);
    expect(a.exitCode, a.stderr).toBe(0);
    const ma = JSON.parse(a.stdout) as { os: Record<string, string>; compression: string; bootloader: string; kernels: unknown[] };
    expect(ma.os).toMatchObject({ id: 'rocky', versionId: '9.3', family: 'rhel' });
    expect(ma.compression).toBe('xz');
    expect(ma.bootloader).toBe('grub-legacy');
    expect(ma.kernels).toHaveLength(1);

    const b = await cli(configPath, ['bundle', 'import', zst, '--name', 'other', '--version', '1', '--json']);
    expect(b.exitCode, b.stderr).toBe(0);
    expect((JSON.parse(b.stdout) as { compression: string }).compression).toBe('zstd');

    const notRoot = join(dir, 'notroot.tar.gz');
    await execa('tar', ['czf', notRoot, '-C', dir, 'root']);
    const c = await cli(configPath, ['bundle', 'import', notRoot]);
    expect(c.exitCode).toBe(2);
    expect(c.stderr).toMatch(/no etc\/ at its top level/);
    const plain = join(dir, 'plain.tar');
    await execa('tar', ['cf', plain, '-C', root, '.']);
    const d = await cli(configPath, ['bundle', 'import', plain]);
    expect(d.exitCode).toBe(2);
    expect(d.stderr).toMatch(/uncompressed tar/);
    expect(await ls(join(dir, 'cfg/bundles/tmp'))).toEqual([]);
  });
});

describe('bundle create defaults and the publish/pull commands (CLI)', () => {
  it('leaves out scratch, caches, leases and host keys, empties machine-id, and records what it did', async () => {
    const dir = await mkdtemp(join(work, 'create-'));
    const root = join(dir, 'root');
    for (const d of ['etc/ssh', 'tmp/sub', 'var/tmp', 'var/lib/dhcp', 'var/cache/apt/archives', 'var/lib/systemd', 'var/lib/dbus', 'run/lock', 'dev', 'proc', 'sys', 'boot', 'usr/bin', 'lost+found']) {
      await mkdir(join(root, d), { recursive: true });
    }
    await writeFile(join(root, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n');
    await copyFile('/usr/bin/env', join(root, 'usr/bin/env'));
    await writeFile(join(root, 'boot/vmlinuz-6.1.0-9-amd64'), 'k');
    await writeFile(join(root, 'tmp/junk'), 'x');
    await writeFile(join(root, 'tmp/sub/deep'), 'x');
    await writeFile(join(root, 'var/tmp/x'), 'x');
    await writeFile(join(root, 'etc/ssh/ssh_host_ed25519_key'), 'secret');
    await writeFile(join(root, 'etc/ssh/ssh_host_ed25519_key.pub'), 'public');
    await writeFile(join(root, 'etc/ssh/sshd_config'), '# keep\n');
    await writeFile(join(root, 'etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
    await chmod(join(root, 'etc/machine-id'), 0o444);
    await utimes(join(root, 'etc/machine-id'), new Date('2025-01-02T03:04:05Z'), new Date('2025-01-02T03:04:05Z'));
    await writeFile(join(root, 'var/lib/dbus/machine-id'), '0123456789abcdef0123456789abcdef\n');
    await writeFile(join(root, 'var/lib/dhcp/dhclient.eth0.leases'), 'lease {}');
    await writeFile(join(root, 'var/cache/apt/archives/x.deb'), 'deb');
    await writeFile(join(root, 'var/lib/systemd/random-seed'), 'seed');
    await writeFile(join(root, 'run/lock/x'), 'x');
    await writeFile(join(root, 'dev/null-ish'), 'x');
    await writeFile(join(root, 'lost+found/#123'), 'x');
    await writeFile(join(root, 'var/lib/keep'), 'keep');
    const configPath = await writeConfig(join(dir, 'cfg'));

    const r = await cli(configPath, ['bundle', 'create', '--from', root, '--name', 'live', '--version', '1', '--exclude', '/var/lib/keep', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout) as { excludes: string[]; emptied: string[]; source: unknown; bootloader: string; sourceHost: string; fileCount: number };
    expect(m.emptied).toEqual(['./etc/machine-id']);
    expect(m.source).toEqual({ kind: 'root', path: root });
    expect(m.bootloader).toBe('none');
    expect(m.sourceHost).toBeTruthy();
    expect(m.excludes).toContain('./var/lib/keep');
    expect(m.excludes).toContain('./var/lib/dbus/machine-id');

    const store = new BundleStore(join(dir, 'cfg/bundles'));
    const { blobPath } = await store.resolve('live:1');
    const names = (await execa('tar', ['--zstd', '-tf', blobPath])).stdout.split('\n').filter(Boolean);
    expect(m.fileCount).toBe(names.length);
    for (const gone of [
      './tmp/junk',
      './tmp/sub/',
      './var/tmp/x',
      './etc/ssh/ssh_host_ed25519_key',
      './etc/ssh/ssh_host_ed25519_key.pub',
      './var/lib/dhcp/dhclient.eth0.leases',
      './var/cache/apt/archives/x.deb',
      './var/lib/systemd/random-seed',
      './var/lib/dbus/machine-id',
      './run/lock/',
      './dev/null-ish',
      './lost+found/',
      './var/lib/keep',
    ]) {
      expect(names, gone).not.toContain(gone);
    }
    for (const kept of ['./tmp/', './var/tmp/', './run/', './dev/', './proc/', './etc/ssh/sshd_config', './etc/machine-id']) expect(names, kept).toContain(kept);
    expect(names.filter((n) => n === './etc/machine-id')).toHaveLength(1);

    const out = join(dir, 'out');
    await mkdir(out);
    await execa('tar', ['--zstd', '-xpf', blobPath, '-C', out]);
    const mid = await stat(join(out, 'etc/machine-id'));
    expect(mid.size).toBe(0);
    expect(mid.mode & 0o777).toBe(0o444);
    expect(mid.mtime.toISOString()).toBe('2025-01-02T03:04:05.000Z');
    // The source root is untouched.
    expect(await readFile(join(root, 'etc/machine-id'), 'utf8')).toBe('0123456789abcdef0123456789abcdef\n');
  });

  it('create --publish, then bundle pull and bundle list --repo through the CLI', async () => {
    const dir = await mkdtemp(join(work, 'clipub-'));
    const root = join(dir, 'root');
    for (const d of ['etc', 'usr/bin', 'boot']) await mkdir(join(root, d), { recursive: true });
    await writeFile(join(root, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\n');
    await copyFile('/usr/bin/env', join(root, 'usr/bin/env'));
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, `${RW}\n`, { mode: 0o600 });
    const pubConfig = await writeConfig(join(dir, 'pub'), `repository:\n  url: ${repo.url}\n  tokenFile: ${tokenFile}\n`);
    const c = await cli(pubConfig, ['bundle', 'create', '--root', root, '--name', 'clitest', '--version', '2', '--publish']);
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/bundle clitest:2: .* entries/);
    expect(c.stdout).toMatch(/published clitest:2 to http:\/\/127\.0\.0\.1:\d+\/: .* \(.*\/s\)/);

    const again = await cli(pubConfig, ['bundle', 'publish', 'clitest:2', '--json']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ ref: 'clitest:2', alreadyPresent: true });

    const pullConfig = await writeConfig(join(dir, 'pull'));
    const noToken = await cli(pullConfig, ['bundle', 'pull', 'clitest', '--repo', repo.url]);
    expect(noToken.exitCode).toBe(12);
    expect(noToken.stderr).toMatch(/hint: .*repository\.tokenFile/);
    const p = await cli(pullConfig, ['bundle', 'pull', 'clitest', '--repo', repo.url, '--json'], { VMFORGE_REPO_TOKEN: RO });
    expect(p.exitCode, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout)).toMatchObject({ ref: 'clitest:2', alreadyPresent: false });
    const human = await cli(pullConfig, ['bundle', 'pull', 'clitest:2', '--repo', repo.url], { VMFORGE_REPO_TOKEN: RO });
    expect(human.stdout).toMatch(/already in the local store/);
    const list = await cli(pullConfig, ['bundle', 'list', '--repo', repo.url, '--json'], { VMFORGE_REPO_TOKEN: RO });
    expect((JSON.parse(list.stdout) as { name: string }[]).map((m) => m.name)).toContain('clitest');
  });
});
