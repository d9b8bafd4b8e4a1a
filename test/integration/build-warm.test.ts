/**
 * The warm build (issue #6) through the real CLI: `--clone qcow2` makes a qcow2 overlay on the bundle's golden
 * image (prepared once, by one build, even when three ask at the same time), grows and edits it through a
 * qemu-storage-daemon FUSE export, and defines the domain on the overlay. Checked from the outside: the domain
 * XML, the overlay's backing file, the guest files and filesystem size seen through a read-only export; every
 * warm step failing before and after leaves nothing (no export, daemon, loop, mount, file, row, journal entry)
 * and the golden image unchanged; Ctrl-C while a golden image is prepared leaves neither it nor its temp file.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layoutFromMbr } from '../../src/core/disk/mbr-read.js';
import { rootPartition, swapPartition } from '../../src/core/disk/layout.js';
import { GiB, MiB } from '../../src/core/units.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { readAt } from '../../src/exec/tools/disk-image.js';
import { attachLoop, detachLoop } from '../../src/exec/tools/loop.js';
import { mount, umount } from '../../src/exec/tools/mount.js';
import { imageInfo } from '../../src/exec/tools/qcow2.js';
import { exportQcow2AsRaw } from '../../src/exec/tools/qsd-fuse.js';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, REPO, requireRoot, uniqueName, type TestEnv } from '../harness/env.js';

requireRoot();

const runner = new HostProcessRunner();
let env: TestEnv;
let bundle: string;
const base = ['--memory', '256M', '--swap', '128M', '--net', 'none', '--no-start', '--clone', 'qcow2'];
const DISK = 3 * GiB;

interface Event {
  event: string;
  step?: string;
  message?: string;
  durationMs?: number;
  result?: Record<string, unknown>;
}

function events(stdout: string): Event[] {
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Event);
}

function goldenInfo(ev: Event[]): 'prepared' | 'reused' | 'none' {
  const msgs = ev.filter((e) => e.event === 'step.info' && e.step === 'golden.ensure').map((e) => e.message ?? '');
  if (msgs.some((m) => m.endsWith(', prepared'))) return 'prepared';
  if (msgs.some((m) => m.endsWith(': reused'))) return 'reused';
  return 'none';
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function goldenDir(): Promise<string[]> {
  return (await readdir(join(env.config.storage.dir, 'golden')).catch(() => [] as string[])).sort();
}

async function build(name: string, extra: string[] = [], cliEnv: Record<string, string> = {}) {
  return env.cli(['vm', 'build', name, '--bundle', bundle, '--disk', String(DISK / MiB) + 'M', ...base, ...extra, '--json'], { env: cliEnv });
}

/** The overlay's root filesystem, read-only through its own export + loop device, handed to fn. */
async function withOverlayRoot<T>(overlay: string, fs: 'ext4' | 'xfs', fn: (dir: string, device: string, disk: { root: number; swapOffset: number | null; sizeBytes: number }) => Promise<T>): Promise<T> {
  const work = join(env.dir, 'inspect');
  await mkdir(work, { recursive: true });
  const exp = await exportQcow2AsRaw(runner, { qcow2Path: overlay, exportPath: join(work, 'disk.raw'), readOnly: true });
  try {
    const layout = layoutFromMbr(await readAt(exp.rawPath, 0, 512), exp.sizeBytes);
    const root = rootPartition(layout);
    const loop = await attachLoop(runner, { file: exp.rawPath, offsetBytes: root.offsetBytes, sizeBytes: root.sizeBytes, readOnly: true });
    try {
      const dir = join(work, 'mnt');
      await mkdir(dir, { recursive: true });
      const m = await mount(runner, { device: loop.device, target: dir, options: ['ro', fs === 'xfs' ? 'norecovery' : 'noload'] });
      try {
        return await fn(dir, loop.device, { root: root.sizeBytes, swapOffset: swapPartition(layout)?.offsetBytes ?? null, sizeBytes: exp.sizeBytes });
      } finally {
        await umount(runner, m);
        await rmdir(dir);
      }
    } finally {
      await detachLoop(runner, loop);
    }
  } finally {
    await exp.stop();
  }
}

beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
  env = await makeTestEnv('storage:\n  clone: qcow2\n');
});

afterAll(async () => {
  await env?.cleanup();
});

