/**
 * Hostile bundles: archives written member by member (Python's tarfile, which writes whatever it is told, and
 * GNU tar -S for a sparse file) with '..' names, absolute names, symlinks and hard links pointing at host files,
 * a directory symlink with a file written "through" it, a 100 GiB sparse file, a device node where a config file
 * should be, and more data than the disk holds. Each is extracted by vmforge's own extractBundle into a fresh,
 * small, loop-mounted ext4 (what a build does), and then the Debian guest edits (and, for /boot, the GRUB install)
 * run on whatever was extracted, as a build would if extraction let it through. Afterwards the host canaries (a file, a directory with files, the
 * paths the archive aimed at) must be exactly as before: content, inode, link count, mtime.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractBundle } from '../../src/bundles/extract.js';
import { debianEdits, debianFilesToRead } from '../../src/core/guest/debian.js';
import { VmforgeError } from '../../src/errors.js';
import { planDiskLayout } from '../../src/core/disk/layout.js';
import { mbrBytes } from '../../src/core/disk/mbr.js';
import { MiB } from '../../src/core/units.js';
import { GuestRoot } from '../../src/exec/guestfs/guest-root.js';
import { createSparseFile, writeAt } from '../../src/exec/tools/disk-image.js';
import { installGrubBios } from '../../src/exec/tools/grub.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { ensureLibvirt, leftovers, makeTestEnv, REPO, requireRoot, uniqueName } from '../harness/env.js';
import { writeMinimalDebianRoot } from '../harness/minimal-root.js';

requireRoot();

const runner = new HostProcessRunner();
const tag = randomBytes(4).toString('hex');
/** Host paths the archives aim at. None may change, and none that did not exist may appear. */
const CANARY = `/var/tmp/vmf-h7-canary-${tag}`;
const HOSTDIR = `/var/tmp/vmf-h7-hostdir-${tag}`;
const ESCAPE = `/var/tmp/vmf-h7-escape-${tag}`;
const HOSTDIR_FILES = ['passwd', 'ssh_host_ed25519_key', 'ssh_host_rsa_key'];

let work: string;
const mounts: string[] = [];
let canaryBefore: Snapshot;
let hostdirBefore: Record<string, Snapshot>;

interface Snapshot {
  content: string;
  ino: number;
  nlink: number;
  mtimeMs: number;
  mode: number;
}

async function snap(p: string): Promise<Snapshot> {
  const st = await lstat(p);
  return { content: await readFile(p, 'utf8'), ino: st.ino, nlink: st.nlink, mtimeMs: st.mtimeMs, mode: st.mode };
}

async function hostUntouched(): Promise<void> {
  expect(await snap(CANARY)).toEqual(canaryBefore);
  expect((await readdir(HOSTDIR)).sort()).toEqual(HOSTDIR_FILES);
  for (const f of HOSTDIR_FILES) expect(await snap(join(HOSTDIR, f))).toEqual(hostdirBefore[f]);
  expect(existsSync(ESCAPE)).toBe(false);
  // Nothing beside the mount point either (where '../x' would land).
  expect((await readdir(work)).filter((n) => !/^(fs-\d+(\.img)?|\d+\.tar(\.zst)?|\d+\.json|sparse-\d+)$/.test(n))).toEqual([]);
}

beforeAll(async () => {
  work = await mkdtemp('/var/tmp/vmf-h7-hostile-');
  await writeFile(CANARY, 'HOST CANARY: must never change\n', { mode: 0o600 });
  await mkdir(HOSTDIR, { mode: 0o700 });
  for (const f of HOSTDIR_FILES) await writeFile(join(HOSTDIR, f), `host ${f}\n`, { mode: 0o600 });
  canaryBefore = await snap(CANARY);
  hostdirBefore = Object.fromEntries(await Promise.all(HOSTDIR_FILES.map(async (f) => [f, await snap(join(HOSTDIR, f))] as const)));
});

afterAll(async () => {
  for (const m of mounts) await execa('umount', [m], { reject: false });
  if (work) await rm(work, { recursive: true, force: true });
  await rm(CANARY, { force: true });
  await rm(HOSTDIR, { recursive: true, force: true });
  await rm(ESCAPE, { recursive: true, force: true });
});

