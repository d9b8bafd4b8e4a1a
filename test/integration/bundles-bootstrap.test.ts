/**
 * bootstrapDebian for real: the harness's template (debootstrapped on a cold cache, which CI always has; reused
 * from /var/cache/vmforge-test locally) is checked for what the template cleaning promises, and a second call
 * with the same inputs reuses it instead of bootstrapping again.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootstrapCacheKey, bootstrapDebian } from '../../src/bundles/bootstrap.js';
import { extractBundle } from '../../src/bundles/extract.js';
import { BundleStore } from '../../src/bundles/store.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { ensureTemplate, requireRoot, TEMPLATE_CACHE, TEMPLATE_NAME } from '../harness/env.js';

requireRoot();

const runner = new HostProcessRunner();
let work: string;
let ref: string;

beforeAll(async () => {
  ref = await ensureTemplate();
  work = await mkdtemp('/var/tmp/vmforge-bootstrap-test-');
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('bootstrapDebian', () => {
  it('made a cleaned template and reuses it for the same inputs', async () => {
    const { manifest, blobPath } = await new BundleStore(TEMPLATE_CACHE).resolve(ref);
    const key = bootstrapCacheKey({});
    expect(manifest.source).toEqual({ kind: 'debootstrap', cacheKey: key });
    expect(manifest.name).toBe(TEMPLATE_NAME);
    expect(manifest.version).toMatch(new RegExp(`^\\d{8}-${key.slice(0, 8)}$`));
    expect(manifest.os).toMatchObject({ id: 'debian', versionId: '12', family: 'debian' });
    expect(manifest.kernels[0]?.version).toMatch(/cloud-amd64$/);
    expect(manifest.compression).toBe('zstd');

    const scratch = join(work, 'scratch');
    const t = performance.now();
    const again = await bootstrapDebian(runner, { workDir: scratch, storeDir: TEMPLATE_CACHE, created: new Date().toISOString(), name: TEMPLATE_NAME });
    expect(again.reused).toBe(true);
    expect(again.manifest).toEqual(manifest);
    expect(performance.now() - t).toBeLessThan(30_000); // no debootstrap happened

    const root = join(work, 'root');
    await mkdir(root);
    await extractBundle(runner, { blobPath, compression: 'zstd', targetDir: root, expectedSha256: manifest.sha256 });
    expect(await readFile(join(root, 'etc/machine-id'), 'utf8')).toBe('');
    expect(await readFile(join(root, 'etc/hostname'), 'utf8')).toBe('localhost\n');
    expect(await readFile(join(root, 'etc/resolv.conf'), 'utf8')).toBe('');
    expect((await readdir(join(root, 'etc/ssh'))).filter((f) => f.startsWith('ssh_host_'))).toEqual([]);
    expect((await readdir(join(root, 'var/cache/apt'))).filter((f) => f.endsWith('.bin'))).toEqual([]);
    expect((await readdir(join(root, 'var/lib/apt/lists'))).filter((f) => f !== 'partial' && f !== 'lock')).toEqual([]);
    await expect(stat(join(root, 'etc/fstab'))).resolves.toBeTruthy();
    await expect(stat(join(root, 'usr/sbin/sshd'))).resolves.toBeTruthy();
    await expect(stat(join(root, `boot/vmlinuz-${manifest.kernels[0]?.version}`))).resolves.toBeTruthy();
  });
});
