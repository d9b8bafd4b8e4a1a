/**
 * Bundles end to end on real files (root): create -> store -> extract keeps what a template root needs (hard
 * links, symlinks, xattrs, file capabilities, ACLs, device nodes, owners, sparse files), skips sockets and the
 * default excludes; store put/resolve/list/remove/verify; failure paths of the process pipelines.
 */
import { createHash } from 'node:crypto';
import { copyFile, chown, link, lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, truncate, writeFile, open } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VmforgeError } from '../../src/errors.js';
import { createBundle, DEFAULT_TEMPLATE_EXCLUDES } from '../../src/bundles/create.js';
import { extractBundle } from '../../src/bundles/extract.js';
import { BundleStore } from '../../src/bundles/store.js';
import type { PipelineSpec, RunningPipeline } from '../../src/exec/pipeline.js';
import { HostProcessRunner } from '../../src/exec/runner.js';

const runner = new HostProcessRunner();
const CREATED_1 = '2026-01-01T00:00:00.000Z';
const CREATED_2 = '2026-02-01T00:00:00.000Z';
const CREATED_3 = '2026-03-01T00:00:00.000Z';

let work: string;
let src: string;
let storeDir: string;
let sockServer: Server | undefined;

async function expectError(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<VmforgeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VmforgeError);
  const ve = err as VmforgeError;
  expect(ve.code, ve.message).toBe(code);
  if (pattern) expect(ve.message).toMatch(pattern);
  return ve;
}

