/**
 * `vm build --network`: the address and MAC come from a vmforge network's pool, the name goes into a real BIND9
 * (A + PTR through RFC 2136 + TSIG), the DHCP reservation into a dnsmasq hosts dir; `vm destroy` removes exactly
 * those. Fault injection at every step of such a build, 20 builds at once against one pool, and a DNS conflict.
 *
 * The domains are defined, never started: nothing is attached to the network's bridge (which does not exist).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { EXIT_CODES } from '../../src/errors.js';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { startBind9, type Bind9 } from '../harness/bind9.js';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, REPO, requireRoot, uniqueName, type TestEnv } from '../harness/env.js';

requireRoot();

const ZONE = 'vmf.test';
const REV = '88.10.in-addr.arpa';
const base = ['--memory', '256M', '--disk', '1G', '--swap', '0', '--no-start', '--json'];

let bind: Bind9;
let env: TestEnv;
let bundle: string;
let hostsDir: string;

async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), ...args], {
    cwd: REPO,
    env: { VMFORGE_CONFIG: env.configPath, ...extraEnv },
    reject: false,
    timeout: 600_000,
  });
  outputs.push(String(r.stdout), String(r.stderr));
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
/** Everything every CLI run printed: the TSIG secret must appear in none of it. */
const outputs: string[] = [];

function result<T>(stdout: string): T {
  return (JSON.parse(stdout.trim().split('\n').at(-1) as string) as { result: T }).result;
}

async function leases(network: string): Promise<{ vm_name: string; ip: string; mac: string }[]> {
  const db = new SQLite(env.config.dbPath, { readonly: true });
  try {
    return db.prepare('select vm_name, ip, mac from leases where network = ? order by ip').all(network) as { vm_name: string; ip: string; mac: string }[];
  } finally {
    db.close();
  }
}

/** Everything of a VM outside libvirt and the disk: lease, A, PTR, DHCP file. */
async function identityLeft(name: string, network: string): Promise<string[]> {
  const left: string[] = [];
  if ((await leases(network)).some((l) => l.vm_name === name)) left.push(`lease of ${name}`);
  const a = await bind.dig(`${name}.${ZONE}`, 'A');
  if (a.length) left.push(`A ${a.join(',')}`);
  for (const f of await readdir(hostsDir)) if (f.startsWith(name)) left.push(`dhcp file ${f}`);
  return left;
}

beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
  bind = await startBind9({ zones: [ZONE, REV] });
  env = await makeTestEnv(`dns:\n  server: 127.0.0.1:${bind.server.port}\n  zone: ${ZONE}\n  reverseZone: ${REV}\n  keyFile: ${bind.keyFile}\n  ttl: 60\n`);
  hostsDir = join(env.dir, 'dhcp-hosts');
  await mkdir(hostsDir);
  const n = await cli(['network', 'create', 'lab', '--cidr', '10.88.0.0/24', '--bridge', 'vmfbr0', '--range', '10.88.0.10-10.88.0.60', '--dns-servers', '10.88.0.1', '--dns-zone', ZONE, '--dhcp', `dnsmasq:${hostsDir}`]);
  expect(n.exitCode, n.stderr).toBe(0);
}, 600_000);

afterAll(async () => {
  await bind?.stop();
  await env?.cleanup();
});

