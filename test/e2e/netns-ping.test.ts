/**
 * End to end inside a network namespace the test creates (test/harness/netns-lab.ts): `vm build` with a static
 * address on the lab bridge, through the lab's own libvirtd, and the booted guest answers ping at that address
 * from inside the namespace. Nothing here touches the host's network: the tap, the bridge and the pings all live
 * in the lab namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { REPO, ensureTemplate, leftovers, makeTestEnv, requireRoot, uniqueName, type TestEnv } from '../harness/env.js';
import { startNetnsLab, type Lab } from '../harness/netns-lab.js';

requireRoot();

describe('a VM on a bridge answers ping (network lab)', () => {
  let lab: Lab;
  let env: TestEnv;
  let bundle: string;
  const name = uniqueName('vmfnet');

  beforeAll(async () => {
    bundle = await ensureTemplate();
    lab = await startNetnsLab({ tag: `e${Math.random().toString(36).slice(2, 8)}`, cidr: '10.77.0.0/24' });
    env = await makeTestEnv(`libvirt:\n  uri: ${JSON.stringify(lab.uri)}\n`);
  });

  afterAll(async () => {
    if (env) await env.cli(['vm', 'destroy', name]);
    await lab?.stop();
    await env?.cleanup();
  });

  it('builds with a static address, boots, and answers ping from inside the namespace', async () => {
    const ip = lab.host(10);
    // The CLI runs in the namespace: it checks that the bridge exists by looking at the network interfaces it
    // can see, and the lab bridge exists only in there.
    const t0 = Date.now();
    const r = await lab.exec(
      [process.execPath, '--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'vm', 'build', name, '--bundle', bundle, '--memory', '512M', '--disk', '3G',
        '--bridge', lab.bridge, '--ip', `${ip}/${lab.prefix}`, '--gateway', lab.gatewayIp, '--wait', '--wait-timeout', '600', '--json'],
      // TCG boots take 40-50 s on an idle host but have taken 280 s on a busy shared one.
      { cwd: REPO, env: { VMFORGE_CONFIG: env.configPath }, timeoutMs: 840_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
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

  it('destroy leaves nothing behind', async () => {
    const d = await env.cli(['vm', 'destroy', name]);
    expect(d.exitCode).toBe(0);
    expect(await leftovers(env, name)).toEqual([]);
    expect((await lab.exec(['ip', '-o', 'link', 'show', 'master', lab.bridge])).stdout.trim()).toBe('');
  });
});
