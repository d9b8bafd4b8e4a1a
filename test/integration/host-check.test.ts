/**
 * `vmforge host check` on this host for real: its ✓ lines as they are here, and each ✗ made true by breaking the
 * fact behind it (a libvirt socket nobody serves, a network whose bridge does not exist, a storage dir on a
 * small full filesystem, a TSIG key the test's BIND 9 does not know), through the CLI with its exit status.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { CheckResult } from '../../src/core/host/check-report.js';
import { startBind9, type Bind9 } from '../harness/bind9.js';
import { ensureLibvirt, makeTestEnv, requireRoot, type TestEnv } from '../harness/env.js';

requireRoot();

interface Report {
  results: CheckResult[];
  summary: { ok: number; warn: number; fail: number; exitCode: number };
}

async function check(env: TestEnv, args: string[] = []): Promise<{ exitCode: number; report: Report; stdout: string; stderr: string }> {
  const r = await env.cli(['host', 'check', '--json', '--no-probe', ...args]);
  let report: Report;
  try {
    report = JSON.parse(r.stdout) as Report;
  } catch {
    throw new Error(`host check printed no JSON report (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
  }
  return { exitCode: r.exitCode, report, stdout: r.stdout, stderr: r.stderr };
}

const byId = (rep: Report, id: string): CheckResult => {
  const r = rep.results.find((x) => x.id === id);
  if (!r) throw new Error(`no result ${id} in ${rep.results.map((x) => x.id).join(', ')}`);
  return r;
};

const envs: TestEnv[] = [];
async function env(yaml = ''): Promise<TestEnv> {
  const e = await makeTestEnv(yaml);
  envs.push(e);
  return e;
}

beforeAll(async () => {
  await ensureLibvirt();
});

afterAll(async () => {
  for (const e of envs) await e.cleanup();
});

describe('host check on this host', () => {
  it('passes what works here, each line with its figure, and exits 0', async () => {
    const e = await env();
    const { exitCode, report } = await check(e);
    const failed = report.results.filter((r) => r.status === 'fail');
    expect(failed, JSON.stringify(failed, null, 2)).toEqual([]);
    expect(exitCode).toBe(0);
    expect(report.summary.exitCode).toBe(0);
    for (const id of ['libvirt.reachable', 'libvirt.define', 'disk.loop', 'disk.fuse', 'tools.grub', 'tools.mkfs', 'tools.archive', 'state.root', 'space.disks', 'state.db', 'state.lock']) {
      expect(byId(report, id).status, id).toBe('ok');
    }
    expect(byId(report, 'libvirt.reachable').detail).toMatch(/'virsh version' took \d+ ms/);
    // Whatever this host has: KVM that a probe guest proved, or TCG with the reason and, as a ⚠, the fix.
    const accel = byId(report, 'accelerator');
    expect(accel.detail).toMatch(/^(KVM|TCG)\b/);
    if (accel.status !== 'ok') expect(accel.fix).toBeTruthy();
    expect(byId(report, 'libvirt.define').detail).toMatch(/a define took \d+/);
    // The check leaves nothing: no check domain, no loop device on its scratch file, no scratch dir.
    const doms = await execa('virsh', ['-q', '-c', 'qemu:///system', 'list', '--all', '--name']);
    expect(doms.stdout).not.toMatch(/vmforge-hostcheck-/);
    const loops = await execa('losetup', ['-l', '-n', '-O', 'BACK-FILE']);
    expect(loops.stdout).not.toMatch(/vmforge-host-check-/);
  });

  it('prints one line per fact with a mark, and the fix under a ✗', async () => {
    const e = await env();
    const net = await e.cli(['network', 'create', 'hcnet', '--cidr', '10.250.7.0/24', '--bridge', 'hcnobr0']);
    expect(net.exitCode, net.stderr).toBe(0);
    const r = await e.cli(['host', 'check', '--no-probe']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^ {2}✓ libvirt at qemu:\/\/\/system: .*'virsh version' took/m);
    expect(r.stdout).toMatch(/^ {2}✗ bridge hcnobr0 \(network hcnet, 10\.250\.7\.0\/24\): no bridge named hcnobr0.*\n {6}fix: ip link add hcnobr0 type bridge/m);
    expect(r.stdout).toMatch(/\d+ ✓ {2}\d+ ⚠ {2}1 ✗/);
  });
});

describe('host check when a fact is broken', () => {
  it('libvirt not running (a URI whose socket nobody serves): ✗ with how to start it', async () => {
    const dir = await mkdtemp('/var/tmp/vmforge-hc-sock-');
    try {
      const e = await env(`libvirt:\n  uri: qemu:///system?socket=${dir}/libvirt-sock\n`);
      const { exitCode, report } = await check(e);
      expect(exitCode).toBe(1);
      const r = byId(report, 'libvirt.reachable');
      expect(r.status).toBe('fail');
      expect(r.detail).toMatch(/libvirt|connect|socket/i);
      expect(r.fix).toMatch(/libvirtd/);
      // The define is not attempted against a libvirt that does not answer.
      expect(report.results.find((x) => x.id === 'libvirt.define')).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('libvirt.domainType: kvm where KVM does not work: ✗ with the fix; where it works: ✓', async () => {
    const auto = byId((await check(await env())).report, 'accelerator');
    const { exitCode, report } = await check(await env('libvirt:\n  domainType: kvm\n'));
    const forced = byId(report, 'accelerator');
    if (auto.detail.startsWith('KVM')) {
      expect(forced.status).toBe('ok');
    } else {
      expect(exitCode).toBe(1);
      expect(forced.status).toBe('fail');
      expect(forced.detail).toMatch(/libvirt\.domainType is kvm, but a KVM guest cannot run on this host/);
      expect(forced.fix).toMatch(/domainType: auto/);
    }
  });

  it('a network whose bridge does not exist: ✗ naming the bridge and the network', async () => {
    const e = await env();
    expect((await e.cli(['network', 'create', 'lab', '--cidr', '10.250.8.0/24', '--bridge', 'hcmissing0'])).exitCode).toBe(0);
    const { exitCode, report } = await check(e);
    expect(exitCode).toBe(1);
    const r = byId(report, 'network.lab.bridge');
    expect(r.status).toBe('fail');
    expect(r.detail).toMatch(/hcmissing0/);
    expect(r.fix).toMatch(/ip link add hcmissing0 type bridge/);
  });

  it('the storage dir on a full filesystem: ✗ with its free space and the fix', async () => {
    const dir = await mkdtemp('/var/tmp/vmforge-hc-full-');
    const img = join(dir, 'fs.img');
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    let mounted = false;
    try {
      await execa('truncate', ['-s', '64M', img]);
      await execa('mkfs.ext4', ['-q', '-F', img]);
      await execa('mount', ['-o', 'loop', img, mnt]);
      mounted = true;
      // Fill it: dd stops at ENOSPC with a non-zero status, which is the point.
      await execa('dd', ['if=/dev/zero', `of=${join(mnt, 'fill')}`, 'bs=1M'], { reject: false });
      const e = await env(`storage:\n  dir: ${mnt}/disks\n`);
      const { exitCode, report } = await check(e);
      expect(exitCode).toBe(1);
      const r = byId(report, 'space.disks');
      expect(r.status).toBe('fail');
      expect(r.detail).toMatch(/^\d.* free \(less than 512 MiB\)/);
      expect(r.detail).toContain(mnt);
      expect(r.fix).toMatch(/storage\.dir/);
      // The state dir is elsewhere (a roomy filesystem): its own line passes.
      expect(byId(report, 'space.state').status).toBe('ok');
    } finally {
      if (mounted) await execa('umount', [mnt]);
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('DNS against a real BIND 9', () => {
    let bind: Bind9;
    beforeAll(async () => {
      bind = await startBind9({ zones: ['hc.test', '9.250.10.in-addr.arpa'] });
    }, 60_000);
    afterAll(async () => {
      await bind?.stop();
    });

    const dnsYaml = (keyFile: string) => `dns:\n  server: 127.0.0.1:${bind.server.port}\n  zone: hc.test\n  keyFile: ${keyFile}\n`;

    it('the right key: ✓ for the forward zone and the network\'s reverse zone, by a signed SOA query', async () => {
      const e = await env(dnsYaml(bind.keyFile));
      expect((await e.cli(['network', 'create', 'dnsnet', '--cidr', '10.250.9.0/24', '--bridge', 'lo'])).exitCode).toBe(0);
      const { report } = await check(e);
      expect(byId(report, 'dns.key').status).toBe('ok');
      const fwd = byId(report, 'dns.zone.hc.test.');
      expect(fwd.status, fwd.detail).toBe('ok');
      expect(fwd.detail).toMatch(/^SOA ns\.hc\.test\. /);
      expect(byId(report, 'dns.zone.9.250.10.in-addr.arpa.').status).toBe('ok');
    });

    it('a TSIG key the server does not know: ✗ that names the key, and the secret appears nowhere', async () => {
      const keyText = (await execa('tsig-keygen', ['-a', 'hmac-sha256', bind.keyName])).stdout;
      const dir = await mkdtemp('/var/tmp/vmforge-hc-key-');
      try {
        const wrongKey = join(dir, 'wrong.key');
        await writeFile(wrongKey, `${keyText}\n`, { mode: 0o600 });
        const e = await env(dnsYaml(wrongKey));
        const { exitCode, report, stdout, stderr } = await check(e);
        expect(exitCode).toBe(1);
        const r = byId(report, 'dns.zone.hc.test.');
        expect(r.status).toBe('fail');
        expect(r.detail).toMatch(/rejected TSIG key/);
        expect(r.fix).toMatch(/dns\.keyFile/);
        const secret = /secret "([^"]+)"/.exec(await readFile(wrongKey, 'utf8'))?.[1] as string;
        expect(`${stdout}${stderr}`).not.toContain(secret);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('a zone the server does not serve: ✗', async () => {
      const e = await env(`dns:\n  server: 127.0.0.1:${bind.server.port}\n  zone: not-served.test\n  keyFile: ${bind.keyFile}\n`);
      const { report } = await check(e);
      const r = byId(report, 'dns.zone.not-served.test.');
      expect(r.status).toBe('fail');
    });
  });
});