describe('vm build --clone qcow2 (warm path)', () => {
  const first = uniqueName('vmfwarm');
  let goldenPath = '';
  let goldenSha = '';

  it('plans the warm steps', async () => {
    const r = await env.cli(['vm', 'build', 'plan-only', '--bundle', bundle, ...base, '--dry-run', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const plan = (events(r.stdout).at(-1)?.result as { plan: { steps: { id: string }[]; clone: { strategy: string; goldenPath: string } } }).plan;
    expect(plan.steps.map((s) => s.id)).toEqual([
      'inventory.reserve', 'golden.ensure', 'clone.create', 'clone.attach', 'disk.grow', 'root.reuuid', 'root.mount',
      'guest.configure', 'boot.configure', 'root.release', 'domain.define', 'inventory.commit',
    ]);
    expect(plan.clone.strategy).toBe('qcow2');
    expect(plan.clone.goldenPath).toMatch(new RegExp(`^${env.config.storage.dir}/golden/[0-9a-f]{64}-ext4-l1-bios-f2\\.img$`));
  });

  it('the default NIC picks an active libvirt network, asked in the same virsh start as the domain names', async () => {
    // test:///default (a private connection per virsh process) has the active network 'default' and no bridge.
    const wrapDir = join(env.dir, 'virsh-nic-auto');
    const calls = join(wrapDir, 'calls.log');
    await mkdir(wrapDir);
    await writeFile(join(wrapDir, 'virsh'), `#!/bin/sh\necho "$*" >> '${calls}'\nexec /usr/bin/virsh "$@"\n`, { mode: 0o755 });
    const args = base.filter((a, i) => a !== '--net' && base[i - 1] !== '--net');
    const r = await env.cli(['vm', 'build', 'nic-auto', '--bundle', bundle, ...args, '--connect', 'test:///default', '--dry-run', '--json'], {
      env: { PATH: `${wrapDir}:${process.env.PATH ?? ''}` },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const plan = (events(r.stdout).at(-1)?.result as { plan: { spec: { nic: unknown } } }).plan;
    expect(plan.spec.nic).toEqual({ type: 'network', network: 'default' });
    const virshCalls = (await readFile(calls, 'utf8')).trim().split('\n');
    expect(virshCalls.filter((c) => /net-list/.test(c))).toEqual([expect.stringMatching(/net-list --name ; echo vmforge-[0-9a-f]{16} ; list --all --name$/)]);
  });

  it('builds a domain on a qcow2 overlay of the golden image, edited and grown', async () => {
    const r = await build(first);
    expect(r.exitCode, r.stderr).toBe(0);
    const ev = events(r.stdout);
    expect(goldenInfo(ev)).toBe('prepared');
    const result = ev.at(-1)?.result as { diskPath: string; state: string };
    expect(result.state).toBe('defined');
    expect(result.diskPath).toBe(join(env.config.storage.dir, `${first}.qcow2`));

    const xml = (await execa('virsh', ['-c', env.config.libvirt.uri, 'dumpxml', '--inactive', first])).stdout;
    expect(xml).toMatch(/<driver name='qemu' type='qcow2'/);
    expect(xml).toContain(`<source file='${result.diskPath}'/>`);

    const info = await imageInfo(runner, result.diskPath);
    expect(info).toMatchObject({ format: 'qcow2', virtualSizeBytes: DISK, backingFormat: 'raw', corrupt: false });
    goldenPath = info.fullBackingFile as string;
    expect(goldenPath).toMatch(new RegExp(`^${env.config.storage.dir}/golden/[0-9a-f]{64}-ext4-l1-bios-f2\\.img$`));
    expect((await stat(goldenPath)).mode & 0o777).toBe(0o444);
    goldenSha = await sha256(goldenPath);
    // The overlay holds only what this VM changed.
    expect(info.actualSizeBytes).toBeLessThan(64 * MiB);

    const goldenUuid = (await execa('blkid', ['-p', '-O', String(MiB), '-s', 'UUID', '-o', 'value', goldenPath])).stdout.trim();
    await withOverlayRoot(result.diskPath, 'ext4', async (dir, device, disk) => {
      expect(disk.sizeBytes).toBe(DISK);
      expect((await readFile(join(dir, 'etc/hostname'), 'utf8')).trim()).toBe(first);
      expect(await readFile(join(dir, 'etc/machine-id'), 'utf8')).toBe('');
      const uuid = (await execa('blkid', ['-p', '-s', 'UUID', '-o', 'value', device])).stdout.trim();
      expect(uuid).not.toBe(goldenUuid);
      const fstab = await readFile(join(dir, 'etc/fstab'), 'utf8');
      expect(fstab).toContain(`UUID=${uuid} / ext4`);
      expect(await readFile(join(dir, 'boot/grub/grub.cfg'), 'utf8')).toContain(`search --no-floppy --fs-uuid --set=root ${uuid}`);
      // Grown: the filesystem fills the 3 GiB disk's root partition, not the golden's ~0.5 GiB.
      const fsBytes = Number((await execa('df', ['-B1', '--output=size', dir])).stdout.trim().split('\n').at(-1));
      expect(fsBytes).toBeGreaterThan(0.9 * disk.root);
      expect(disk.root).toBe(DISK - MiB - 128 * MiB);
      // The swap header at the new swap partition carries the UUID fstab names.
      const swapUuid = /UUID=(\S+) none swap/.exec(fstab)?.[1];
      expect(swapUuid).toBeDefined();
      const probe = (await execa('blkid', ['-p', '-O', String(disk.swapOffset), '-o', 'export', join(env.dir, 'inspect', 'disk.raw')])).stdout;
      expect(probe).toMatch(/^TYPE=swap$/m);
      expect(probe).toContain(`UUID=${swapUuid}`);
    });
    expect(await sha256(goldenPath)).toBe(goldenSha);
  });

  it('a second warm build reuses the golden image', async () => {
    const name = uniqueName('vmfwarm');
    const r = await build(name);
    expect(r.exitCode, r.stderr).toBe(0);
    const ev = events(r.stdout);
    expect(goldenInfo(ev)).toBe('reused');
    const ensure = ev.find((e) => e.event === 'step.done' && e.step === 'golden.ensure');
    expect(ensure?.durationMs).toBeLessThan(1000);
    const info = await imageInfo(runner, join(env.config.storage.dir, `${name}.qcow2`));
    expect(info.fullBackingFile).toBe(goldenPath);
    expect(await goldenDir()).toEqual([goldenPath.split('/').at(-1)]);
    const d = await env.cli(['vm', 'destroy', name]);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(await leftovers(env, name)).toEqual([]);
  });

  it('destroy removes the overlay and keeps the golden image', async () => {
    const d = await env.cli(['vm', 'destroy', first]);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(await leftovers(env, first)).toEqual([]);
    expect(await stat(join(env.config.storage.dir, `${first}.qcow2`)).catch(() => null)).toBeNull();
    expect(await sha256(goldenPath)).toBe(goldenSha);
  });

  it('three concurrent builds needing a new golden image (xfs) prepare it once', async () => {
    const names = [uniqueName('vmfconc'), uniqueName('vmfconc'), uniqueName('vmfconc')];
    try {
      await concurrent(names);
    } finally {
      for (const n of names) await env.cli(['vm', 'destroy', n]);
    }
    for (const n of names) expect(await leftovers(env, n)).toEqual([]);
  });

  async function concurrent(names: string[]): Promise<void> {
    const rs = await Promise.all(names.map((n) => build(n, ['--fs', 'xfs'])));
    for (const r of rs) expect(r.exitCode, r.stderr).toBe(0);
    const kinds = rs.map((r) => goldenInfo(events(r.stdout))).sort();
    expect(kinds).toEqual(['prepared', 'reused', 'reused']);
    const files = await goldenDir();
    expect(files.filter((f) => f.endsWith('-xfs-l1-bios-f2.img'))).toHaveLength(1);
    expect(files.filter((f) => !f.endsWith('.img'))).toEqual([]); // no lock, no temp file
    for (const n of names) {
      const info = await imageInfo(runner, join(env.config.storage.dir, `${n}.qcow2`));
      expect(info.fullBackingFile).toMatch(/-xfs-l1-bios-f2\.img$/);
    }
    await withOverlayRoot(join(env.config.storage.dir, `${names[0]}.qcow2`), 'xfs', async (dir, _dev, disk) => {
      expect((await readFile(join(dir, 'etc/hostname'), 'utf8')).trim()).toBe(names[0]);
      const fsBytes = Number((await execa('df', ['-B1', '--output=size', dir])).stdout.trim().split('\n').at(-1));
      expect(fsBytes).toBeGreaterThan(0.9 * disk.root);
    });
  }

  it('a failure before or after any warm step leaves nothing, and the golden image intact', async () => {
    const r = await env.cli(['vm', 'build', 'plan-only', '--bundle', bundle, ...base, '--dry-run', '--json']);
    const steps = (events(r.stdout).at(-1)?.result as { plan: { steps: { id: string }[] } }).plan.steps.map((s) => s.id);
    const faults = steps.flatMap((s) => [`before:${s}`, `after:${s}`]);
    const report: string[] = [];
    for (const fault of faults) {
      const name = uniqueName('vmfwfault');
      const res = await build(name, [], { VMFORGE_FAULT: fault });
      expect(res.exitCode, `${fault}: ${res.stderr}`).not.toBe(0);
      expect(res.stderr).toContain(`injected fault ${fault.replace(':', " step '")}'`);
      expect(res.stderr).not.toContain('undo also failed');
      const left = await leftovers(env, name);
      if (left.length) report.push(`${fault}: ${left.join(', ')}`);
      const golden = await goldenDir();
      if (golden.some((f) => !f.endsWith('.img'))) report.push(`${fault}: golden dir holds ${golden.join(', ')}`);
    }
    expect(report).toEqual([]);
    expect(await sha256(goldenPath)).toBe(goldenSha);
  }, 1_200_000);

  it('SIGKILL at the start of each warm step, then recover: no export, daemon, loop or file is left', async () => {
    const killAt = ['clone.create', 'clone.attach', 'disk.grow', 'root.reuuid', 'root.mount', 'guest.configure', 'boot.configure', 'root.release', 'domain.define'];
    const report: string[] = [];
    for (const step of killAt) {
      const name = uniqueName('vmfwkill');
      const child = execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'vm', 'build', name, '--bundle', bundle, '--disk', '3G', ...base, '--json'], {
        cwd: REPO,
        env: { VMFORGE_CONFIG: env.configPath },
        reject: false,
      });
      let killed = false;
      child.stdout?.on('data', (d: Buffer) => {
        if (!killed && d.toString().includes(`"event":"step.start","step":"${step}"`)) {
          killed = true;
          // Only vmforge, as the OOM killer would: qemu-storage-daemon (own process group) keeps serving.
          child.kill('SIGKILL');
        }
      });
      await child;
      expect(killed, step).toBe(true);
      const rec = await env.cli(['recover', '--json']);
      expect(rec.exitCode, rec.stderr).toBe(0);
      const left = await leftovers(env, name);
      if (left.length) report.push(`killed at ${step}: ${left.join(', ')}`);
    }
    expect(report).toEqual([]);
    expect(await sha256(goldenPath)).toBe(goldenSha);
  }, 1_200_000);

  it('cache list shows golden images and their users; cache prune removes the unused ones', async () => {
    const name = uniqueName('vmfwcache');
    expect((await build(name)).exitCode).toBe(0);
    try {
      const l = await env.cli(['cache', 'list', '--json']);
      expect(l.exitCode, l.stderr).toBe(0);
      const gs = JSON.parse(l.stdout) as { key: string; users: string[]; bundles: string[] }[];
      expect(gs.map((g) => [g.key.slice(65), g.users])).toEqual([
        ['ext4-l1-bios-f2', [name]],
        ['xfs-l1-bios-f2', []],
      ]);
      expect(gs[0]?.bundles).toEqual([bundle]);
      const p = await env.cli(['cache', 'prune', '--json']);
      expect(p.exitCode, p.stderr).toBe(0);
      const res = JSON.parse(p.stdout) as { removed: { key: string }[]; kept: { key: string }[] };
      expect(res.removed.map((g) => g.key.slice(65))).toEqual(['xfs-l1-bios-f2']);
      expect(res.kept.map((g) => g.key.slice(65))).toEqual(['ext4-l1-bios-f2']);
      expect(await sha256(goldenPath)).toBe(goldenSha);
    } finally {
      expect((await env.cli(['vm', 'destroy', name])).exitCode).toBe(0);
    }
    expect((await env.cli(['cache', 'prune'])).exitCode).toBe(0);
    expect(await goldenDir()).toEqual([]);
  });

  it('Ctrl-C while a golden image is prepared leaves neither the image nor its temp file', async () => {
    const other = await makeTestEnv('storage:\n  clone: qcow2\n');
    try {
      const name = uniqueName('vmfwint');
      const child = execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'vm', 'build', name, '--bundle', bundle, ...base, '--json'], {
        cwd: REPO,
        env: { VMFORGE_CONFIG: other.configPath },
        reject: false,
      });
      let sent = false;
      child.stdout?.on('data', (d: Buffer) => {
        // The bundle extraction into the golden's temp file reports progress: interrupt it there.
        if (!sent && d.toString().includes('"event":"step.progress","step":"golden.ensure"')) {
          sent = true;
          child.kill('SIGINT');
        }
      });
      const res = await child;
      expect(sent).toBe(true);
      expect(res.exitCode).toBe(130);
      expect(await leftovers(other, name)).toEqual([]);
      expect(await readdir(join(other.config.storage.dir, 'golden')).catch(() => [])).toEqual([]);
      expect(await readdir(join(other.config.runDir, 'mnt')).catch(() => [])).toEqual([]);
    } finally {
      await other.cleanup();
    }
  });
});