let seq = 0;

/** A fresh ext4 of `mib` MiB, loop-mounted (mount -o loop detaches the loop device at umount). */
async function freshFs(mib: number, mountOptions = 'loop'): Promise<string> {
  const n = ++seq;
  const img = join(work, `fs-${n}.img`);
  const dir = join(work, `fs-${n}`);
  await execa('truncate', ['-s', `${mib}M`, img]);
  await execa('mkfs.ext4', ['-q', '-F', '-m', '0', img]);
  await mkdir(dir);
  await execa('mount', ['-o', mountOptions, img, dir]);
  mounts.push(dir);
  return dir;
}

type Member =
  | { name: string; type: 'file'; data?: string; randomBytes?: number; mode?: number }
  | { name: string; type: 'dir'; mode?: number }
  | { name: string; type: 'symlink' | 'hardlink'; link: string }
  | { name: string; type: 'chr'; major: number; minor: number }
  | { name: string; type: 'fifo' };

/** What a Debian root minimally has for the guest edits to read. */
const BASE: Member[] = [
  { name: './', type: 'dir' },
  { name: './etc/', type: 'dir' },
  { name: './etc/default/', type: 'dir' },
  { name: './etc/default/grub', type: 'file', data: 'GRUB_TIMEOUT=5\n' },
  { name: './etc/shadow', type: 'file', data: 'root:*:19000:0:99999:7:::\n', mode: 0o640 },
];

async function zstd(tar: string): Promise<string> {
  await execa('zstd', ['-q', '-1', '-f', '--rm', tar, '-o', `${tar}.zst`]);
  return `${tar}.zst`;
}

async function archive(members: Member[]): Promise<string> {
  const n = ++seq;
  const spec = join(work, `${n}.json`);
  const tar = join(work, `${n}.tar`);
  await writeFile(spec, JSON.stringify(members));
  await execa('python3', [join(REPO, 'test/harness/make-tar.py'), tar, spec]);
  return zstd(tar);
}

