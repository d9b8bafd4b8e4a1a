/**
 * The `ubuntu` (netplan) and `systemd-networkd` guest families booted for real, in a network lab of their own
 * (test/harness/netns-lab.ts): a Debian bookworm template with netplan.io and systemd-resolved
 * (ensureNetplanTemplate), built twice with `--guest-family`, both VMs booted at once (direct kernel boot) on the
 * lab bridge. Each must answer ping at its leased address from inside the namespace, and, logged in on the serial
 * console, show that eth0 was configured from its family's file: netplan's generated networkd file for `ubuntu`,
 * vmforge's own .network file for `systemd-networkd` (the template's ifupdown knows only lo).
 *
 * The networkd guest also grows a mounted ext4 online (resize2fs on a loop device): the kernel's online resize needs
 * CAP_SYS_RESOURCE, which the host running these tests may not have (test/integration/clone-primitives.test.ts then
 * checks the refusal and its hint); a guest's root always has it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO, ensureNetplanTemplate, leftovers, makeTestEnv, requireRoot, uniqueName, type TestEnv } from '../harness/env.js';
import { startNetnsLab, type Lab } from '../harness/netns-lab.js';
import { SerialConsole } from '../harness/serial.js';

requireRoot();

const FAMILIES = [
  { family: 'ubuntu', prefix: 'gf-np', host: 20, networkFile: '/run/systemd/network/10-netplan-eth0.network' },
  { family: 'systemd-networkd', prefix: 'gf-nd', host: 21, networkFile: '/etc/systemd/network/10-vmforge-eth0.network' },
] as const;

describe('the netplan and systemd-networkd guest families boot and answer ping (network lab)', () => {
  let lab: Lab;
  let env: TestEnv;
  let bundle: string;
  const password = `gf-${Math.random().toString(36).slice(2, 10)}`;
  const vms = FAMILIES.map((f) => ({ ...f, name: uniqueName(f.prefix) }));
  const built = new Map<string, { ip: string; buildS: number }>();
  const cli = (args: string[], timeoutMs = 120_000) =>
    lab.exec([process.execPath, '--import', 'tsx', join(REPO, 'src/cli/main.ts'), ...args], { cwd: REPO, env: { VMFORGE_CONFIG: env.configPath }, timeoutMs });

  beforeAll(async () => {
    bundle = await ensureNetplanTemplate();
    lab = await startNetnsLab({ tag: `gf-${Math.random().toString(36).slice(2, 8)}`, cidr: '10.78.0.0/24', bridge: 'gfbr0' });
    env = await makeTestEnv(`libvirt:\n  uri: ${JSON.stringify(lab.uri)}\n`);
    await writeFile(join(env.dir, 'pw'), `${password}\n`, { mode: 0o600 });
    const n = await env.cli(['network', 'create', 'lab', '--cidr', '10.78.0.0/24', '--bridge', lab.bridge, '--range', '10.78.0.10-10.78.0.50', '--dns-servers', lab.gatewayIp]);
    expect(n.exitCode, n.stderr).toBe(0);
  });

  afterAll(async () => {
    if (env && lab) for (const vm of vms) await cli(['vm', 'destroy', vm.name]);
    await lab?.stop();
    await env?.cleanup();
  });

  it('builds both with --guest-family, boots them at once, and each answers ping at its leased address', async () => {
    // Two TCG guests at once: each is one vCPU thread, so on 2 cores they boot in about the time of one.
    const results = await Promise.all(
      vms.map(async (vm) => {
        const t0 = Date.now();
        const ip = lab.host(vm.host);
        const r = await cli(
          ['vm', 'build', vm.name, '--bundle', bundle, '--guest-family', vm.family, '--memory', '512M', '--disk', '3G', '--swap', '0', '--network', 'lab', '--ip', `${ip}/24`,
            '--boot', 'kernel', '--root-password-file', join(env.dir, 'pw'), '--wait', '--wait-timeout', '600', '--json'],
          840_000,
        );
        return { vm, ip, r, buildS: (Date.now() - t0) / 1000 };
      }),
    );
    for (const { vm, ip, r, buildS } of results) {
      expect(r.stderr, vm.family).toBe('');
      expect(r.exitCode, `${vm.family}: ${r.stdout.slice(-2000)}`).toBe(0);
      expect(r.stdout).toContain(`"ip":"${ip}"`);
      built.set(vm.name, { ip, buildS });
    }
    // The login prompt comes before the network is fully up; ping's deadline covers the gap.
    const t1 = Date.now();
    const pings = await Promise.all(vms.map((vm) => lab.ping(lab.host(vm.host), { count: 3, timeoutS: 90 })));
    pings.forEach((p, i) => {
      expect(p.ok, `${vms[i]!.family}: ${p.output}`).toBe(true);
      expect(p.output).toMatch(/3 received/);
    });
    console.log(`build+boot: ${vms.map((vm) => `${vm.family} ${built.get(vm.name)?.buildS.toFixed(0)} s`).join(', ')}; replies within ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    expect((await lab.ping(lab.host(22), { count: 1, timeoutS: 2 })).ok).toBe(false);
  });

  it.each(vms.map((vm) => [vm.family, vm] as const))('%s: eth0 was configured from the family\'s own file', async (_family, vm) => {
    expect(built.has(vm.name), 'the build above failed').toBe(true);
    const pty = (await execa('virsh', ['-q', '-c', lab.uri, 'ttyconsole', vm.name])).stdout.trim();
    const con = SerialConsole.openPty(pty);
    try {
      await con.login('root', password);
      // Kernel messages go to this console too (console=ttyS0) and could land inside a command's output.
      await con.run('dmesg -n 1');
      expect(await con.run('hostname')).toBe(vm.name);
      // networkctl names the file networkd applied to the link; `ip` shows the address it set.
      expect(await con.run('networkctl status eth0 --no-pager | sed -n "s/^ *Network File: //p"')).toBe(vm.networkFile);
      expect(await con.run('ip -4 -o addr show dev eth0 | awk \'{print $4}\'')).toBe(`${built.get(vm.name)!.ip}/24`);
      expect(await con.run('ip -4 route show default')).toMatch(new RegExp(`^default via ${lab.gatewayIp.replaceAll('.', '\\.')} dev eth0`));
      if (vm.family === 'ubuntu') {
        // The only netplan file is vmforge's, 0600 (netplan warns about anything wider).
        expect(await con.run('stat -c "%a %n" /etc/netplan/*')).toBe('600 /etc/netplan/50-vmforge.yaml');
      } else {
        // systemd-resolved got the DNS server from vmforge's file.
        expect(await con.run('resolvectl dns eth0')).toContain(lab.gatewayIp);
        // Tagged lines: output is matched by tag, not by position.
        const grow = await con.run(
          'truncate -s 32M /root/g.img && mkfs.ext4 -q -F /root/g.img 16M && mkdir -p /mnt/g && mount -o loop /root/g.img /mnt/g && ' +
            'echo before=$(df -B1M --output=size /mnt/g | tail -1) && truncate -s 64M /root/g.img && L=$(findmnt -no SOURCE /mnt/g) && ' +
            'losetup -c "$L" && resize2fs "$L" >/dev/null 2>&1; echo rc=$?; echo after=$(df -B1M --output=size /mnt/g | tail -1); ' +
            'umount /mnt/g; rm -f /root/g.img',
        );
        expect(/^rc=(\d+)/m.exec(grow)?.[1], grow).toBe('0');
        expect(Number(/^before=\s*(\d+)/m.exec(grow)?.[1]), grow).toBeLessThan(20);
        expect(Number(/^after=\s*(\d+)/m.exec(grow)?.[1]), grow).toBeGreaterThan(50);
      }
    } finally {
      con.close();
    }
  });

  it('destroy leaves nothing behind (a failed build, nothing either)', async () => {
    for (const vm of vms) {
      if (built.has(vm.name)) {
        const d = await cli(['vm', 'destroy', vm.name]);
        expect(d.exitCode, d.stderr).toBe(0);
      }
      expect(await leftovers(env, vm.name)).toEqual([]);
    }
    expect((await lab.exec(['ip', '-o', 'link', 'show', 'master', lab.bridge])).stdout.trim()).toBe('');
  });
});
