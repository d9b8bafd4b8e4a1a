import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandRunner, RunResult } from '../exec/runner.js';
import type { AccelFactPaths } from '../exec/host/accel-facts.js';
import { probeCachePath } from '../exec/host/accel-cache.js';
import { acceleratorVerdict, describeVerdict } from './accelerator.js';

/**
 * The facts are real files (a fake host described in a temp dir; /dev/null and /dev/zero stand in for a
 * read-write /dev/kvm); libvirt is a scripted runner that records what it was asked.
 */
class ScriptedVirsh implements CommandRunner {
  calls: string[][] = [];
  constructor(private readonly domcaps: 'kvm' | 'fail') {}
  async run(argv: readonly string[]): Promise<RunResult> {
    this.calls.push([...argv]);
    const verb = argv.find((a) => ['domcapabilities', 'create', 'destroy', 'list'].includes(a));
    if (verb === 'domcapabilities') {
      if (this.domcaps === 'fail') throw Object.assign(new Error(`${argv.join(' ')} exited with 1: error: KVM is not supported`), { code: 'COMMAND_FAILED' });
      return { stdout: '<domainCapabilities><path>/bin/sh</path><domain>kvm</domain></domainCapabilities>', stderr: '', exitCode: 0 };
    }
    // The "created" guest never writes its serial log: the probe times out.
    if (verb === 'create' || verb === 'destroy' || verb === 'list') return { stdout: '', stderr: '', exitCode: 0 };
    throw new Error(`unexpected ${argv.join(' ')}`);
  }
  count(verb: string): number {
    return this.calls.filter((c) => c.includes(verb)).length;
  }
}

let dir: string;
let paths: AccelFactPaths;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ac-accel-app-'));
  // The probe's directory goes here: it must be searchable, as for libvirt's QEMU user.
  await chmod(dir, 0o711);
  const f = (name: string, text: string) => writeFile(join(dir, name), text).then(() => join(dir, name));
  paths = {
    kvmDevice: '/dev/null',
    cpuinfo: await f('cpuinfo', 'processor\t: 0\nflags\t\t: fpu vmx\n'),
    modules: await f('modules', 'kvm_intel 1 0 - Live 0x0\nkvm 1 1 kvm_intel, Live 0x0\n'),
    qemuConf: await f('qemu.conf', '#user = "libvirt-qemu"\n#group = "libvirt-qemu"\n'),
    passwd: await f('passwd', 'root:x:0:0::/root:/bin/sh\nlibvirt-qemu:x:64055:64055::/:/bin/false\n'),
    group: await f('group', 'root:x:0:\nlibvirt-qemu:x:64055:\n'),
    bootId: await f('boot_id', '81431292-d8c1-4b28-b130-429d8cf11a99\n'),
  };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ctx = (runner: CommandRunner, stateDir: string, domainType: 'auto' | 'kvm' | 'qemu' = 'auto') => ({
  config: { stateDir, libvirt: { uri: 'qemu:///system', domainType } },
  runner,
});

describe('acceleratorVerdict', () => {
  it('no device: TCG from the facts, libvirt not asked', async () => {
    const r = new ScriptedVirsh('kvm');
    const v = await acceleratorVerdict(ctx(r, join(dir, 's0')), { paths: { ...paths, kvmDevice: join(dir, 'no-kvm'), cpuinfo: join(dir, 'modules') } });
    expect(v).toMatchObject({ domainType: 'qemu', status: 'tcg', basis: 'facts' });
    expect(r.calls).toEqual([]);
  });

  it('good facts: probes once, caches per boot, re-probes when the device changes', async () => {
    const stateDir = join(dir, 's1');
    const r = new ScriptedVirsh('kvm');
    const first = await acceleratorVerdict(ctx(r, stateDir), { paths, timeoutMs: 100, probeTmpDir: dir });
    expect(first).toMatchObject({ domainType: 'qemu', status: 'tcg-fallback', basis: 'probe' });
    expect(first.probe).toMatchObject({ outcome: 'timeout', domainType: 'kvm', cpuMode: 'host-passthrough' });
    expect(r.count('create')).toBe(1);
    expect(r.count('destroy')).toBe(1);
    expect(JSON.parse(await readFile(probeCachePath(stateDir), 'utf8')).entries['qemu:///system'].bootId).toBe('81431292-d8c1-4b28-b130-429d8cf11a99');

    const again = await acceleratorVerdict(ctx(r, stateDir), { paths, timeoutMs: 100, probeTmpDir: dir });
    expect(again).toMatchObject({ domainType: 'qemu', basis: 'cached-probe' });
    expect(describeVerdict(again)).toMatch(/^qemu \(probe cached for this host boot: a KVM test guest/);
    expect(r.count('create')).toBe(1);

    // Another device (another rdev), another boot: the cached result no longer counts.
    await acceleratorVerdict(ctx(r, stateDir), { paths: { ...paths, kvmDevice: '/dev/zero' }, timeoutMs: 100, probeTmpDir: dir });
    expect(r.count('create')).toBe(2);
    await writeFile(paths.bootId, 'another-boot\n');
    await acceleratorVerdict(ctx(r, stateDir), { paths: { ...paths, kvmDevice: '/dev/zero' }, timeoutMs: 100, probeTmpDir: dir });
    expect(r.count('create')).toBe(3);
  });

  it('probe: false (dry run) reports the facts-only verdict and starts nothing', async () => {
    const r = new ScriptedVirsh('kvm');
    const v = await acceleratorVerdict(ctx(r, join(dir, 's2')), { paths, probe: false });
    expect(v).toMatchObject({ domainType: 'kvm', needsProbe: true, basis: 'facts' });
    expect(describeVerdict(v)).toMatch(/facts only, not probed yet/);
    expect(r.count('create')).toBe(0);
  });

  it('domcapabilities failing counts as no kvm; forced kvm gets the error', async () => {
    const r = new ScriptedVirsh('fail');
    const v = await acceleratorVerdict(ctx(r, join(dir, 's3'), 'kvm'), { paths });
    expect(v.status).toBe('tcg-fallback');
    expect(v.error?.message).toMatch(/^libvirt.domainType is kvm, but .*domcapabilities --virttype kvm: error: KVM is not supported/);
    expect(r.count('create')).toBe(0);
  });

  it('forced qemu reads no libvirt', async () => {
    const r = new ScriptedVirsh('kvm');
    expect(await acceleratorVerdict(ctx(r, join(dir, 's4'), 'qemu'), { paths })).toMatchObject({ domainType: 'qemu', status: 'tcg', basis: 'config' });
    expect(r.calls).toEqual([]);
  });
});