describe('vm build --network', () => {
  it('leases the lowest free address, registers A + PTR, reserves DHCP; destroy removes exactly that', async () => {
    const name = uniqueName('vmfnet');
    const r = await cli(['vm', 'build', name, '--bundle', bundle, '--network', 'lab', ...base]);
    expect(r.exitCode, r.stderr).toBe(0);
    const res = result<{ ip: string; mac: string; network: string; dns: string[] }>(r.stdout);
    expect(res.ip).toBe('10.88.0.10');
    expect(res.mac).toMatch(/^52:54:00:/);
    expect(await bind.dig(`${name}.${ZONE}`, 'A')).toEqual(['10.88.0.10']);
    expect(await bind.dig('-x', '10.88.0.10')).toEqual([`${name}.${ZONE}.`]);
    expect(await readFile(join(hostsDir, `${name}.conf`), 'utf8')).toContain(`${res.mac},10.88.0.10,${name}`);
    // The guest was configured from the lease.
    const xml = (await execa('virsh', ['-c', env.config.libvirt.uri, 'dumpxml', name])).stdout;
    expect(xml).toContain(`<mac address='${res.mac}'/>`);
    expect(xml).toContain("<source bridge='vmfbr0'/>");

    // An unrelated record at the same name survives the destroy.
    await bind.nsupdate([`update add ${name}.${ZONE}. 60 TXT "keep me"`, 'send']);
    const d = await cli(['vm', 'destroy', name]);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(await identityLeft(name, 'lab')).toEqual([]);
    expect(await bind.dig('-x', '10.88.0.10')).toEqual([]);
    expect(await bind.dig(`${name}.${ZONE}`, 'TXT')).toEqual(['"keep me"']);
    expect(await leftovers(env, name)).toEqual([]);
  });

  it('an explicit --ip and --mac are honoured; --keep-disk keeps only the disk', async () => {
    const name = uniqueName('vmfnet');
    const r = await cli(['vm', 'build', name, '--bundle', bundle, '--network', 'lab', '--ip', '10.88.0.42', '--mac', '52:54:00:aa:bb:cc', ...base]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(result<{ ip: string; mac: string }>(r.stdout)).toMatchObject({ ip: '10.88.0.42', mac: '52:54:00:aa:bb:cc' });
    const taken = await cli(['vm', 'build', uniqueName('vmfnet'), '--bundle', bundle, '--network', 'lab', '--ip', '10.88.0.42', ...base]);
    expect(taken.exitCode).toBe(5);
    expect(taken.stderr).toContain(`10.88.0.42 is already leased to VM ${name}`);
    // Addresses the pool cannot give, a network that does not exist, a malformed MAC: refused, nothing made.
    const bad: [string[], number, RegExp][] = [
      [['--network', 'lab', '--ip', '10.99.0.5'], 2, /network 'lab': 10\.99\.0\.5 is outside the network 10\.88\.0\.0\/24/],
      [['--network', 'lab', '--ip', '10.88.0.255'], 2, /network 'lab': 10\.88\.0\.255 is the broadcast address/],
      [['--network', 'lab', '--ip', '10.88.0.1'], 2, /network 'lab': 10\.88\.0\.1 is the gateway/],
      [['--network', 'nosuch'], 4, /network 'nosuch'/],
      [['--network', 'lab', '--mac', '52:54:00:zz:00:01'], 2, /MAC/],
      [['--network', 'lab', '--gateway', '10.88.0.1'], 2, /come from the network/],
    ];
    for (const [args, code, msg] of bad) {
      const other = uniqueName('vmfbad');
      const b = await cli(['vm', 'build', other, '--bundle', bundle, ...args, ...base]);
      expect(b.exitCode, `${args.join(' ')}: ${b.stderr}`).toBe(code);
      expect(b.stderr).toMatch(msg);
      expect(await leftovers(env, other)).toEqual([]);
      expect(await identityLeft(other, 'lab')).toEqual([]);
    }
    const d = await cli(['vm', 'destroy', name, '--keep-disk']);
    expect(d.exitCode, d.stderr).toBe(0);
    expect(existsSync(join(env.config.storage.dir, `${name}.img`))).toBe(true);
    expect(await identityLeft(name, 'lab')).toEqual([]);
    await execa('rm', ['-f', join(env.config.storage.dir, `${name}.img`)]);
    expect(await leftovers(env, name)).toEqual([]);
  });

  it('refuses a name that resolves elsewhere (and says which record), unless --force', async () => {
    const name = uniqueName('vmfnet');
    await bind.nsupdate([`update add ${name}.${ZONE}. 60 A 192.0.2.7`, 'send']);
    // The dry run makes the same lookup as the build, and refuses the same way.
    for (const extra of [['--dry-run'], []]) {
      const r = await cli(['vm', 'build', name, '--bundle', bundle, '--network', 'lab', ...base, ...extra]);
      expect(r.exitCode, `${extra.join(' ')}: ${r.stderr}`).toBe(5);
      expect(r.stderr).toContain(`${name}.${ZONE}. A 192.0.2.7`);
      expect(r.stderr).toMatch(/^hint: pick another name or address, remove the record, or pass --force/m);
      expect(await leftovers(env, name)).toEqual([]);
    }
    const dryForce = await cli(['vm', 'build', name, '--bundle', bundle, '--network', 'lab', '--force', ...base, '--dry-run']);
    expect(dryForce.exitCode, dryForce.stderr).toBe(0);
    // A DNS server that does not answer fails the dry run as it would fail the build.
    const deaf = join(env.dir, 'deaf-dns.yaml');
    await writeFile(deaf, (await readFile(env.configPath, 'utf8')).replace(`127.0.0.1:${bind.server.port}`, '127.0.0.1:1'));
    const u = await cli(['vm', 'build', name, '--bundle', bundle, '--network', 'lab', ...base, '--dry-run'], { VMFORGE_CONFIG: deaf });
    expect(u.exitCode, u.stderr).toBe(EXIT_CODES.UNREACHABLE);
    expect(u.stderr).toContain('127.0.0.1:1');
    expect(await leftovers(env, name)).toEqual([]);
    expect((await leases('lab')).some((l) => l.vm_name === name)).toBe(false);
    const f = await cli(['vm', 'build', name, '--bundle', bundle, '--network', 'lab', '--force', ...base]);
    expect(f.exitCode, f.stderr).toBe(0);
    const ip = result<{ ip: string }>(f.stdout).ip;
    expect(await bind.dig(`${name}.${ZONE}`, 'A')).toEqual([ip]);
    expect((await cli(['vm', 'destroy', name])).exitCode).toBe(0);
    expect(await identityLeft(name, 'lab')).toEqual([]);
  });

  it('a failure before or after any step of a networked build leaves no lease, record, DHCP entry or anything else', async () => {
    const plan = await cli(['vm', 'build', 'plan-only', '--bundle', bundle, '--network', 'lab', ...base, '--dry-run']);
    expect(plan.exitCode, plan.stderr).toBe(0);
    const steps = result<{ plan: { steps: { id: string }[] } }>(plan.stdout).plan.steps.map((s) => s.id);
    expect(steps).toEqual(expect.arrayContaining(['network.lease', 'dhcp.reserve', 'dns.register']));
    const report: string[] = [];
    for (const fault of [...steps.map((s) => `before:${s}`), ...steps.map((s) => `after:${s}`)]) {
      const name = uniqueName('vmfnf');
      const r = await cli(['vm', 'build', name, '--bundle', bundle, '--network', 'lab', ...base], { VMFORGE_FAULT: fault });
      expect(r.exitCode, `${fault}: ${r.stderr}`).not.toBe(0);
      expect(r.stderr).not.toContain('undo also failed');
      const left = [...(await leftovers(env, name)), ...(await identityLeft(name, 'lab'))];
      if (left.length) report.push(`${fault}: ${left.join(', ')}`);
    }
    console.log(`networked build: ${steps.length} steps, ${steps.length * 2} faults injected`);
    expect(report).toEqual([]);
    expect(await bind.dig('-x', '10.88.0.10')).toEqual([]);
  });

  it('a destroy failing before or after any of its steps leaves nothing once it is run again', { timeout: 900_000 }, async () => {
    const probe = uniqueName('vmfdf');
    expect((await cli(['vm', 'build', probe, '--bundle', bundle, '--network', 'lab', ...base])).exitCode).toBe(0);
    const dry = await cli(['vm', 'destroy', probe, '--dry-run', '--json']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    const steps = result<{ steps: { id: string }[] }>(dry.stdout).steps.map((x) => x.id);
    expect(steps).toEqual(expect.arrayContaining(['domain.undefine', 'disk.remove', 'dns.unregister', 'dhcp.release', 'lease.release', 'inventory.forget']));
    expect(await identityLeft(probe, 'lab')).not.toEqual([]); // the dry run removed nothing
    const report: string[] = [];
    let name = probe;
    for (const [i, fault] of [...steps.map((x) => `before:${x}`), ...steps.map((x) => `after:${x}`)].entries()) {
      if (i > 0) {
        name = uniqueName('vmfdf');
        const b = await cli(['vm', 'build', name, '--bundle', bundle, '--network', 'lab', ...base]);
        expect(b.exitCode, b.stderr).toBe(0);
      }
      const d = await cli(['vm', 'destroy', name], { VMFORGE_FAULT: fault });
      expect(d.exitCode, `${fault}: ${d.stderr}`).not.toBe(0);
      expect(d.stderr).toContain(`run 'vmforge vm destroy ${name}' again`);
      const again = await cli(['vm', 'destroy', name]);
      // After the last step the VM is gone already: the second run finds nothing to do.
      if (fault === 'after:inventory.forget') expect(again.exitCode).toBe(4);
      else expect(again.exitCode, `${fault}: ${again.stderr}`).toBe(0);
      const left = [...(await leftovers(env, name)), ...(await identityLeft(name, 'lab'))];
      if (left.length) report.push(`${fault}: ${left.join(', ')}`);
    }
    console.log(`destroy: ${steps.length} steps, ${steps.length * 2} faults injected`);
    expect(report).toEqual([]);
  });

  it('20 builds started at once get 20 different addresses and MACs; an exhausted pool is named', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `vmfpar-${process.pid % 1000}-${i}`);
    const runs = await Promise.all(names.map((n) => cli(['vm', 'build', n, '--bundle', bundle, '--network', 'lab', ...base])));
    const failed = runs.map((r, i) => (r.exitCode === 0 ? null : `${names[i]}: ${r.stderr}`)).filter(Boolean);
    expect(failed).toEqual([]);
    const got = runs.map((r) => result<{ ip: string; mac: string }>(r.stdout));
    expect(new Set(got.map((g) => g.ip)).size).toBe(20);
    expect(new Set(got.map((g) => g.mac)).size).toBe(20);
    for (const [i, g] of got.entries()) expect(await bind.dig(`${names[i]}.${ZONE}`, 'A')).toEqual([g.ip]);

    // A /30 pool holds one address: the second build is refused with the pool named, and leaves nothing.
    expect((await cli(['network', 'create', 'tiny', '--cidr', '10.88.1.0/30', '--bridge', 'vmfbr0'])).exitCode).toBe(0);
    const t1 = await cli(['vm', 'build', 'vmftiny-a', '--bundle', bundle, '--network', 'tiny', ...base]);
    expect(t1.exitCode, t1.stderr).toBe(0);
    const t2 = await cli(['vm', 'build', 'vmftiny-b', '--bundle', bundle, '--network', 'tiny', ...base]);
    expect(t2.exitCode).toBe(16);
    expect(t2.stderr).toMatch(/network 'tiny': no free address/);
    expect(await leftovers(env, 'vmftiny-b')).toEqual([]);

    const destroys = await Promise.all([...names, 'vmftiny-a'].map((n) => cli(['vm', 'destroy', n])));
    expect(destroys.filter((d) => d.exitCode !== 0).map((d) => d.stderr)).toEqual([]);
    for (const n of names) expect(await leftovers(env, n)).toEqual([]);
    expect(await leases('lab')).toEqual([]);
    expect(await readdir(hostsDir)).toEqual([]);
  }, 900_000);

  it('never prints the TSIG secret, nor writes it to the operations log', async () => {
    expect(outputs.length).toBeGreaterThan(50);
    const logDir = join(env.config.stateDir, 'log');
    const logs = await Promise.all((await readdir(logDir)).map((f) => readFile(join(logDir, f), 'utf8')));
    expect(logs.join('').length).toBeGreaterThan(0);
    const leaks = [...outputs, ...logs].filter((t) => t.includes(bind.secret));
    expect(leaks).toEqual([]);
  });
});
