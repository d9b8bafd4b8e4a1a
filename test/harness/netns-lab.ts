/**
 * An isolated network lab for tests that need a VM on a real bridge: a network namespace the test makes, with a
 * bridge holding the gateway address and its own libvirtd + virtlogd running inside it. QEMU started by that
 * libvirtd gets its tap devices in the namespace, on the lab bridge, so guests can be reached (ping, ssh) from
 * inside the namespace while the host's own network and its system libvirtd never see them.
 *
 * How the daemons are kept apart from the system ones is in netns-lab.sh; docs/testing.md has the overview.
 */
import { execa } from 'execa';
import { chmod, chown, cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pidAlive } from '../../src/exec/pid.js';

const SCRIPT = join(import.meta.dirname, 'netns-lab.sh');
/** Where lab dirs go: `<prefix><tag>-XXXXXX`. Overridable so concurrent agents/CI jobs can keep theirs apart. */
const DIR_PREFIX = process.env.VMFORGE_LAB_TMP ?? '/var/tmp/vmf-lab-';

export interface NetnsLabOptions {
  /** Names the namespace (`vmf-<tag>`) and the lab dir; a-z, 0-9, hyphen. Make it unique per run. */
  tag: string;
  /** The lab subnet; the gateway (bridge address) is its first host. Default 10.77.0.0/24. */
  cidr?: string;
  /** Bridge name inside the namespace. Default vmfbr0. */
  bridge?: string;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
}

export interface Lab {
  /** Network namespace name (`ip -n <ns> ...`, `ip netns exec <ns> ...`). */
  ns: string;
  bridge: string;
  gatewayIp: string;
  prefix: number;
  /** The lab's directory (daemon state, sockets, logs); gone after stop(). */
  dir: string;
  /** libvirt URI of the lab's libvirtd, usable from the root namespace (virsh -c, vmforge's libvirt.uri). */
  uri: string;
  /** The lab libvirtd's log, for failure messages. */
  libvirtdLog: string;
  /** Host number n of the lab subnet as a dotted address (host(1) is the gateway). */
  host(n: number): string;
  /** Runs argv inside the namespace (its /sys shows the lab's interfaces). Never rejects on exit codes. */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Pings from inside the namespace; ok once `count` replies came back within `timeoutS` seconds in all. */
  ping(ip: string, opts?: { count?: number; timeoutS?: number }): Promise<{ ok: boolean; output: string }>;
  /** Pids of every process in the namespace (the lab daemons, QEMU, whatever exec left running). */
  pids(): Promise<number[]>;
  /** Destroys and undefines the lab's domains, stops its daemons and processes, deletes the namespace and dir. */
  stop(): Promise<void>;
}

interface LabRecord {
  ns: string;
  ownerPid: number;
}

export async function startNetnsLab(opts: NetnsLabOptions): Promise<Lab> {
  if (!/^[a-z0-9][a-z0-9-]{0,19}$/.test(opts.tag)) throw new Error(`lab tag '${opts.tag}' must be 1-20 of a-z, 0-9, hyphen`);
  const bridge = opts.bridge ?? 'vmfbr0';
  const net = parseCidr(opts.cidr ?? '10.77.0.0/24');
  const ns = `vmf-${opts.tag}`;

  await sweepStaleLabs();
  if (existsSync(`/run/netns/${ns}`)) {
    throw new Error(`network namespace ${ns} already exists (another run with tag '${opts.tag}'?); pick a unique tag or delete it: ip netns del ${ns}`);
  }

  await mkdir(dirname(DIR_PREFIX + 'x'), { recursive: true });
  const dir = await mkdtemp(`${DIR_PREFIX}${opts.tag}-`);
  const record: LabRecord = { ns, ownerPid: process.pid };
  await writeFile(join(dir, 'lab.json'), JSON.stringify(record));
  const lab = makeLab(dir, ns, bridge, net);
  try {
    await prepareDirs(dir);
    await run(['ip', 'netns', 'add', ns]);
    await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    await run(['ip', '-n', ns, 'link', 'add', bridge, 'type', 'bridge']);
    await run(['ip', '-n', ns, 'addr', 'add', `${lab.gatewayIp}/${net.prefix}`, 'dev', bridge]);
    await run(['ip', '-n', ns, 'link', 'set', bridge, 'up']);
    await run(['ip', 'netns', 'exec', ns, 'unshare', '--mount', '--propagation', 'slave', SCRIPT, 'daemons', dir]);
    await waitForLibvirt(lab);
    return lab;
  } catch (e) {
    await lab.stop().catch(() => undefined);
    throw e;
  }
}

