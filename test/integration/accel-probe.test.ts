/**
 * The accelerator probe against this host's libvirt (qemu:///system): a TCG probe guest really boots the
 * project's boot sector and prints the marker; a KVM one fails cleanly (no /dev/kvm on this machine kind); a
 * guest that never prints times out within the probe's timeout; a probe whose process is killed leaves a domain
 * and directory that the next probe removes. Nothing is left in libvirt or on disk in any case.
 */
import { execa } from 'execa';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBE_PREFIX } from '../../src/core/host/probe-domain.js';
import { runAccelProbe, sweepStaleProbes } from '../../src/exec/host/accel-probe.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { ensureLibvirt, REPO, requireRoot } from '../harness/env.js';

const URI = 'qemu:///system';
const runner = new HostProcessRunner();
let dir: string;

/** Every domain libvirt has, running or defined (transient ones only while they run). */
async function allDomains(): Promise<string[]> {
  const { stdout } = await runner.run(['virsh', '--quiet', '-c', URI, 'list', '--all', '--name']);
  return stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

/** Probe domains of this test file's processes (others on the host may run their own probes). */
async function ourProbes(pids: number[]): Promise<string[]> {
  return (await allDomains()).filter((n) => pids.some((p) => n.startsWith(`${PROBE_PREFIX}${p}-`)));
}

requireRoot();
const childPids: number[] = [];

beforeAll(async () => {
  await ensureLibvirt();
  dir = await mkdtemp(join(tmpdir(), 'ac-probe-it-'));
  // libvirt's QEMU user must reach the probe's disk through it.
  await chmod(dir, 0o711);
});

afterAll(async () => {
  for (const n of await ourProbes([process.pid, ...childPids])) await runner.run(['virsh', '-c', URI, 'destroy', n], { okCodes: [1] });
  await rm(dir, { recursive: true, force: true });
});

describe('accelerator probe (real libvirt)', () => {
  it('TCG: the boot sector prints its marker; domain and files are gone afterwards', async () => {
    const t0 = performance.now();
    const r = await runAccelProbe(runner, { uri: URI, domainType: 'qemu', tmpDir: dir });
    const total = Math.round(performance.now() - t0);
    console.log(`TCG probe: ${r.ms} ms from virsh create to the marker (create ${r.createMs} ms), ${total} ms in all (with the stale-probe sweep and the destroy)`);
    expect(r).toMatchObject({ domainType: 'qemu', cpuMode: 'default', outcome: 'passed', detail: 'marker seen on the serial console' });
    expect(r.ms).toBeLessThan(5_000 + 60_000);
    expect(await ourProbes([process.pid])).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a parent directory QEMU cannot traverse is refused up front, not taken for a failed accelerator', async () => {
    const closed = await mkdtemp(join(dir, 'closed-'));
    try {
      await expect(runAccelProbe(runner, { uri: URI, domainType: 'qemu', tmpDir: closed })).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining(`${closed} is not searchable by others`) });
      expect(await readdir(closed)).toEqual([]);
    } finally {
      await rm(closed, { recursive: true, force: true });
    }
  });

  it('KVM on a host without /dev/kvm: fails with libvirt\'s reason, nothing left', async () => {
    expect(existsSync('/dev/kvm')).toBe(false);
    const r = await runAccelProbe(runner, { uri: URI, domainType: 'kvm', tmpDir: dir });
    expect(r).toMatchObject({ domainType: 'kvm', cpuMode: 'host-passthrough', outcome: 'failed' });
    expect(r.detail).toMatch(/kvm/i);
    expect(r.detail).not.toMatch(/^error:|Failed to create domain from/);
    expect(await ourProbes([process.pid])).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a guest that never prints: timeout within the probe timeout, domain destroyed, files removed', async () => {
    let seenRunning: string[] = [];
    const t0 = performance.now();
    const r = await runAccelProbe(runner, {
      uri: URI,
      domainType: 'qemu',
      tmpDir: dir,
      bootSector: 'silent',
      timeoutMs: 1_500,
      // While it runs, the transient domain is there (and only then).
      onRunning: (name) => void allDomains().then((d) => (seenRunning = d.filter((n) => n === name))),
    });
    const waited = performance.now() - t0;
    expect(r.outcome).toBe('timeout');
    expect(r.detail).toBe('no marker on the serial console within 1500 ms');
    expect(seenRunning).toHaveLength(1);
    // create (QEMU start-up) + 1.5 s + destroy, on a busy 2-core host.
    expect(waited).toBeLessThan(20_000);
    expect(await ourProbes([process.pid])).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a probe killed while its guest runs: the next probe removes the leftover domain and directory', async () => {
    const child = execa(process.execPath, ['--import', 'tsx', join(REPO, 'test/harness/accel-probe-child.ts'), URI, dir], { cwd: REPO, reject: false });
    const pid = child.pid as number;
    childPids.push(pid);
    const name = await new Promise<string>((resolve, reject) => {
      child.stdout?.on('data', (b: Buffer) => {
        const m = /running (\S+)/.exec(b.toString());
        if (m?.[1]) resolve(m[1]);
      });
      void child.then((res) => reject(new Error(`probe child ended early: ${res.stderr}`)));
    });
    child.kill('SIGKILL');
    await child;
    expect(await ourProbes([pid])).toEqual([name]);
    expect((await readdir(dir)).filter((d) => d.startsWith(name))).toHaveLength(1);

    const next = await runAccelProbe(runner, { uri: URI, domainType: 'qemu', tmpDir: dir });
    expect(next.outcome).toBe('passed');
    expect(await ourProbes([pid, process.pid])).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
    // Nothing stale is left for `vmforge recover` either.
    expect((await sweepStaleProbes(runner, { uri: URI, tmpDir: dir })).filter((n) => n.includes(`-${pid}-`))).toEqual([]);
  });
});
