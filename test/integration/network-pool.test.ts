/**
 * Networks and leases: the real CLI for create/list/show/rm and its errors, the lease API's rules, and the
 * concurrency guarantee: separate processes allocating from one pool at the same moment never share an
 * address or MAC, get the lowest addresses, and exactly the pool's capacity succeeds. Needs no root, libvirt
 * or bridge (networks are records; nothing on the host changes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EXIT_CODES } from '../../src/errors.js';
import { openDb, type Db } from '../../src/store/db.js';
import { LeaseRepo, NetworkRepo, type Lease } from '../../src/store/networks.js';
import { REPO } from '../harness/env.js';

/** Parent of this file's temp dir (override to keep test files somewhere else). */
const TMP = process.env.VMFORGE_TEST_TMPDIR ?? '/var/tmp';

let dir: string;
let configPath: string;
let dbPath: string;
let db: Db;
let leases: LeaseRepo;

async function cli(args: string[], env: Record<string, string> = {}) {
  const r = await execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), ...args], {
    cwd: REPO,
    env: { VMFORGE_CONFIG: configPath, ...env },
    reject: false,
    timeout: 120_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

beforeAll(async () => {
  await mkdir(TMP, { recursive: true });
  dir = await mkdtemp(join(TMP, 'vmforge-net-'));
  configPath = join(dir, 'config.yaml');
  dbPath = join(dir, 'state', 'vmforge.db');
  await writeFile(configPath, `stateDir: ${dir}/state\n`);
  // Created (and migrated) here first: the contenders below then only open it.
  db = await openDb(dbPath);
  leases = new LeaseRepo(db);
});

afterAll(async () => {
  await db?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('network CLI', () => {
  it('has help with examples', async () => {
    for (const args of [['network', '--help'], ['network', 'create', '--help'], ['network', 'list', '--help'], ['network', 'show', '--help'], ['network', 'rm', '--help']]) {
      const r = await cli(args);
      expect(r.exitCode, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Examples:\n {2}vmforge network/);
    }
  });

  it('creates with defaults and prints JSON', async () => {
    const r = await cli(['network', 'create', 'lab', '--cidr', '10.20.0.0/24', '--bridge', 'br0', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'lab', cidr: '10.20.0.0/24', gateway: '10.20.0.1', range: '10.20.0.2-10.20.0.254', capacity: 253, leased: 0, free: 253, dhcp: { mode: 'none' } });
  });

  it('creates with every option (human output)', async () => {
    const r = await cli([
      'network', 'create', 'dmz', '--cidr', '192.168.50.0/24', '--bridge', 'br1', '--gateway', '192.168.50.254',
      '--range', '192.168.50.100-192.168.50.199', '--exclude', '192.168.50.150', '--exclude', '192.168.50.160-192.168.50.169',
      '--dns-servers', '192.168.50.254,1.1.1.1', '--dns-zone', 'dmz.example.com', '--ipv6', 'fd00:50::/64',
      '--dhcp', 'dnsmasq:/run/vmforge-test-dhcp', '--vlan', '50',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      'network dmz created: 192.168.50.0/24 on bridge br1 VLAN 50, gateway 192.168.50.254, range 192.168.50.100-192.168.50.199 minus 192.168.50.150, 192.168.50.160-192.168.50.169 (89 addresses), IPv6 fd00:50::/64',
    );
  });

  it('honours --config over $VMFORGE_CONFIG', async () => {
    const r = await cli(['network', 'list', '--json', '--config', configPath], { VMFORGE_CONFIG: join(dir, 'nonexistent.yaml') });
    expect(r.exitCode, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name)).toEqual(['dmz', 'lab']);
  });

  const bad: [string, string[], keyof typeof EXIT_CODES, RegExp][] = [
    ['range outside the CIDR', ['--cidr', '10.30.0.0/24', '--bridge', 'br0', '--range', '10.31.0.10-10.31.0.20'], 'INVALID_INPUT', /network 'bad': range 10\.31\.0\.10-10\.31\.0\.20 is not inside 10\.30\.0\.0\/24/],
    ['host bits in the CIDR', ['--cidr', '10.30.0.7/24', '--bridge', 'br0'], 'INVALID_INPUT', /host bits set\nhint: did you mean 10\.30\.0\.0\/24\?/],
    ['a /32', ['--cidr', '10.30.0.7/32', '--bridge', 'br0'], 'INVALID_INPUT', /single address/],
    ['gateway outside', ['--cidr', '10.30.0.0/24', '--bridge', 'br0', '--gateway', '10.40.0.1'], 'INVALID_INPUT', /gateway 10\.40\.0\.1 is outside 10\.30\.0\.0\/24/],
    ['everything excluded', ['--cidr', '10.30.0.0/24', '--bridge', 'br0', '--range', '10.30.0.10-10.30.0.11', '--exclude', '10.30.0.10-10.30.0.11'], 'INVALID_INPUT', /no leasable address/],
    ['bad DHCP mode', ['--cidr', '10.30.0.0/24', '--bridge', 'br0', '--dhcp', 'isc'], 'INVALID_INPUT', /DHCP mode 'isc' is unknown/],
    ['bad VLAN', ['--cidr', '10.30.0.0/24', '--bridge', 'br0', '--vlan', '5000'], 'INVALID_INPUT', /VLAN '5000'/],
    ['overlap on the same bridge', ['--cidr', '10.20.0.128/25', '--bridge', 'br0'], 'CONFLICT', /overlaps network 'lab' \(10\.20\.0\.0\/24\) on bridge br0/],
    ['missing --cidr', ['--bridge', 'br0'], 'INVALID_INPUT', /required option '--cidr <cidr>' not specified/],
  ];
  it.each(bad)('refuses %s', async (_t, args, code, error) => {
    const r = await cli(['network', 'create', 'bad', ...args]);
    expect(r.exitCode, r.stderr).toBe(EXIT_CODES[code]);
    expect(r.stderr).toMatch(error);
    expect((await cli(['network', 'show', 'bad'])).exitCode).toBe(EXIT_CODES.NOT_FOUND);
  });

  it('refuses a taken name, with --json error line', async () => {
    const r = await cli(['network', 'create', 'lab', '--cidr', '10.77.0.0/24', '--bridge', 'br7', '--json']);
    expect(r.exitCode).toBe(EXIT_CODES.CONFLICT);
    expect(JSON.parse(r.stdout.trim().split('\n').pop() as string)).toMatchObject({ event: 'error', error: { code: 'CONFLICT', message: "network 'lab' exists already" } });
  });

  it('rm and show of an unknown network are NOT_FOUND', async () => {
    for (const verb of ['rm', 'show']) {
      const r = await cli(['network', verb, 'nosuch']);
      expect(r.exitCode).toBe(EXIT_CODES.NOT_FOUND);
      expect(r.stderr).toMatch(/network 'nosuch' does not exist/);
    }
  });
});

describe('leases', () => {
  const mac = (n: number) => `52:54:00:00:01:${n.toString(16).padStart(2, '0')}`;

  it('allocates the lowest free address, skipping excludes, with the network facts', async () => {
    const a = await leases.allocate({ network: 'dmz', vmName: 'web1', mac: mac(1) });
    expect(a).toMatchObject({
      network: 'dmz', vmName: 'web1', ipv4: '192.168.50.100', prefix: 24, gateway: '192.168.50.254', dnsServers: ['192.168.50.254', '1.1.1.1'],
      dnsZone: 'dmz.example.com', ipv6: 'fd00:50::5054:ff:fe00:101', ipv6Prefix: 64, mac: mac(1), bridge: 'br1', vlan: 50, dhcp: { mode: 'dnsmasq', dir: '/run/vmforge-test-dhcp' },
    });
    const fixed = await leases.allocate({ network: 'dmz', vmName: 'web2', ip: '192.168.50.150', mac: mac(2) }).catch((e: Error) => e);
    expect(String(fixed)).toMatch(/network 'dmz': 192\.168\.50\.150 is excluded/);
    // A fixed address outside the range is fine (inside the CIDR).
    expect((await leases.allocate({ network: 'dmz', vmName: 'web2', ip: '192.168.50.20', mac: mac(2) })).ipv4).toBe('192.168.50.20');
    expect((await leases.allocate({ network: 'dmz', vmName: 'web3', mac: () => mac(3) })).ipv4).toBe('192.168.50.101');
  });

  it('rejects reserved, taken and foreign addresses and MACs, naming the pool', async () => {
    const e = (p: Promise<unknown>) => p.then(() => 'no error', (x: Error & { code?: string }) => `${x.code}: ${x.message}`);
    expect(await e(leases.allocate({ network: 'dmz', vmName: 'x1', ip: '192.168.50.254', mac: mac(9) }))).toBe("INVALID_INPUT: network 'dmz': 192.168.50.254 is the gateway and cannot be leased");
    expect(await e(leases.allocate({ network: 'dmz', vmName: 'x1', ip: '192.168.50.255', mac: mac(9) }))).toMatch(/broadcast address/);
    expect(await e(leases.allocate({ network: 'dmz', vmName: 'x1', ip: '10.0.0.1', mac: mac(9) }))).toMatch(/INVALID_INPUT: network 'dmz': 10\.0\.0\.1 is outside the network/);
    expect(await e(leases.allocate({ network: 'dmz', vmName: 'x1', ip: '192.168.50.100', mac: mac(9) }))).toBe("CONFLICT: network 'dmz': 192.168.50.100 is already leased to VM web1");
    expect(await e(leases.allocate({ network: 'dmz', vmName: 'x1', mac: mac(1) }))).toBe('CONFLICT: MAC 52:54:00:00:01:01 is already used by VM web1');
    expect(await e(leases.allocate({ network: 'nosuch', vmName: 'x1', mac: mac(9) }))).toMatch(/NOT_FOUND: network 'nosuch' does not exist/);
    expect(await e(leases.allocate({ network: 'lab', vmName: 'web1', mac: mac(1) }))).toMatch(/CONFLICT: VM web1 already holds 192\.168\.50\.100 in network 'dmz'/);
    // A MAC picker is asked again when it returns a MAC in use.
    const picks = [mac(1), mac(2), mac(10)];
    expect((await leases.allocate({ network: 'lab', vmName: 'x1', mac: () => picks.shift() as string })).mac).toBe(mac(10));
    expect(await leases.release('x1')).toMatchObject({ vmName: 'x1' });
  });

  it('is idempotent: allocate again returns the same lease; release twice is fine', async () => {
    const again = await leases.allocate({ network: 'dmz', vmName: 'web1', mac: () => mac(99) });
    expect(again).toMatchObject({ ipv4: '192.168.50.100', mac: mac(1) });
    expect((await leases.forVm('web1'))?.ipv4).toBe('192.168.50.100');
    expect((await leases.inNetwork('dmz')).map((l) => l.vmName)).toEqual(['web2', 'web1', 'web3']);
    expect(await leases.release('nobody')).toBeNull();
  });

  it('show lists the leases; rm is refused while leased and lists them', async () => {
    const show = await cli(['network', 'show', 'dmz', '--json']);
    expect(show.exitCode, show.stderr).toBe(0);
    const j = JSON.parse(show.stdout) as { leased: number; free: number; leases: { vmName: string; ipv4: string }[] };
    expect(j).toMatchObject({ leased: 3, free: 87 });
    expect(j.leases.map((l) => `${l.vmName}=${l.ipv4}`)).toEqual(['web2=192.168.50.20', 'web1=192.168.50.100', 'web3=192.168.50.101']);
    const human = await cli(['network', 'show', 'dmz']);
    expect(human.stdout).toMatch(/addresses: {3}89 in the pool, 3 leased, 87 free/);
    expect(human.stdout).toMatch(/web1 +192\.168\.50\.100 +fd00:50::5054:ff:fe00:101 +52:54:00:00:01:01/);

    const r = await cli(['network', 'rm', 'dmz']);
    expect(r.exitCode).toBe(EXIT_CODES.CONFLICT);
    expect(r.stderr).toMatch(/network 'dmz' still has 3 leased address\(es\): web2 \(192\.168\.50\.20\), web1 \(192\.168\.50\.100\), web3 \(192\.168\.50\.101\)\nhint: destroy those VMs first/);
    expect((await cli(['network', 'show', 'dmz'])).exitCode).toBe(0);

    for (const vm of ['web1', 'web2', 'web3']) await leases.release(vm);
    const ok = await cli(['network', 'rm', 'dmz']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('network dmz removed');
    expect((await cli(['network', 'list'])).stdout).not.toMatch(/^dmz /m);
  });
});

type Outcome = { ok: true; lease: Lease } | { ok: false; error: { code: string; message: string; hint?: string } };

/**
 * Starts `n` allocator processes, waits until all have opened the database, then lets them go at once. (Slow on
 * a small machine: each is a Node process compiling TypeScript through tsx.)
 */
async function contenders(network: string, n: number): Promise<Outcome[]> {
  const sync = await mkdtemp(join(dir, `sync-${network}-`));
  const procs = Array.from({ length: n }, (_, i) =>
    execa(process.execPath, ['--import', 'tsx', join(REPO, 'test/harness/lease-allocator.ts'), dbPath, network, `${network}-vm${i}`, join(sync, `ready-${i}`), join(sync, 'go')], {
      cwd: REPO,
      reject: false,
      timeout: 480_000,
    }),
  );
  const { readdir } = await import('node:fs/promises');
  const deadline = Date.now() + 400_000;
  while ((await readdir(sync)).filter((f) => f.startsWith('ready-')).length < n) {
    if (Date.now() > deadline) throw new Error('allocator processes did not all start');
    await new Promise((r) => setTimeout(r, 20));
  }
  await writeFile(join(sync, 'go'), '');
  const results = await Promise.all(procs);
  return results.map((r) => {
    const line = String(r.stdout).trim().split('\n').pop() ?? '';
    if (!line.startsWith('{')) throw new Error(`allocator exited ${r.exitCode} without a result: ${String(r.stderr)}`);
    return JSON.parse(line) as Outcome;
  });
}

describe('concurrent allocation (separate processes)', () => {
  it('20 processes at once get 20 distinct addresses and MACs: the lowest 20', async () => {
    const netRepo = new NetworkRepo(db);
    await netRepo.create({ name: 'race', cidr: '10.60.0.0/24', bridge: 'br6' });
    const out = await contenders('race', 20);
    const errors = out.filter((o) => !o.ok);
    expect(errors).toEqual([]);
    const got = out.flatMap((o) => (o.ok ? [o.lease] : []));
    const ips = got.map((l) => l.ipv4).sort((a, b) => Number(a.split('.')[3]) - Number(b.split('.')[3]));
    expect(ips).toEqual(Array.from({ length: 20 }, (_, i) => `10.60.0.${i + 2}`));
    expect(new Set(got.map((l) => l.mac)).size).toBe(20);
    const stored = await leases.inNetwork('race');
    expect(stored.map((l) => l.ipv4)).toEqual(ips);
    expect(new Set(stored.map((l) => l.mac)).size).toBe(20);
  }, 600_000);

  it('a pool of 5 with 8 contenders: exactly 5 leases, 3 POOL_EXHAUSTED naming the pool', async () => {
    await new NetworkRepo(db).create({ name: 'tiny', cidr: '10.61.0.0/24', bridge: 'br6', range: '10.61.0.10-10.61.0.14' });
    const out = await contenders('tiny', 8);
    const ok = out.flatMap((o) => (o.ok ? [o.lease.ipv4] : [])).sort();
    const failed = out.flatMap((o) => (o.ok ? [] : [o.error]));
    expect(ok).toEqual(['10.61.0.10', '10.61.0.11', '10.61.0.12', '10.61.0.13', '10.61.0.14']);
    expect(failed).toHaveLength(3);
    for (const f of failed) {
      expect(f.code).toBe('POOL_EXHAUSTED');
      expect(f.message).toBe("network 'tiny': no free address left in range 10.61.0.10-10.61.0.14 (5 leased, capacity 5)");
      expect(f.hint).toMatch(/vmforge network show tiny/);
    }
    const list = await cli(['network', 'list']);
    expect(list.stdout).toMatch(/^tiny +10\.61\.0\.0\/24 .* 5 +0$/m);
  }, 600_000);
});
