/**
 * A real debootstrapped root (VMFORGE_TEST_TEMPLATE_ROOT, default /var/tmp/exp/root; skipped when absent):
 * bundle it with zstd, extract it, check what a bootable Debian needs survived, and print size and timings.
 * The root is only read.
 */
import { lstat, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createBundle } from '../../src/bundles/create.js';
import { extractBundle } from '../../src/bundles/extract.js';
import { ExecaRunner } from '../../src/exec/runner.js';
import { BundleStore } from '../../src/bundles/store.js';

const ROOT = process.env.VMFORGE_TEST_TEMPLATE_ROOT ?? '/var/tmp/exp/root';
const haveRoot = await stat(join(ROOT, 'etc')).then(
  () => true,
  () => false,
);
const runner = new ExecaRunner();
let work: string | undefined;

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

describe.skipIf(!haveRoot)(`bundle of ${ROOT}`, () => {
  it('creates, verifies and extracts with zstd', async () => {
    // /var/tmp rather than /tmp: the extracted root is hundreds of MB.
    work = await mkdtemp('/var/tmp/vmforge-bundle-template-').catch(() => mkdtemp(join(tmpdir(), 'vmforge-bundle-template-')));
    const storeDir = join(work, 'store');

    let t = performance.now();
    const made = await createBundle(runner, { rootDir: ROOT, name: 'debian-bookworm', version: 'test', compression: 'zstd', storeDir, created: new Date().toISOString() });
    const createMs = performance.now() - t;
    const m = made.manifest;
    expect(m.os).toMatchObject({ id: 'debian', family: 'debian', versionId: '12' });
    expect(m.arch).toBe('x86_64');
    expect(m.kernels.length).toBeGreaterThan(0);
    expect(m.kernels[0]?.initrd).toMatch(/^\/boot\/initrd\.img-/);

    t = performance.now();
    expect((await new BundleStore(storeDir).verify('debian-bookworm:test')).ok).toBe(true);
    const verifyMs = performance.now() - t;

    const target = join(work, 'target');
    await rm(target, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(target));
    t = performance.now();
    await extractBundle(runner, { blobPath: made.blobPath, compression: 'zstd', targetDir: target, expectedSha256: m.sha256 });
    const extractMs = performance.now() - t;

    // File capabilities survive (ping needs cap_net_raw), SSH host keys do not.
    expect((await runner.run(['getcap', join(target, 'usr/bin/ping')])).stdout).toMatch(/cap_net_raw[=+]ep/);
    expect((await readdir(join(target, 'etc/ssh'))).filter((f) => f.startsWith('ssh_host_'))).toEqual([]);
    expect((await lstat(join(target, 'etc/os-release'))).isSymbolicLink()).toBe(true);
    expect((await readdir(join(target, 'proc')))).toEqual([]);
    await expect(stat(join(target, m.kernels[0]?.kernel ?? 'missing'))).resolves.toBeTruthy();

    console.log(
      [
        `bundle of ${ROOT}: ${m.fileCount} entries, ${mib(m.unpackedBytes)} unpacked -> ${mib(m.compressedBytes)} zstd -3`,
        `create ${(createMs / 1000).toFixed(2)} s, verify ${(verifyMs / 1000).toFixed(2)} s, extract ${(extractMs / 1000).toFixed(2)} s`,
      ].join('\n'),
    );
  });
});