async function newTarget(): Promise<string> {
  const d = await mkdtemp(join(work, 'target-'));
  return d;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmforge-bundles-'));
  src = join(work, 'src');
  storeDir = join(work, 'store');
  for (const d of ['etc/ssh', 'boot', 'usr/bin', 'data', 'proc/1', 'dev', 'tmp', 'var/lib/apt/lists/partial', 'var/cache/apt/archives']) {
    await mkdir(join(src, d), { recursive: true });
  }
  await writeFile(join(src, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n');
  await copyFile('/usr/bin/env', join(src, 'usr/bin/env'));
  await writeFile(join(src, 'boot/vmlinuz-6.1.0-9-test'), 'kernel');
  await writeFile(join(src, 'boot/initrd.img-6.1.0-9-test'), 'initrd');
  await writeFile(join(src, 'data/file.txt'), 'hello bundle\n');
  await link(join(src, 'data/file.txt'), join(src, 'data/hard.txt'));
  await symlink('file.txt', join(src, 'data/link'));
  await symlink('/etc/passwd', join(src, 'data/abs-link'));
  await runner.run(['setfattr', '-n', 'user.test', '-v', '1', join(src, 'data/file.txt')]);
  await writeFile(join(src, 'data/acl.txt'), 'acl\n');
  await runner.run(['setfacl', '-m', 'u:1234:r', join(src, 'data/acl.txt')]);
  await writeFile(join(src, 'data/capped'), 'not really a binary\n', { mode: 0o755 });
  await runner.run(['setcap', 'cap_net_raw+ep', join(src, 'data/capped')]);
  await runner.run(['mknod', join(src, 'data/null'), 'c', '1', '3']);
  await writeFile(join(src, 'data/owned'), 'mine\n');
  await chown(join(src, 'data/owned'), 4242, 4343);
  await writeFile(join(src, 'data/sparse'), '');
  const fh = await open(join(src, 'data/sparse'), 'r+');
  await fh.write('end', 64 * 1024 * 1024 - 3);
  await fh.close();
  // Default excludes: contents go, the directories stay.
  await writeFile(join(src, 'proc/1/status'), 'x');
  await writeFile(join(src, 'tmp/junk'), 'x');
  await writeFile(join(src, 'etc/ssh/ssh_host_ed25519_key'), 'secret');
  await writeFile(join(src, 'etc/ssh/sshd_config'), '# keep\n');
  await writeFile(join(src, 'var/cache/apt/archives/x.deb'), 'deb');
  await writeFile(join(src, 'var/lib/apt/lists/deb.debian.org_Packages'), 'pkgs');
  await mkdir(join(src, 'lost+found'));
  await writeFile(join(src, 'lost+found/#123'), 'lost');
  sockServer = createServer();
  await new Promise<void>((resolve, reject) => {
    sockServer?.once('error', reject);
    sockServer?.listen(join(src, 'data/sock'), () => resolve());
  });
});

afterAll(async () => {
  await new Promise<void>((resolve) => (sockServer ? sockServer.close(() => resolve()) : resolve()));
  if (work) await rm(work, { recursive: true, force: true });
});

describe('create + extract (zstd)', () => {
  let target: string;
  let blobPath: string;

  it('creates a bundle with a correct manifest', async () => {
    const progress: number[] = [];
    const made = await createBundle(runner, {
      rootDir: src,
      name: 'test',
      version: '1',
      compression: 'zstd',
      storeDir,
      created: CREATED_1,
      onProgress: (p) => progress.push(p.compressedBytes),
    });
    blobPath = made.blobPath;
    const m = made.manifest;
    expect(m).toMatchObject({
      schemaVersion: 1,
      name: 'test',
      version: '1',
      created: CREATED_1,
      os: { id: 'debian', versionId: '12', family: 'debian' },
      arch: 'x86_64',
      kernels: [{ version: '6.1.0-9-test', kernel: '/boot/vmlinuz-6.1.0-9-test', initrd: '/boot/initrd.img-6.1.0-9-test' }],
      compression: 'zstd',
      excludes: [...DEFAULT_TEMPLATE_EXCLUDES],
    });
    expect(made.blobPath).toBe(join(storeDir, 'blobs/sha256', `${m.sha256}.tar.zst`));
    expect(made.manifestPath).toBe(join(storeDir, 'manifests/test/1.json'));
    const blob = await readFile(made.blobPath);
    expect(createHash('sha256').update(blob).digest('hex')).toBe(m.sha256);
    expect(m.compressedBytes).toBe(blob.length);
    // The 64 MiB sparse file is counted at its apparent size but costs almost nothing compressed.
    expect(m.unpackedBytes).toBeGreaterThan(64 * 1024 * 1024);
    expect(m.compressedBytes).toBeLessThan(1024 * 1024);
    expect(m.fileCount).toBeGreaterThan(20);
    expect(progress.at(-1)).toBe(m.compressedBytes);
    expect(await readdirNames(join(storeDir, 'tmp'))).toEqual([]);
  });

  it('extracts everything a root needs', async () => {
    target = await newTarget();
    const res = await extractBundle(runner, { blobPath, compression: 'zstd', targetDir: target });
    expect(res.compressedBytes).toBe((await stat(blobPath)).size);

    const d = (p: string) => join(target, p);
    expect(await readFile(d('data/file.txt'), 'utf8')).toBe('hello bundle\n');
    const [a, b] = await Promise.all([stat(d('data/file.txt')), stat(d('data/hard.txt'))]);
    expect(b.ino).toBe(a.ino);
    expect(a.nlink).toBe(2);
    expect(await readlink(d('data/link'))).toBe('file.txt');
    expect(await readlink(d('data/abs-link'))).toBe('/etc/passwd');
    expect((await runner.run(['getfattr', '--only-values', '-n', 'user.test', d('data/file.txt')])).stdout).toBe('1');
    expect((await runner.run(['getfacl', '--numeric', '--omit-header', d('data/acl.txt')])).stdout).toMatch(/^user:1234:r--$/m);
    expect((await runner.run(['getcap', d('data/capped')])).stdout).toMatch(/cap_net_raw[=+]ep/);
    const dev = await lstat(d('data/null'));
    expect(dev.isCharacterDevice()).toBe(true);
    expect(dev.rdev).toBe((await lstat(join(src, 'data/null'))).rdev);
    const owned = await stat(d('data/owned'));
    expect([owned.uid, owned.gid]).toEqual([4242, 4343]);
    const sparse = await stat(d('data/sparse'));
    expect(sparse.size).toBe(64 * 1024 * 1024);
    expect(sparse.blocks * 512).toBeLessThan(1024 * 1024);
    // The socket is skipped without failing tar.
    await expect(lstat(d('data/sock'))).rejects.toMatchObject({ code: 'ENOENT' });
    // The target directory takes the template root's mode (mkdtemp made it 0700).
    expect((await stat(target)).mode & 0o7777).toBe((await stat(src)).mode & 0o7777);
  });

  it('leaves out the default excludes but keeps their directories', async () => {
    const d = (p: string) => join(target, p);
    for (const gone of ['proc/1', 'tmp/junk', 'etc/ssh/ssh_host_ed25519_key', 'var/cache/apt/archives/x.deb', 'var/lib/apt/lists/partial', 'lost+found']) {
      await expect(lstat(d(gone)), gone).rejects.toMatchObject({ code: 'ENOENT' });
    }
    for (const kept of ['proc', 'dev', 'tmp', 'etc/ssh/sshd_config', 'var/lib/apt/lists', 'var/cache/apt/archives']) {
      await expect(lstat(d(kept)), kept).resolves.toBeTruthy();
    }
  });

  it('is deterministic: the same tree gives the same blob, stored once', async () => {
    // Sparse members are the exception: GNU tar names their placeholder header after its PID.
    const excludes = [...DEFAULT_TEMPLATE_EXCLUDES, './data/sparse'];
    const two = await createBundle(runner, { rootDir: src, name: 'test', version: '2', compression: 'zstd', storeDir, created: CREATED_2, excludes });
    const three = await createBundle(runner, { rootDir: src, name: 'test', version: '3', compression: 'zstd', storeDir, created: CREATED_3, excludes });
    expect(three.manifest.sha256).toBe(two.manifest.sha256);
    expect(three.blobPath).toBe(two.blobPath);
    expect(await readdirNames(join(storeDir, 'blobs/sha256'))).toHaveLength(2);
  });
});

describe('store', () => {
  it('lists, resolves latest, reports missing bundles with a hint', async () => {
    const store = new BundleStore(storeDir);
    const all = await store.list();
    expect(all.map((m) => `${m.name}:${m.version}`)).toEqual(['test:3', 'test:2', 'test:1']);
    expect((await store.resolve('test')).manifest.version).toBe('3');
    expect((await store.resolve('test:latest')).manifest.version).toBe('3');
    expect((await store.resolve({ name: 'test', version: '1' })).manifest.created).toBe(CREATED_1);
    const e = await expectError(store.resolve('nope'), 'NOT_FOUND', /nope:latest/);
    expect(e.hint).toMatch(/test:3, test:2, test:1/);
    expect(e.hint).toMatch(/vmforge bundle bootstrap debian/);
    await expectError(store.resolve('test:9'), 'NOT_FOUND');
    await expectError(store.resolve('../etc'), 'INVALID_INPUT');
    const empty = await expectError(new BundleStore(join(work, 'empty-store')).resolve('x'), 'NOT_FOUND');
    expect(empty.hint).toMatch(/store is empty; create one with: vmforge bundle bootstrap debian/);
  });

  it('refuses to overwrite a version, accepts an identical put', async () => {
    const store = new BundleStore(storeDir);
    await expectError(createBundle(runner, { rootDir: src, name: 'test', version: '1', compression: 'zstd', storeDir, created: CREATED_1 }), 'CONFLICT');
    const { manifest } = await store.resolve('test:1');
    await expect(store.put(manifest)).resolves.toBeTruthy();
    await expectError(store.put({ ...manifest, created: CREATED_2 }), 'CONFLICT');
  });

  it('put copies a blob in from a file and checks it', async () => {
    const store = new BundleStore(storeDir);
    const { manifest, blobPath } = await store.resolve('test:1');
    const other = new BundleStore(join(work, 'store2'));
    const copy = join(work, 'copy.tar.zst');
    await copyFile(blobPath, copy);
    const put = await other.put({ ...manifest, version: '7' }, { blob: copy });
    expect((await other.verify('test:7')).ok).toBe(true);
    expect(put.blobPath.startsWith(join(work, 'store2'))).toBe(true);
    await expectError(other.put({ ...manifest, version: '8', sha256: 'f'.repeat(64) }, { blob: copy }), 'INVALID_INPUT', /does not match/);
    await expectError(other.put({ ...manifest, version: '9', sha256: 'f'.repeat(64) }), 'NOT_FOUND');
    expect(await readdirNames(join(work, 'store2/blobs/sha256'))).toEqual([`${manifest.sha256}.tar.zst`]);
    expect(await readdirNames(join(work, 'store2/tmp'))).toEqual([]);
  });

  it('remove keeps a blob another manifest still names, and deletes it with the last one', async () => {
    const store = new BundleStore(storeDir);
    const { blobPath } = await store.resolve('test:2');
    expect((await store.remove('test:2')).blobRemoved).toBe(false);
    await expect(stat(blobPath)).resolves.toBeTruthy();
    await expectError(store.resolve('test:2'), 'NOT_FOUND');
    expect((await store.remove('test')).manifest.version).toBe('3');
    await expect(stat(blobPath)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await store.remove('test:1')).blobRemoved).toBe(true);
    expect(await store.list()).toEqual([]);
    expect(await readdirNames(join(storeDir, 'manifests'))).toEqual([]);
  });
});