function makeLab(dir: string, ns: string, bridge: string, net: { base: number; prefix: number }): Lab {
  let stopping: Promise<void> | null = null;
  const host = (n: number): string => formatIp(net.base + n);
  return {
    ns,
    bridge,
    gatewayIp: host(1),
    prefix: net.prefix,
    dir,
    uri: `qemu+unix:///system?socket=${join(dir, 'run/libvirt-sock')}`,
    libvirtdLog: join(dir, 'log/libvirtd.log'),
    host,
    exec: (argv, o = {}) => inNs(ns, argv, o),
    async ping(ip, o = {}) {
      const count = o.count ?? 1;
      const timeoutS = o.timeoutS ?? 10;
      // -w is ping's overall deadline, but ping also stops once replies plus errors reach `count`: while the
      // guest does not answer ARP yet, "Destination Host Unreachable" errors end it after about 3 s. So it is
      // started again until the deadline.
      const deadline = Date.now() + timeoutS * 1000;
      for (;;) {
        const leftS = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
        const r = await inNs(ns, ['ping', '-n', '-c', String(count), '-i', '0.5', '-w', String(leftS), ip], { timeoutMs: (leftS + 5) * 1000 });
        if (r.exitCode === 0 || Date.now() >= deadline - 500) return { ok: r.exitCode === 0, output: `${r.stdout}${r.stderr}` };
        await sleep(500);
      }
    },
    pids: () => nsPids(ns),
    stop() {
      stopping ??= teardown(dir, ns);
      return stopping;
    },
  };
}

/** Lab dirs stand in for /run/libvirt, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and /etc/libvirt. */
async function prepareDirs(dir: string): Promise<void> {
  // QEMU (an unprivileged user) reaches its files through the bind mounts, never through this path, but the
  // lab's sockets are used from the root namespace by tests running as root only.
  await chmod(dir, 0o755);
  for (const d of ['run', 'lib', 'lib/qemu', 'cache/qemu', 'log/qemu', 'etc/qemu/autostart', 'etc/qemu/networks/autostart', 'etc/storage/autostart']) {
    await mkdir(join(dir, d), { recursive: true });
  }
  // The same ownership libvirt's package gives the real /var/lib/libvirt/qemu: QEMU keeps per-domain files there.
  const real = await execa('stat', ['-c', '%u %g %a', '/var/lib/libvirt/qemu'], { reject: false });
  const [uid, gid, mode] = String(real.stdout).trim().split(' ');
  if (real.exitCode === 0 && uid && gid && mode) {
    await chown(join(dir, 'lib/qemu'), Number(uid), Number(gid));
    await chmod(join(dir, 'lib/qemu'), parseInt(mode, 8));
  }
  // The host's daemon settings (qemu.conf: user, security driver, ...) but none of its state: no defined
  // domains, networks (the 'default' network would autostart) or pools, and no hooks.
  for (const f of await readdir('/etc/libvirt')) {
    if (f.endsWith('.conf')) await cp(join('/etc/libvirt', f), join(dir, 'etc', f), { preserveTimestamps: true });
  }
  if (existsSync('/etc/libvirt/nwfilter')) await cp('/etc/libvirt/nwfilter', join(dir, 'etc/nwfilter'), { recursive: true });
}

async function waitForLibvirt(lab: Lab): Promise<void> {
  // About 5 s on an idle 2-core VM (libvirtd probes QEMU's capabilities first), 12 s when it is busy.
  const deadline = Date.now() + 60_000;
  let last = '';
  while (Date.now() < deadline) {
    const r = await execa('virsh', ['-q', '-c', lab.uri, 'version'], { reject: false, timeout: 10_000 });
    if (r.exitCode === 0) return;
    last = String(r.stderr);
    await sleep(250);
  }
  const log = await readFile(lab.libvirtdLog, 'utf8').catch(() => '');
  throw new Error(`the lab libvirtd at ${lab.uri} did not come up: ${last}\n${log.split('\n').slice(-20).join('\n')}`);
}

/**
 * Safe to run twice, on a half-started lab, or on a lab whose test process died: every step copes with its
 * part being absent.
 */
