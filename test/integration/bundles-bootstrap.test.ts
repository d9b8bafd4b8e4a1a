/**
 * bootstrapDebian for real: debootstrap from the mirror (about 2 minutes and network access), so it only runs
 * with VMFORGE_TEST_DEBOOTSTRAP=1. Checks the cleaned template and that a second call reuses the bundle.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bootstrapCacheKey, bootstrapDebian } from '../../src/bundles/bootstrap.js';
import { extractBundle } from '../../src/bundles/extract.js';
import { ExecaRunner } from '../../src/exec/runner.js';

const enabled = process.env.VMFORGE_TEST_DEBOOTSTRAP === '1';
const runner = new ExecaRunner();
let work: string | undefined;

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(!enabled)('bootstrapDebian', () => {
  it('debootstraps, cleans, bundles, removes its scratch root, and reuses the result', async () => {
    work = await mkdtemp('/var/tmp/vmforge-bootstrap-test-');
    const storeDir = join(work, 'store');
    const workDir = join(work, 'scratch');
    const phases = new Set<string>();
    const created = new Date().toISOString();
    const t = performance.now();
    const res = await bootstrapDebian(runner, { workDir, storeDir, created, onProgress: (e) => phases.add(e.phase) });
    const seconds = (performance.now() - t) / 1000;

    const key = bootstrapCacheKey({});
    expect(res.reused).toBe(false);
    expect(res.cacheKey).toBe(key);
    expect(res.manifest.source).toEqual({ kind: 'debootstrap', cacheKey: key });
    expect(res.manifest.name).toBe('debian-bookworm');
    expect(res.manifest.version).toBe(`${created.slice(0, 10).replace(/-/g, '')}-${key.slice(0, 8)}`);
    expect(res.manifest.kernels[0]?.version).toMatch(/cloud-amd64$/);
    expect([...phases]).toEqual(['debootstrap', 'clean', 'bundle']);
    expect(await readdir(workDir)).toEqual([]);

    const again = await bootstrapDebian(runner, { workDir, storeDir, created: new Date().toISOString() });
    expect(again.reused).toBe(true);
    expect(again.manifest).toEqual(res.manifest);

    const root = join(work, 'root');
    await mkdir(root);
    await extractBundle(runner, { blobPath: res.blobPath, compression: 'zstd', targetDir: root, expectedSha256: res.manifest.sha256 });
    expect(await readFile(join(root, 'etc/machine-id'), 'utf8')).toBe('');
    expect(await readFile(join(root, 'etc/hostname'), 'utf8')).toBe('localhost\n');
    expect(await readFile(join(root, 'etc/resolv.conf'), 'utf8')).toBe('');
    expect((await readdir(join(root, 'etc/ssh'))).filter((f) => f.startsWith('ssh_host_'))).toEqual([]);
    expect((await readdir(join(root, 'var/cache/apt'))).filter((f) => f.endsWith('.bin'))).toEqual([]);
    expect((await readdir(join(root, 'var/lib/apt/lists'))).filter((f) => f !== 'partial' && f !== 'lock')).toEqual([]);
    await expect(stat(join(root, 'etc/fstab'))).resolves.toBeTruthy();
    await expect(stat(join(root, 'usr/sbin/sshd'))).resolves.toBeTruthy();

    console.log(
      `bootstrapDebian: ${seconds.toFixed(0)} s total; ${res.manifest.fileCount} entries, ` +
        `${(res.manifest.unpackedBytes / 2 ** 20).toFixed(1)} MiB unpacked -> ${(res.manifest.compressedBytes / 2 ** 20).toFixed(1)} MiB`,
    );
  });
});
