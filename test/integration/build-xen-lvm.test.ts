/**
 * Xen and LVM through the real CLI on a host that has neither Xen nor device-mapper:
 *  - a Xen PV build with the partitions layout is made for real on image files (root fs made on a loop device
 *    without offset, swap on its own image, guest edited, pygrub's grub.cfg written), and its domain is
 *    defined and started on libvirt's test driver through libvirtd (`--connect test+unix:///default`); its
 *    XML passes virt-xml-validate; destroy removes both images. A fault before/after every step leaves nothing.
 *  - LVM: --dry-run output (lvcreate/lvremove argv, sizes checked against vgs) against goldens, with stub vgs/lvs
 *    on PATH printing what real ones would; a real LVM build fails before anything exists.
 *
 * test:///default in a virsh process is private to that process; through libvirtd (test+unix://) the default
 * test connection is shared by every client while one of them keeps it open, so a holder virsh process keeps
 * it open for this file (its domains are prefixed xlvm- and removed by the tests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matchGolden } from '../harness/golden.js';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, requireRoot, uniqueName, type TestEnv } from '../harness/env.js';

requireRoot();

const URI = 'test+unix:///default';
let env: TestEnv;
let bundle: string;
let holder: ChildProcess | undefined;
const base = ['--memory', '256M', '--disk', '2G', '--swap', '128M', '--net', 'none'];

beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
  env = await makeTestEnv(`libvirt:\n  uri: ${URI}\n`);
  holder = spawn('virsh', ['-c', URI], { stdio: ['pipe', 'ignore', 'ignore'] });
  // The holder's connection must be open before the first build's virsh calls come and go.
  for (let i = 0; i < 50; i++) {
    const r = await execa('virsh', ['-c', URI, 'list', '--all', '--name'], { reject: false });
    if (r.exitCode === 0) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  await new Promise((res) => setTimeout(res, 500));
});
afterAll(async () => {
  holder?.stdin?.end();
  if (holder?.pid) process.kill(holder.pid);
  await env?.cleanup();
});

async function withImageMounted<T>(image: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const loop = (await execa('losetup', ['-f', '--show', '-r', image])).stdout.trim();
  const dir = `${image}.mnt`;
  await mkdir(dir);
  try {
    await execa('mount', ['-o', 'ro', loop, dir]);
    try {
      return await fn(dir);
    } finally {
      await execa('umount', [dir]);
    }
  } finally {
    await rmdir(dir);
    await execa('losetup', ['-d', loop]);
  }
}

describe('Xen PV, partitions layout, file backend, test driver', () => {
  const name = uniqueName('xlvm-xen');
  afterAll(async () => {
    await env.cli(['vm', 'destroy', name, '--connect', URI]);
    expect(await leftovers(env, name)).toEqual([]);
  });

  it('builds root and swap images, edits the guest, writes grub.cfg for pygrub, defines and starts the domain', async () => {
    const r = await env.cli(['vm', 'build', name, '--bundle', bundle, ...base, '--hypervisor', 'xen', '--connect', URI]);
    expect(r.exitCode, r.stderr).toBe(0);
    const root = join(env.config.storage.dir, `${name}.img`);
    const swap = join(env.config.storage.dir, `${name}-swap.img`);

    const rootId = await execa('blkid', ['-o', 'export', root]);
    expect(rootId.stdout).toMatch(/^TYPE=ext4$/m);
    const rootUuid = /^UUID=(.*)$/m.exec(rootId.stdout)?.[1];
    expect((await execa('blkid', ['-o', 'export', swap])).stdout).toMatch(/^TYPE=swap$/m);
    // No partition table on either: the filesystem starts at byte 0 (xvda1 is the whole image).
    expect((await execa('sfdisk', ['-d', root], { reject: false })).exitCode).not.toBe(0);

    const xml = (await execa('virsh', ['-c', URI, 'dumpxml', name])).stdout;
    expect(xml).toContain("<domain type='xen'");
    expect(xml).toMatch(/<bootloader>[^<]*pygrub<\/bootloader>/);
    expect(xml).toContain(`<source file='${root}'/>`);
    expect(xml).toContain("<target dev='xvda1' bus='xen'/>");
    expect(xml).toContain(`<source file='${swap}'/>`);
    expect(xml).toContain("<target dev='xvda2' bus='xen'/>");
    const file = join(env.dir, `${name}.xml`);
    await writeFile(file, xml);
    const v = await execa('virt-xml-validate', [file, 'domain'], { reject: false });
    expect(v.stdout + v.stderr).toMatch(/validates/);
    expect((await execa('virsh', ['-c', URI, 'domstate', name])).stdout.trim()).toBe('running');

    await withImageMounted(root, async (dir) => {
      const cfg = await readFile(join(dir, 'boot/grub/grub.cfg'), 'utf8');
      expect(cfg).toMatch(new RegExp(`^\\tlinux /boot/vmlinuz-\\S+ root=UUID=${rootUuid} ro console=hvc0`, 'm'));
      expect(cfg).toMatch(/^\tinitrd \/boot\/initrd\.img-/m);
      expect(cfg).not.toMatch(/insmod|search|serial/);
      expect((await readFile(join(dir, 'etc/hostname'), 'utf8')).trim()).toBe(name);
      const fstab = await readFile(join(dir, 'etc/fstab'), 'utf8');
      expect(fstab).toContain(`UUID=${rootUuid}`);
      expect(fstab).toMatch(/\sswap\s/);
      // No GRUB was installed: no boot sector code to find, no core.img.
      expect(await readdir(join(dir, 'boot/grub'))).toEqual(['grub.cfg']);
    });
  });

  it('destroy removes the domain and both images', async () => {
    const r = await env.cli(['vm', 'destroy', name, '--connect', URI]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await leftovers(env, name)).toEqual([]);
  });
});

describe('plan goldens: their domain XML is what libvirt accepts', () => {
  it('every src/core/plan/__golden__/plan-*.txt XML passes virt-xml-validate', async () => {
    const dir = join(import.meta.dirname, '../../src/core/plan/__golden__');
    const files = (await readdir(dir)).filter((f) => f.startsWith('plan-'));
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const f of files) {
      const text = await readFile(join(dir, f), 'utf8');
      const xml = join(env.dir, f.replace(/\.txt$/, '.xml'));
      await writeFile(xml, text.slice(text.indexOf('<domain ')));
      const v = await execa('virt-xml-validate', [xml, 'domain'], { reject: false });
      expect(v.stdout + v.stderr, f).toMatch(/validates/);
    }
  });
});

describe('Xen build: a failure at any step undoes everything', () => {
  it('covers every step of the plan, before and after', async () => {
    const plan = await env.cli(['vm', 'build', 'xlvm-plan', '--bundle', bundle, ...base, '--hypervisor', 'xen', '--dry-run', '--json']);
    expect(plan.exitCode, plan.stderr).toBe(0);
    const steps = (JSON.parse(plan.stdout.trim().split('\n').at(-1) as string) as { result: { plan: { steps: { id: string }[] } } }).result.plan.steps.map((s) => s.id);
    expect(steps).toContain('boot.pygrub');
    const report: string[] = [];
    for (const fault of [...steps.map((s) => `before:${s}`), ...steps.filter((s) => s !== 'inventory.commit').map((s) => `after:${s}`)]) {
      const name = uniqueName('xlvm-fault');
      const r = await env.cli(['vm', 'build', name, '--bundle', bundle, ...base, '--hypervisor', 'xen', '--connect', URI], { env: { VMFORGE_FAULT: fault } });
      expect(r.exitCode, `${fault}: ${r.stderr}`).not.toBe(0);
      const left = await leftovers(env, name);
      if (left.length) report.push(`${fault}: ${left.join(', ')}`);
    }
    expect(report).toEqual([]);
  });
});

/** Stub vgs/lvs printing what lvm2 prints for a VG of 100 GiB free in 4 MiB extents and a 50 GiB thin pool 10 % full. */
async function fakeLvmBin(vgFree = '107374182400'): Promise<string> {
  const bin = await mkdtemp(join(env.dir, 'fake-lvm-'));
  const script = (out: string) => `#!/bin/sh\nprintf '%s\\n' '${out}'\n`;
  await writeFile(join(bin, 'vgs'), script(`  ${vgFree} 4194304`));
  await writeFile(join(bin, 'lvs'), script('  53687091200 10.00 twi-a-tz--'));
  // Present only so the tool check passes: a dry run never runs them (they fail loudly if it did).
  for (const t of ['lvcreate', 'lvremove']) await writeFile(join(bin, t), '#!/bin/sh\necho "stub $0 must not run" >&2\nexit 99\n');
  for (const t of ['vgs', 'lvs', 'lvcreate', 'lvremove']) await chmod(join(bin, t), 0o755);
  return bin;
}