async function teardown(dir: string, ns: string): Promise<void> {
  const uri = `qemu+unix:///system?socket=${join(dir, 'run/libvirt-sock')}`;
  if (existsSync(join(dir, 'run/libvirt-sock'))) {
    const list = await execa('virsh', ['-q', '-c', uri, 'list', '--all', '--name'], { reject: false, timeout: 15_000 });
    for (const name of String(list.stdout).split('\n').map((s) => s.trim()).filter(Boolean)) {
      await execa('virsh', ['-q', '-c', uri, 'destroy', name], { reject: false, timeout: 30_000 });
      await execa('virsh', ['-q', '-c', uri, 'undefine', name], { reject: false, timeout: 15_000 });
    }
  }
  // Daemons first, politely, so they remove their sockets and pid files; then whatever is left in the namespace
  // (QEMU that would not die, processes exec left behind). Everything in there was started by this lab. The
  // daemons are found by the pid file on their command line, so they are found even if the namespace was
  // deleted under them.
  const daemons = await labDaemons(dir);
  for (const pid of daemons) signal(pid, 'SIGTERM');
  // A daemon counts as gone only once it is a zombie or reaped: while it exits, its cmdline is already empty.
  const left = async (): Promise<number[]> => [...(await filterAsync(daemons, running)), ...(await nsPids(ns))];
  await waitUntil(async () => (await left()).length === 0, 10_000);
  for (const pid of await left()) signal(pid, 'SIGKILL');
  if (!(await waitUntil(async () => (await left()).length === 0, 10_000))) {
    throw new Error(`lab processes did not exit: ${(await left()).join(', ')}`);
  }
  if (existsSync(`/run/netns/${ns}`)) {
    const del = await execa('ip', ['netns', 'del', ns], { reject: false });
    if (del.exitCode !== 0 && existsSync(`/run/netns/${ns}`)) throw new Error(`ip netns del ${ns}: ${String(del.stderr)}`);
  }
  // The lab's bind mounts lived only in the daemons' mount namespace, which ended with them.
  await rm(dir, { recursive: true, force: true });
}

/** Labs whose test process is gone (killed run) are torn down before a new one starts. */
async function sweepStaleLabs(): Promise<void> {
  const parent = dirname(DIR_PREFIX + 'x');
  const stem = basename(DIR_PREFIX + 'x').slice(0, -1);
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    if (!name.startsWith(stem)) continue;
    const dir = join(parent, name);
    const rec = await readFile(join(dir, 'lab.json'), 'utf8').then((t) => JSON.parse(t) as LabRecord, () => null);
    if (!rec || pidAlive(rec.ownerPid)) continue;
    await teardown(dir, rec.ns);
  }
}

/** Live (not zombie) processes started with `-p <lab>/libvirtd.pid` or `-p <lab>/virtlogd.pid`. */
async function labDaemons(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const f of ['libvirtd.pid', 'virtlogd.pid']) {
    const pid = Number((await readFile(join(dir, f), 'utf8').catch(() => '')).trim());
    if (!(pid > 1)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(join(dir, f))) out.push(pid);
  }
  return out;
}

async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
}

async function filterAsync<T>(xs: T[], pred: (x: T) => Promise<boolean>): Promise<T[]> {
  const keep = await Promise.all(xs.map(pred));
  return xs.filter((_, i) => keep[i]);
}

function inNs(ns: string, argv: string[], o: ExecOptions): Promise<ExecResult> {
  return execa('ip', ['netns', 'exec', ns, SCRIPT, 'exec', ...argv], {
    reject: false,
    env: o.env,
    cwd: o.cwd,
    timeout: o.timeoutMs ?? 120_000,
  }).then((r) => ({ exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }));
}

async function nsPids(ns: string): Promise<number[]> {
  if (!existsSync(`/run/netns/${ns}`)) return [];
  const r = await execa('ip', ['netns', 'pids', ns], { reject: false });
  return String(r.stdout).split('\n').map(Number).filter((n) => n > 0);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

async function waitUntil(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await sleep(100);
  }
  return cond();
}

async function run(argv: string[]): Promise<void> {
  const [cmd, ...args] = argv as [string, ...string[]];
  const r = await execa(cmd, args, { reject: false, timeout: 60_000 });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (${r.exitCode}): ${String(r.stderr).trim()}`);
}

export function parseCidr(cidr: string): { base: number; prefix: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  const octets = m?.slice(1, 5).map(Number) ?? [];
  const prefix = Number(m?.[5]);
  if (!m || octets.some((o) => o > 255) || prefix < 8 || prefix > 30) throw new Error(`lab cidr '${cidr}' must be a.b.c.d/8..30`);
  const addr = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  return { base: addr - (addr % size), prefix };
}

function formatIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}