/** BASE plus one GNU-sparse member `name` of `bytes` apparent size (tar -S), made from a sparse file. */
async function sparseArchive(name: string, bytes: number): Promise<string> {
  const n = ++seq;
  const src = join(work, `sparse-${n}`);
  await mkdir(join(src, 'etc/default'), { recursive: true });
  await writeFile(join(src, 'etc/default/grub'), 'GRUB_TIMEOUT=5\n');
  await writeFile(join(src, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n');
  await execa('truncate', ['-s', String(bytes), join(src, name)]);
  const tar = join(work, `${n}.tar`);
  await execa('tar', ['-c', '-S', '-f', tar, '-C', src, '.']);
  return zstd(tar);
}

/**
 * A Debian-looking root (what bundle import and a build need) plus one file `bigName` of `bytes` zeros, archived
 * without -S so its data really lands on the target: from a sparse source and streamed into zstd, it costs no
 * host disk and compresses to almost nothing.
 */
async function zerosArchive(bigName: string, bytes: number): Promise<string> {
  const n = ++seq;
  const src = join(work, `sparse-${n}`);
  await writeMinimalDebianRoot(src);
  await mkdir(join(src, bigName, '..'), { recursive: true });
  await execa('truncate', ['-s', String(bytes), join(src, bigName)]);
  const out = join(work, `${n}.tar.zst`);
  // The big file last: a member after it would fail with ENOSPC, which tar reports in words, so the only
  // failure left is the one that says nothing of the cause, tar's short write.
  const big = bigName.split('/')[0] as string;
  const rest = (await readdir(src)).filter((f) => f !== big).map((f) => `./${f}`);
  await execa('tar', ['-c', '--zstd', '-f', out, '-C', src, '--no-recursion', '.', '--recursion', ...rest, `./${big}`]);
  await rm(src, { recursive: true });
  return out;
}

async function extract(blobPath: string, targetDir: string): Promise<VmforgeError | null> {
  try {
    await extractBundle(runner, { blobPath, compression: 'zstd', targetDir, bundleRef: 'hostile:1', swapBytes: 256 * 1024 * 1024 });
    return null;
  } catch (e) {
    if (e instanceof VmforgeError) return e;
    throw e;
  }
}

/** The Debian edits of a build (hostname, hosts, fstab, interfaces, machine-id, getty, grub, ssh keys). */
async function guestEdits(root: string): Promise<VmforgeError | null> {
  try {
    const guest = new GuestRoot(root);
    const current = await guest.snapshot(debianFilesToRead());
    await guest.applyEdits(
      debianEdits({ hostname: 'victim', fstabText: 'UUID=0 / ext4 defaults 0 1\n', net: { mode: 'dhcp' }, iface: 'eth0' }, current),
    );
    return null;
  } catch (e) {
    if (e instanceof VmforgeError) return e;
    throw e;
  }
}

async function typeIn(root: string, p: string): Promise<string> {
  const st = await lstat(join(root, p)).catch(() => null);
  if (!st) return 'missing';
  if (st.isSymbolicLink()) return `symlink -> ${await readlink(join(root, p))}`;
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
}

describe('hostile bundles: nothing outside the target changes', () => {
  it("members with '..' are refused (UNSAFE_PATH); the rest stays inside", async () => {
    const root = await freshFs(32);
    const err = await extract(
      await archive([
        ...BASE,
        { name: `../../../../../..${ESCAPE}/a`, type: 'file', data: 'x' },
        { name: `etc/../../../../../..${ESCAPE}/b`, type: 'file', data: 'x' },
        { name: '../sibling', type: 'file', data: 'x' },
        { name: 'etc/ok', type: 'file', data: 'ok' },
      ]),
      root,
    );
    expect(err?.code).toBe('UNSAFE_PATH');
    expect(err?.message).toMatch(/^bundle hostile:1 has members that would land outside the target .*tar refused them: .*Member name contains '\.\.'/);
    expect(err?.hint).toMatch(/broken or hostile/);
    expect(await typeIn(root, 'etc/ok')).toBe('file');
    expect(await guestEdits(root)).toBeNull();
    await hostUntouched();
  });

  it('absolute member names land inside the target', async () => {
    const root = await freshFs(32);
    expect(await extract(await archive([...BASE, { name: `${ESCAPE}/abs`, type: 'file', data: 'x' }]), root)).toBeNull();
    expect(await typeIn(root, `${ESCAPE}/abs`)).toBe('file');
    expect(await guestEdits(root)).toBeNull();
    await hostUntouched();
  });

  it('symlinks to host files at /etc/hostname, /etc/hosts, /etc/fstab: the edits replace the links, never follow them', async () => {
    const root = await freshFs(32);
    const err = await extract(
      await archive([
        ...BASE,
        { name: 'etc/hostname', type: 'symlink', link: CANARY },
        { name: 'etc/hosts', type: 'symlink', link: `../../../../../..${CANARY}` },
        { name: 'etc/fstab', type: 'symlink', link: `${HOSTDIR}/passwd` },
        // A file member after a link of the same name replaces the link; it is not written through it.
        { name: 'etc/motd', type: 'symlink', link: CANARY },
        { name: 'etc/motd', type: 'file', data: 'OVERWRITTEN?' },
      ]),
      root,
    );
    expect(err).toBeNull();
    expect(await typeIn(root, 'etc/hostname')).toBe(`symlink -> ${CANARY}`);
    expect(await guestEdits(root)).toBeNull();
    for (const f of ['etc/hostname', 'etc/hosts', 'etc/fstab']) expect(await typeIn(root, f)).toBe('file');
    expect(await readFile(join(root, 'etc/hostname'), 'utf8')).toBe('victim\n');
    await hostUntouched();
  });

  it('a directory symlink (etc -> host dir) with etc/passwd after it: refused, nothing written through it', async () => {
    for (const link of [HOSTDIR, `../../../../../..${HOSTDIR}`]) {
      const root = await freshFs(32);
      const err = await extract(
        await archive([
          { name: './', type: 'dir' },
          { name: 'etc', type: 'symlink', link },
          { name: 'etc/passwd', type: 'file', data: 'root::0:0::/root:/bin/sh\n' },
          { name: 'etc/ssh/ssh_host_rsa_key', type: 'file', data: 'x' },
        ]),
        root,
      );
      expect(err?.code, link).toBe('UNSAFE_PATH');
      expect(err?.message).toMatch(/etc\/passwd: Cannot open: Not a directory/);
      // Were the build to go on anyway, the edits resolve /etc inside the guest, where it leads nowhere.
      const edit = await guestEdits(root);
      expect(edit?.code).toBe('NOT_FOUND');
      expect(edit?.message).toBe("cannot write guest path '/etc/hostname': '/var' is missing or not a directory");
      await hostUntouched();
    }
  });

  it('/etc/ssh -> host directory: the ssh host key clean-up does not delete the host keys', async () => {
    const root = await freshFs(32);
    expect(await extract(await archive([...BASE, { name: 'etc/ssh', type: 'symlink', link: HOSTDIR }]), root)).toBeNull();
    expect(await guestEdits(root)).toBeNull();
    await hostUntouched();
  });

  it('hard links to host files are refused (UNSAFE_PATH)', async () => {
    for (const link of [CANARY, `../../../../../..${CANARY}`]) {
      const root = await freshFs(32);
      const err = await extract(await archive([...BASE, { name: 'etc/hosts', type: 'hardlink', link }]), root);
      expect(err?.code, link).toBe('UNSAFE_PATH');
      expect(err?.message).toMatch(/etc\/hosts: Cannot hard link to/);
      expect(await typeIn(root, 'etc/hosts')).toBe('missing');
      expect(await guestEdits(root)).toBeNull();
      await hostUntouched();
    }
  });

  it('a hard link to a symlink to a host file, then a file of the same name: no write reaches the host', async () => {
    const root = await freshFs(32);
    const err = await extract(
      await archive([
        ...BASE,
        { name: 'etc/s', type: 'symlink', link: CANARY },
        { name: 'etc/hosts', type: 'hardlink', link: 'etc/s' },
        { name: 'etc/hosts', type: 'file', data: 'OVERWRITTEN?' },
      ]),
      root,
    );
    expect(err).toBeNull();
    expect(await guestEdits(root)).toBeNull();
    expect(await typeIn(root, 'etc/hosts')).toBe('file');
    await hostUntouched();
  });

  it('a 100 GiB sparse /etc/hosts extracts sparse in a 32 MiB filesystem; the edit refuses to read it', async () => {
    const root = await freshFs(32);
    expect(await extract(await sparseArchive('etc/hosts', 100 * 1024 ** 3), root)).toBeNull();
    const st = await stat(join(root, 'etc/hosts'));
    expect(st.size).toBe(100 * 1024 ** 3);
    expect(st.blocks * 512).toBeLessThan(1024 * 1024);
    const edit = await guestEdits(root);
    expect(edit?.code).toBe('INVALID_INPUT');
    expect(edit?.message).toBe("guest file '/etc/hosts' is 107374182400 bytes; the limit is 16777216");
    await hostUntouched();
  });

  it('a device node at /etc/hosts (/dev/mem) is never opened by the edits', async () => {
    const root = await freshFs(32);
    expect(await extract(await archive([...BASE, { name: 'etc/hosts', type: 'chr', major: 1, minor: 1 }]), root)).toBeNull();
    const edit = await guestEdits(root);
    expect(edit?.code).toBe('UNSAFE_PATH');
    expect(edit?.message).toBe("guest path '/etc/hosts' is a device node; refusing to touch it");
    await hostUntouched();
  });

  it('GRUB install: .mod names that are symlinks to host files, a FIFO or a device node, and /boot/grub -> host dir: nothing written through them', async () => {
    // Each case: its members, and where inside the guest the modules must land (a link is resolved inside it).
    const cases: [Member[], string][] = [
      [
        [
          { name: './boot/', type: 'dir' },
          { name: './boot/grub/', type: 'dir' },
          { name: './boot/grub/i386-pc/', type: 'dir' },
          { name: './boot/grub/i386-pc/normal.mod', type: 'symlink', link: CANARY },
          { name: './boot/grub/i386-pc/linux.mod', type: 'symlink', link: `../../../../../..${HOSTDIR}/passwd` },
          { name: './boot/grub/i386-pc/echo.mod', type: 'symlink', link: `${ESCAPE}/echo.mod` },
          { name: './boot/grub/i386-pc/serial.mod', type: 'fifo' },
          { name: './boot/grub/i386-pc/search.mod', type: 'chr', major: 1, minor: 1 },
        ],
        'boot/grub/i386-pc',
      ],
      [
        [
          { name: './boot/', type: 'dir' },
          { name: './boot/grub', type: 'symlink', link: HOSTDIR },
        ],
        `${HOSTDIR.slice(1)}/i386-pc`,
      ],
      [[{ name: './boot', type: 'symlink', link: `../../../../../..${HOSTDIR}` }], `${HOSTDIR.slice(1)}/grub/i386-pc`],
    ];
    for (const [members, modDir] of cases) {
      const root = await freshFs(64);
      expect(await extract(await archive([...BASE, ...members]), root)).toBeNull();
      const layout = planDiskLayout({ diskBytes: 128 * MiB, swapBytes: 0 });
      const disk = join(work, `fs-${++seq}.img`);
      await createSparseFile(disk, layout.diskBytes);
      await writeAt(disk, 0, mbrBytes(layout, 0x12345678));
      const res = await installGrubBios(runner, { diskPath: disk, rootMountDir: root, layout, fs: 'ext4', grubCfgText: '# test\n' });
      expect(res.modulesCopied).toBeGreaterThan(200);
      await hostUntouched();
      // The guest got regular files where the links, the FIFO and the device node were.
      for (const m of ['normal', 'linux', 'echo', 'serial', 'search']) expect(await typeIn(root, `${modDir}/${m}.mod`), `${modDir}/${m}`).toBe('file');
      expect(await readFile(join(root, modDir, 'normal.mod'))).toEqual(await readFile('/usr/lib/grub/i386-pc/normal.mod'));
    }
  });

  it('more data than the disk holds: INSUFFICIENT_SPACE saying it does not fit and which --disk to use', async () => {
    const root = await freshFs(32);
    const err = await extract(
      await archive([...BASE, { name: 'var/a.bin', type: 'file', randomBytes: 24 * 1024 * 1024 }, { name: 'var/b.bin', type: 'file', randomBytes: 24 * 1024 * 1024 }]),
      root,
    );
    expect(err?.code, err?.message).toBe('INSUFFICIENT_SPACE');
    expect(err?.message).toMatch(/^bundle hostile:1 does not fit: the 2\d\.\d MiB root filesystem filled up \d+% of the way through the archive$/);
    const disk = Number(/^use --disk (\d+)M or more \(or a smaller --swap\); the bundle unpacks to about [\d.]+ MiB, more than its manifest says$/.exec(err?.hint ?? '')?.[1]);
    // 48 MiB of data, 20% slack, 128 MiB reserve, 256 MiB of swap: over 400 MiB.
    expect(disk, err?.hint).toBeGreaterThan(400);
    await hostUntouched();
  });

  it('a 1 GiB filesystem (ext4 keeps ~16 MiB of reserved clusters that statfs counts as free) filled up: INSUFFICIENT_SPACE, no probe left', async () => {
    // nodelalloc: blocks are allocated as tar writes, so statfs shows those 16 MiB "free" the moment tar fails
    // (with delayed allocation it may or may not, depending on how much writeback is still pending).
    const root = await freshFs(1024, 'loop,nodelalloc');
    const err = await extract(await zerosArchive('var/big.bin', 1100 * 1024 * 1024), root);
    expect(err?.code, err?.message).toBe('INSUFFICIENT_SPACE');
    expect(err?.message).toMatch(/^bundle hostile:1 does not fit: the \d{3,4}(\.\d)? MiB root filesystem filled up \d+% of the way through the archive$/);
    expect(err?.hint).toMatch(/^use --disk \d+M or more \(or a smaller --swap\); the bundle unpacks to about /);
    expect((await readdir(root)).filter((f) => f.startsWith('.vmforge-space-probe'))).toEqual([]);
    await hostUntouched();
  });

  it('through the CLI: a bundle whose manifest understates its unpacked size, built on a 1 GiB disk: exit 11 with the --disk hint, nothing left', async () => {
    await ensureLibvirt();
    const env = await makeTestEnv();
    try {
      const config = join(env.dir, 'understated.yaml');
      await writeFile(config, `stateDir: ${env.config.stateDir}\nbundles:\n  dir: ${env.dir}/bundles\nstorage:\n  clone: off\n`);
      const imported = await env.cli(['bundle', 'import', await zerosArchive('var/big.bin', 1100 * 1024 * 1024), '--name', 'understated', '--version', '1', '--arch', 'x86_64'], {
        env: { VMFORGE_CONFIG: config },
      });
      expect(imported.exitCode, imported.stderr).toBe(0);
      // What a publisher with a write token could upload: the manifest says 10 MiB.
      const manifestPath = join(env.dir, 'bundles/manifests/understated/1.json');
      const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { unpackedBytes: number };
      expect(manifest.unpackedBytes).toBeGreaterThan(1100 * 1024 * 1024);
      await writeFile(manifestPath, JSON.stringify({ ...manifest, unpackedBytes: 10 * 1024 * 1024 }));
      const name = uniqueName('hd-full');
      const r = await env.cli(['vm', 'build', name, '--bundle', 'understated:1', '--memory', '256M', '--disk', '1G', '--swap', '0', '--net', 'none', '--no-start'], {
        env: { VMFORGE_CONFIG: config },
      });
      expect(r.exitCode, r.stderr).toBe(11);
      expect(r.stderr).toMatch(/^error: bundle understated:1 does not fit: the \d{3,4}(\.\d)? MiB root filesystem filled up \d+% of the way through the archive$/m);
      expect(r.stderr).toMatch(/^hint: use --disk \d+M or more/m);
      expect(r.stderr).not.toMatch(/undo also failed/);
      expect(await leftovers(env, name)).toEqual([]);
      await hostUntouched();
    } finally {
      await env.cleanup();
    }
  });

  it('through the CLI: bundle import of a hostile archive, then vm build fails with UNSAFE_PATH and leaves nothing', async () => {
    await ensureLibvirt();
    const env = await makeTestEnv();
    try {
      // Its own bundle store, so the hostile bundle never reaches the shared template cache.
      const config = join(env.dir, 'hostile.yaml');
      await writeFile(config, `stateDir: ${env.config.stateDir}\nbundles:\n  dir: ${env.dir}/bundles\n`);
      const blob = await archive([
        ...BASE,
        { name: './etc/os-release', type: 'file', data: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' },
        { name: './bin/', type: 'dir' },
        { name: './bin/sh', type: 'file', data: (await readFile('/bin/sh')).subarray(0, 64).toString('latin1') },
        { name: './boot/', type: 'dir' },
        { name: './boot/vmlinuz-6.1.0-1-amd64', type: 'file', data: 'kernel' },
        { name: './boot/initrd.img-6.1.0-1-amd64', type: 'file', data: 'initrd' },
        { name: './opt', type: 'symlink', link: HOSTDIR },
        { name: './opt/passwd', type: 'file', data: 'root::0:0::/root:/bin/sh\n' },
      ]);
      const imported = await env.cli(['bundle', 'import', blob, '--name', 'hostile', '--version', '1', '--arch', 'x86_64'], { env: { VMFORGE_CONFIG: config } });
      expect(imported.exitCode, imported.stderr).toBe(0);
      const name = uniqueName('vmfhostile');
      const r = await env.cli(['vm', 'build', name, '--bundle', 'hostile:1', '--memory', '256M', '--disk', '1G', '--swap', '0', '--net', 'none', '--no-start'], {
        env: { VMFORGE_CONFIG: config },
      });
      expect(r.exitCode, r.stderr).toBe(10);
      // 'bundle hostile:1' once the build passes bundleRef to extractBundle; the blob's path until then.
      expect(r.stderr).toMatch(
        /^error: bundle (hostile:1|archive \S+\.tar\.zst) has members that would land outside the target or write through a symlink; tar refused them: \.\/opt\/passwd: Cannot open: Not a directory$/m,
      );
      expect(r.stderr).toMatch(/^hint: the archive is broken or hostile/m);
      expect(r.stderr).not.toMatch(/undo also failed/);
      expect(await leftovers(env, name)).toEqual([]);
      await hostUntouched();
    } finally {
      await env.cleanup();
    }
  });
});