/** Random identifiers and this run's paths out of a dry run, so it can be compared with a golden. */
function normalize(text: string): string {
  return text
    .replaceAll(env.dir, '<dir>')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
    .replace(/(52:54:00|00:16:3e)(:[0-9a-f]{2}){3}/g, '$1:<mac>')
    // The accelerator verdict depends on the host (KVM or not, probe cached or not).
    .replace(/^ {2}accel: {4}.*$/m, '  accel:    <verdict>')
    .replace(/debian-bookworm:[0-9a-z-]+/g, 'debian-bookworm:<version>')
    .replace(/, \d+ MiB unpacked, kernel \/boot\/vmlinuz-\S+\)/, ', <size> unpacked, kernel <kernel>)')
    .replace(/\/boot\/(vmlinuz|initrd\.img)-[^\s<]+/g, '/boot/$1-<version>');
}

describe('LVM', () => {
  it.each([
    ['kvm', ['--storage', 'lvm:vg0']],
    ['xen-partitions', ['--storage', 'lvm:vg0', '--hypervisor', 'xen']],
    ['xen-partitions-thin', ['--storage', 'lvm:vg0/pool0', '--hypervisor', 'xen']],
  ])('--dry-run %s prints the exact lvcreate/lvremove plan (stub vgs/lvs)', async (label, flags) => {
    const bin = await fakeLvmBin();
    const r = await env.cli(['vm', 'build', 'xlvm-dry', '--bundle', bundle, ...base, ...flags, '--dry-run'], { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } });
    expect(r.exitCode, r.stderr).toBe(0);
    matchGolden(import.meta.dirname, `lvm-dry-run-${label}.txt`, normalize(r.stdout));
  });

  it('--dry-run refuses a disk larger than the VG, naming the VG and the sizes', async () => {
    const bin = await fakeLvmBin(String(1024 * 1024 * 1024));
    const r = await env.cli(['vm', 'build', 'xlvm-dry', '--bundle', bundle, ...base, '--storage', 'lvm:vg0', '--disk', '4G', '--dry-run'], { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/volume group vg0 has 1\.0 GiB free; VM xlvm-dry needs 4\.0 GiB/);
  });

  it('a real LVM build on this host fails before anything exists', async () => {
    const name = uniqueName('xlvm-lvm');
    const r = await env.cli(['vm', 'build', name, '--bundle', bundle, ...base, '--storage', 'lvm:vg0', '--connect', URI]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/storage lvm:vg0 needs LVM, but .*vgs.* is not installed|LVM volume group vg0 not found/);
    expect(await leftovers(env, name)).toEqual([]);
    expect(await readdir(env.config.storage.dir).catch(() => [])).toEqual([]);
    const list = await env.cli(['vm', 'list', '--json']);
    expect(JSON.parse(list.stdout || '[]')).toEqual([]);
  });

  it('a real LVM build whose VG does not exist fails before anything exists', async () => {
    const bin = await mkdtemp(join(env.dir, 'fake-lvm-novg-'));
    await writeFile(join(bin, 'vgs'), '#!/bin/sh\necho \'  Volume group "vg0" not found\' >&2\necho \'  Cannot process volume group vg0\' >&2\nexit 5\n');
    for (const t of ['lvs', 'lvcreate', 'lvremove']) await writeFile(join(bin, t), '#!/bin/sh\nexit 99\n');
    for (const t of ['vgs', 'lvs', 'lvcreate', 'lvremove']) await chmod(join(bin, t), 0o755);
    const name = uniqueName('xlvm-novg');
    const r = await env.cli(['vm', 'build', name, '--bundle', bundle, ...base, '--storage', 'lvm:vg0', '--connect', URI], { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/LVM volume group vg0 not found/);
    expect(await leftovers(env, name)).toEqual([]);
    await rm(bin, { recursive: true, force: true });
  });
});
