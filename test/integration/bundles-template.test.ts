/**
 * A real Debian root (the harness's extracted template bundle, or VMFORGE_TEST_TEMPLATE_ROOT, e.g. a raw
 * debootstrap tree): bundle it with zstd, extract it, check that every entry the excludes keep came back with its
 * type, mode, owner, size and link target, that file capabilities survived, and print size and timings.
 * The root is only read.
 */
import { lstat, mkdir, mkdtemp, readdir, readlink, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBundle } from '../../src/bundles/create.js';
import { extractBundle } from '../../src/bundles/extract.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { BundleStore } from '../../src/bundles/store.js';
import { ensureTemplateRoot, requireRoot } from '../harness/env.js';

requireRoot();

const runner = new HostProcessRunner();
let root = '';
let work: string | undefined;

beforeAll(async () => {
  root = process.env.VMFORGE_TEST_TEMPLATE_ROOT ?? (await ensureTemplateRoot());
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/**
 * A GNU tar --exclude pattern as tar applies it by default (unanchored, '*' also matches '/') to member names,
 * which start with './'. Only '*' is supported; the test refuses patterns with other wildcards.
 */
function tarExcludeRegExp(pattern: string): RegExp {
  if (/[?[\\]/.test(pattern)) throw new Error(`exclude pattern ${pattern} uses wildcards this test does not model`);
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.+^${}()|]/g, '\\$&'))
    .join('.*');
  return new RegExp(`(?:^|/)${body}$`);
}

/** Every entry under `dir` as `path -> type mode uid:gid size/target`, leaving out what `excluded` names. */
async function describeTree(dir: string, excluded: (member: string) => boolean): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const child = rel === '' ? name : `${rel}/${name}`;
      if (excluded(`./${child}`)) continue;
      const st = await lstat(join(dir, child));
      const ids = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) out.set(child, `link ${ids} -> ${await readlink(join(dir, child))}`);
      else if (st.isFile()) out.set(child, `file ${ids} ${st.size}`);
      else if (st.isDirectory()) {
        out.set(child, `dir ${ids}`);
        await walk(child);
      } else out.set(child, `special ${(st.mode & 0o170000).toString(8)} ${ids} ${st.rdev}`);
    }
  };
  await walk('');
  return out;
}

describe('bundle of a real Debian root', () => {
  it('creates, verifies and extracts with zstd', async () => {
    // /var/tmp rather than /tmp: the extracted root is hundreds of MB.
    work = await mkdtemp('/var/tmp/vmforge-bundle-template-');
    const storeDir = join(work, 'store');

    let t = performance.now();
    const made = await createBundle(runner, { rootDir: root, name: 'debian-bookworm', version: 'test', compression: 'zstd', storeDir, created: new Date().toISOString() });
    const createMs = performance.now() - t;
    const m = made.manifest;
    expect(m.os).toMatchObject({ id: 'debian', family: 'debian', versionId: '12' });
    expect(m.arch).toBe('x86_64');
    expect(m.kernels.length).toBeGreaterThan(0);
    expect(m.kernels[0]?.initrd).toMatch(/^\/boot\/initrd\.img-/);
    expect(m.excludes).toContain('./etc/ssh/ssh_host_*');

    t = performance.now();
    expect((await new BundleStore(storeDir).verify('debian-bookworm:test')).ok).toBe(true);
    const verifyMs = performance.now() - t;

    const target = join(work, 'target');
    await mkdir(target);
    t = performance.now();
    await extractBundle(runner, { blobPath: made.blobPath, compression: 'zstd', targetDir: target, expectedSha256: m.sha256 });
    const extractMs = performance.now() - t;

    // What the excludes keep comes back as it was; what they name (SSH host keys, /proc contents, ...) does not.
    const patterns = m.excludes.map(tarExcludeRegExp);
    const isExcluded = (member: string) => patterns.some((re) => re.test(member));
    const expected = await describeTree(root, isExcluded);
    expect(expected.size).toBeGreaterThan(5000);
    const got = await describeTree(target, () => false);
    expect([...got.keys()].filter((p) => !expected.has(p))).toEqual([]);
    expect([...expected].filter(([p, d]) => got.get(p) !== d).map(([p, d]) => `${p}: ${d} -> ${got.get(p) ?? 'missing'}`)).toEqual([]);
    // Directories the excludes empty stay, as mount points.
    expect(await readdir(join(target, 'proc'))).toEqual([]);
    expect((await lstat(join(target, 'etc/os-release'))).isSymbolicLink()).toBe(true);
    await expect(stat(join(target, m.kernels[0]?.kernel ?? 'missing'))).resolves.toBeTruthy();

    // File capabilities are extended attributes, which the tree comparison does not see: ping needs cap_net_raw.
    expect((await runner.run(['getcap', join(target, 'usr/bin/ping')])).stdout).toMatch(/cap_net_raw[=+]ep/);

    console.log(
      [
        `bundle of ${root}: ${m.fileCount} entries, ${mib(m.unpackedBytes)} unpacked -> ${mib(m.compressedBytes)} zstd -3`,
        `create ${(createMs / 1000).toFixed(2)} s, verify ${(verifyMs / 1000).toFixed(2)} s, extract ${(extractMs / 1000).toFixed(2)} s`,
      ].join('\n'),
    );
  });
});