describe('gzip and xz bundles', () => {
  it.each(['gzip', 'xz'] as const)('%s bundle round-trips', async (compression) => {
    const made = await createBundle(runner, { rootDir: src, name: `test-${compression}`, version: '1', compression, storeDir, created: CREATED_1 });
    expect(made.blobPath.endsWith(compression === 'gzip' ? '.tar.gz' : '.tar.xz')).toBe(true);
    const target = await newTarget();
    await extractBundle(runner, { blobPath: made.blobPath, compression, targetDir: target, expectedSha256: made.manifest.sha256 });
    expect(await readFile(join(target, 'data/file.txt'), 'utf8')).toBe('hello bundle\n');
    expect((await stat(join(target, 'data/owned'))).uid).toBe(4242);
    expect((await new BundleStore(storeDir).verify(`test-${compression}`)).ok).toBe(true);
  });
});

describe('corruption and failures', () => {
  it('a corrupted blob fails verify and extraction', async () => {
    const store = new BundleStore(storeDir);
    const made = await createBundle(runner, { rootDir: src, name: 'corrupt', version: '1', compression: 'zstd', storeDir, created: CREATED_1 });
    expect((await store.verify('corrupt')).ok).toBe(true);
    const fh = await open(made.blobPath, 'r+');
    const mid = Math.floor(made.manifest.compressedBytes / 2);
    await fh.write(Buffer.from('garbage!garbage!'), 0, 16, mid);
    await fh.close();
    const v = await store.verify('corrupt');
    expect(v.ok).toBe(false);
    expect(v.actualSha256).not.toBe(v.expectedSha256);
    expect(v.actualBytes).toBe(v.expectedBytes);
    await expectError(
      extractBundle(runner, { blobPath: made.blobPath, compression: 'zstd', targetDir: await newTarget(), expectedSha256: made.manifest.sha256 }),
      'COMMAND_FAILED',
      /^zstd/,
    );
    await store.remove('corrupt');
  });

  it('a truncated blob fails extraction naming the decompressor, with its stderr', async () => {
    const made = await createBundle(runner, { rootDir: src, name: 'trunc', version: '1', compression: 'gzip', storeDir, created: CREATED_1 });
    const cut = join(work, 'cut.tar.gz');
    await copyFile(made.blobPath, cut);
    await truncate(cut, Math.floor(made.manifest.compressedBytes / 2));
    const e = await expectError(extractBundle(runner, { blobPath: cut, compression: 'gzip', targetDir: await newTarget() }), 'COMMAND_FAILED');
    expect(e.message).toMatch(/^(pigz|gzip) -d -c exited with \d+: .*(unexpected end|corrupt|truncated)/im);
  });

  it('a target that does not exist or a missing blob is refused before anything runs', async () => {
    await expectError(extractBundle(runner, { blobPath: join(work, 'none.tar.zst'), compression: 'zstd', targetDir: work }), 'NOT_FOUND');
    const { blobPath } = await new BundleStore(storeDir).resolve('test-gzip');
    await expectError(extractBundle(runner, { blobPath, compression: 'gzip', targetDir: join(work, 'no-such-dir') }), 'INVALID_INPUT');
  });

  it('createBundle validates its input', async () => {
    const base = { rootDir: src, name: 'v', version: '1', compression: 'zstd' as const, storeDir, created: CREATED_1 };
    await expectError(createBundle(runner, { ...base, name: 'Bad/Name' }), 'INVALID_INPUT');
    await expectError(createBundle(runner, { ...base, version: 'latest' }), 'INVALID_INPUT');
    await expectError(createBundle(runner, { ...base, created: 'now' }), 'INVALID_INPUT');
    await expectError(createBundle(runner, { ...base, level: 22 }), 'INVALID_INPUT');
    await expectError(createBundle(runner, { ...base, rootDir: join(work, 'missing') }), 'INVALID_INPUT');
    await expectError(createBundle(runner, { ...base, rootDir: '/' }), 'INVALID_INPUT');
    await expectError(createBundle(runner, { ...base, excludes: ['a\nb'] }), 'INVALID_INPUT');
    expect(await new BundleStore(storeDir).has('v', '1')).toBe(false);
  });

  it('an aborted create or extract leaves nothing behind', async () => {
    const ac = new AbortController();
    // Abort once the processes are running, whatever the speed of this machine.
    class AbortingRunner extends HostProcessRunner {
      override pipeline(spec: PipelineSpec): RunningPipeline {
        const p = super.pipeline(spec);
        setImmediate(() => ac.abort());
        return p;
      }
    }
    const aborting = new AbortingRunner();
    const base = { rootDir: src, name: 'aborted', version: '1', storeDir, created: CREATED_1, signal: ac.signal };
    await expectError(createBundle(aborting, { ...base, compression: 'xz', level: 9 }), 'CANCELLED');
    expect(await new BundleStore(storeDir).has('aborted', '1')).toBe(false);
    expect(await readdirNames(join(storeDir, 'tmp'))).toEqual([]);
    await expectError(createBundle(runner, { ...base, compression: 'zstd' }), 'CANCELLED');

    const { blobPath } = await new BundleStore(storeDir).resolve('test-xz');
    const ac2 = new AbortController();
    ac2.abort();
    await expectError(extractBundle(runner, { blobPath, compression: 'xz', targetDir: await newTarget(), signal: ac2.signal }), 'CANCELLED');
  });
});

describe('pipelines', () => {
  it('names the stage that failed, not the one that died of a broken pipe', async () => {
    const p = runner.pipeline({ stages: [{ argv: ['cat', '/dev/zero'] }, { argv: ['head', '-c', '1', '/no/such/file'] }] });
    const e = await expectError(p.done, 'COMMAND_FAILED', /^head -c 1 \/no\/such\/file exited with 1: .*No such file/);
    expect(e.message).toMatch(/then cat \/dev\/zero/);
  });

  it('reports an upstream failure even when downstream exits 0', async () => {
    await expectError(runner.pipeline({ stages: [{ argv: ['cat', '/no/such/file'] }, { argv: ['cat'] }] }).done, 'COMMAND_FAILED', /^cat \/no\/such\/file exited with 1/);
  });

  it('a missing program is MISSING_TOOL before anything starts', () => {
    expect(() => runner.pipeline({ stages: [{ argv: ['cat'] }, { argv: ['vmforge-no-such-tool'] }] })).toThrow(/'vmforge-no-such-tool' is not installed/);
  });
});

async function readdirNames(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  return readdir(dir).catch(() => []);
}
