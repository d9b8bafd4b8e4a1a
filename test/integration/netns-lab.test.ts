/**
 * The network lab harness (test/harness/netns-lab.ts) does what e2e tests rely on: a domain started through the
 * lab's libvirtd gets its tap inside the lab namespace, on the lab bridge, and nowhere else; the system libvirtd
 * never sees it; and stop() leaves no namespace, daemon, mount or directory behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { ensureLibvirt, requireRoot } from '../harness/env.js';
import { parseCidr, startNetnsLab, type Lab } from '../harness/netns-lab.js';

requireRoot();

const PROBE = `vmflabprobe-${Math.random().toString(36).slice(2, 7)}`;
// No disk: the guest sits in its PXE ROM, which is all it takes for QEMU to open and hold the tap.
const probeXml = (bridge: string): string => `<domain type='qemu'>
  <name>${PROBE}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <devices>
    <interface type='bridge'><source bridge='${bridge}'/><model type='virtio'/></interface>
    <serial type='pty'/>
  </devices>
</domain>`;

async function systemDaemonPids(): Promise<number[]> {
  const ps = (await execa('ps', ['-eo', 'pid=,stat=,comm='])).stdout;
  return ps
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, stat, comm]) => !stat?.startsWith('Z') && (comm === 'libvirtd' || comm === 'virtlogd'))
    .map(([pid]) => Number(pid))
    .sort();
}

/** Exited but not yet reaped (daemons are reparented to pid 1, which reaps when it gets to it) counts as gone. */
async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

describe('netns lab', () => {
  let lab: Lab | undefined;
  let before: number[];

  beforeAll(async () => {
    await ensureLibvirt();
    before = await systemDaemonPids();
  });

  afterAll(async () => {
    await lab?.stop();
  });

  it('parses its subnet', () => {
    expect(parseCidr('10.77.0.0/24')).toEqual({ base: 0x0a4d0000, prefix: 24 });
    expect(parseCidr('10.77.3.9/16')).toEqual({ base: 0x0a4d0000, prefix: 16 });
    expect(() => parseCidr('10.77.0.0')).toThrow(/must be/);
  });

  it('a domain on the lab bridge has its tap in the namespace only', async () => {
    const t0 = Date.now();
    lab = await startNetnsLab({ tag: `t${Math.random().toString(36).slice(2, 8)}`, cidr: '10.77.0.0/24' });
    const startMs = Date.now() - t0;
    expect(lab.gatewayIp).toBe('10.77.0.1');
    expect(lab.prefix).toBe(24);
    expect(lab.host(10)).toBe('10.77.0.10');

    // A different daemon from the system one, reachable from the root namespace.
    const sysUri = (await execa('virsh', ['-c', 'qemu:///system', 'uri'])).stdout.trim();
    expect(sysUri).toBe('qemu:///system');
    const labPid = Number((await readFile(`${lab.dir}/libvirtd.pid`, 'utf8')).trim());
    expect(before).not.toContain(labPid);
    expect((await execa('ip', ['netns', 'identify', String(labPid)])).stdout.trim()).toBe(lab.ns);

    const br = await lab.exec(['ip', '-br', 'addr', 'show', 'dev', lab.bridge]);
    expect(br.stdout).toContain('10.77.0.1/24');
    expect((await execa('ip', ['link', 'show', 'dev', lab.bridge], { reject: false })).exitCode).not.toBe(0);

    await writeFile(`${lab.dir}/probe.xml`, probeXml(lab.bridge));
    await execa('virsh', ['-q', '-c', lab.uri, 'define', `${lab.dir}/probe.xml`]);
    await execa('virsh', ['-q', '-c', lab.uri, 'start', PROBE]);

    const iflist = (await execa('virsh', ['-q', '-c', lab.uri, 'domiflist', PROBE])).stdout.trim();
    const tap = iflist.split(/\s+/)[0] ?? '';
    expect(tap).toMatch(/^vnet\d+$/);
    expect(iflist).toContain(lab.bridge);

    const enslaved = JSON.parse((await execa('ip', ['-n', lab.ns, '-j', 'link', 'show', 'master', lab.bridge])).stdout) as { ifname: string }[];
    expect(enslaved.map((l) => l.ifname)).toEqual([tap]);
    // The root namespace has no such tap (a system daemon's vnetN of the same name would not be on our bridge,
    // so check by the bridge it would be enslaved to, and by the MAC the lab gave it).
    const mac = /([0-9a-f]{2}:){5}[0-9a-f]{2}/.exec(iflist)?.[0]?.slice(3);
    expect(mac).toBeTruthy();
    const rootLinks = (await execa('ip', ['-o', 'link'])).stdout;
    expect(rootLinks).not.toContain(`:${mac}`);

    const sysList = (await execa('virsh', ['-q', '-c', 'qemu:///system', 'list', '--all', '--name'])).stdout;
    expect(sysList.split('\n').map((s) => s.trim())).not.toContain(PROBE);

    const pids = await lab.pids();
    expect(pids.length).toBeGreaterThanOrEqual(3); // virtlogd, libvirtd, QEMU
    console.log(`lab up in ${startMs} ms; namespace pids ${pids.join(' ')}`);
  });

  it('stop() leaves nothing, and the system daemons are untouched', async () => {
    if (!lab) throw new Error('no lab (the previous test failed)');
    const { ns, dir } = lab;
    const pids = await lab.pids();
    const t0 = Date.now();
    await lab.stop();
    console.log(`lab stopped in ${Date.now() - t0} ms`);
    await lab.stop(); // idempotent

    expect((await execa('ip', ['netns', 'list'])).stdout).not.toContain(ns);
    expect(existsSync(`/run/netns/${ns}`)).toBe(false);
    for (const pid of pids) expect(await running(pid), `pid ${pid}`).toBe(false);
    expect(existsSync(dir)).toBe(false);
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    expect(mounts).not.toContain(dir);
    expect(mounts).not.toContain(`/run/netns/${ns}`);
    expect(await systemDaemonPids()).toEqual(before);
    expect((await execa('virsh', ['-q', '-c', 'qemu:///system', 'version'])).exitCode).toBe(0);
    lab = undefined;
  });

  it('stop() also cleans up a lab whose namespace was deleted under its daemons', async () => {
    const half = await startNetnsLab({ tag: `h${Math.random().toString(36).slice(2, 8)}` });
    try {
      const daemons = await half.pids();
      expect(daemons).toHaveLength(2);
      await execa('ip', ['netns', 'del', half.ns]); // the daemons keep the (now nameless) namespace alive
      expect(await Promise.all(daemons.map(running))).toEqual([true, true]);
      await half.stop();
      expect(await Promise.all(daemons.map(running))).toEqual([false, false]);
      expect(existsSync(half.dir)).toBe(false);
    } finally {
      await half.stop();
    }
  });
});
