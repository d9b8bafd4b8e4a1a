/**
 * End to end inside a network namespace the test creates (test/harness/netns-lab.ts): a vmforge network on the
 * lab bridge, `vm build --network` through the lab's own libvirtd with a real BIND9 on the lab's loopback, and the
 * booted guest answers ping at its leased address from inside the namespace while its name resolves through
 * BIND9 to that address. Nothing here touches the host's network: tap, bridge, DNS and pings all live in the lab.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { REPO, ensureTemplate, leftovers, makeTestEnv, requireRoot, uniqueName, type TestEnv } from '../harness/env.js';
import { startNetnsLab, type Lab } from '../harness/netns-lab.js';
import { startBind9, type Bind9 } from '../harness/bind9.js';

requireRoot();

describe('a VM on a bridge answers ping (network lab)', () => {
  let lab: Lab;
  let bind: Bind9;
  let env: TestEnv;
  const ZONE = 'lab.test';
  const cli = (args: string[], timeoutMs = 120_000) =>
    lab.exec([process.execPath, '--import', 'tsx', join(REPO, 'src/cli/main.ts'), ...args], { cwd: REPO, env: { VMFORGE_CONFIG: env.configPath }, timeoutMs });
  let bundle: string;
  const name = uniqueName('vmfnet');

  beforeAll(async () => {
    bundle = await ensureTemplate();
    lab = await startNetnsLab({ tag: `e${Math.random().toString(36).slice(2, 8)}`, cidr: '10.77.0.0/24' });
    bind = await startBind9({ zones: [ZONE, '0.77.10.in-addr.arpa'], wrap: ['ip', 'netns', 'exec', lab.ns] });
    env = await makeTestEnv(
      `libvirt:\n  uri: ${JSON.stringify(lab.uri)}\ndns:\n  server: 127.0.0.1:${bind.server.port}\n  zone: ${ZONE}\n  keyFile: ${bind.keyFile}\n  ttl: 60\n`,
    );
    const n = await env.cli(['network', 'create', 'lab', '--cidr', '10.77.0.0/24', '--bridge', lab.bridge, '--range', '10.77.0.10-10.77.0.50', '--dns-servers', lab.gatewayIp, '--dns-zone', ZONE]);
    expect(n.exitCode, n.stderr).toBe(0);
  });

  afterAll(async () => {
    if (env && lab) await cli(['vm', 'destroy', name]);
    await bind?.stop();
    await lab?.stop();
    await env?.cleanup();
  });

  it('builds with a leased address, boots, answers ping from inside the namespace, and resolves in DNS', async () => {
    const ip = lab.host(10); // the lowest address of the network's range
    // The CLI runs in the namespace: the lab bridge and the lab's BIND9 exist only in there.
    const t0 = Date.now();
    // TCG boots take 40-50 s on an idle host but have taken 280 s on a busy shared one.
    const r = await cli(['vm', 'build', name, '--bundle', bundle, '--memory', '512M', '--disk', '3G', '--network', 'lab', '--wait', '--wait-timeout', '600', '--json'], 840_000);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`"ip":"${ip}"`);
    expect(await bind.dig(`${name}.${ZONE}`, 'A')).toEqual([ip]);
    expect(await bind.dig('-x', ip)).toEqual([`${name}.${ZONE}.`]);
    const buildMs = Date.now() - t0;

    const xml = (await execa('virsh', ['-c', lab.uri, 'dumpxml', name])).stdout;
    expect(xml).toContain(`<source bridge='${lab.bridge}'/>`);
    const tap = /<target dev='(vnet\d+)'/.exec(xml)?.[1];
    expect(tap).toBeTruthy();
    const enslaved = (await execa('ip', ['-n', lab.ns, '-o', 'link', 'show', 'master', lab.bridge])).stdout;
    expect(enslaved).toContain(`${tap}:`);
    // The system libvirtd does not know the VM.
    expect((await execa('virsh', ['-q', '-c', 'qemu:///system', 'dominfo', name], { reject: false })).exitCode).not.toBe(0);

    // The login prompt comes before the network is fully up; ping's deadline covers the gap.
    const t1 = Date.now();
    const ping = await lab.ping(ip, { count: 3, timeoutS: 90 });
    expect(ping.ok, ping.output).toBe(true);
    expect(ping.output).toMatch(/3 received/);
    console.log(`build+boot ${buildMs} ms; first 3 replies after ${Date.now() - t1} ms`);
    // And nothing answers at an address nobody has.
    expect((await lab.ping(lab.host(11), { count: 1, timeoutS: 2 })).ok).toBe(false);
  });

  it('destroy leaves nothing behind: domain, disk, lease, DNS records', async () => {
    const d = await cli(['vm', 'destroy', name]);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(await leftovers(env, name)).toEqual([]);
    expect(await bind.dig(`${name}.${ZONE}`, 'A')).toEqual([]);
    expect(await bind.dig('-x', lab.host(10))).toEqual([]);
    const show = await env.cli(['network', 'show', 'lab', '--json']);
    expect(show.stdout).not.toContain(name);
    expect((await lab.exec(['ip', '-o', 'link', 'show', 'master', lab.bridge])).stdout.trim()).toBe('');
  });
});
