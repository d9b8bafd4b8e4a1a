/**
 * Issue #6's comparison, in one run on the same template and the same disk: the classic shell recipe
 * (bench/classic-baseline.sh, from a gzip tarball of the template) against vmforge cold (--clone off), vmforge
 * warm for each clone strategy this build and host offer, 20 concurrent warm builds, and the CLI's start-up.
 * The single builds are interleaved (classic, cold, warm..., classic, ...) so a change of load during the run
 * hits every column alike. The raw operations alone, as a shell script (bench/raw-floor.sh, cold and warm), run
 * in the same rounds: the floor that no program driving them can go below on this host. Every build runs under
 * GNU time: CPU = user + system seconds of the process tree (what wait4 reports: children the command waited
 * for, not daemons such as libvirtd), peak RSS = the largest single process of that tree.
 *
 * Usage (root): node_modules/.bin/tsx bench/compare.ts [runs=5]
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { BundleStore } from '../src/bundles/store.js';
import { ensureLibvirt, ensureTemplate, makeTestEnv, REPO, TEMPLATE_CACHE, type TestEnv } from '../test/harness/env.js';

const runs = Number(process.argv[2] ?? 5);
const CONCURRENT = 20;
const STARTUP_RUNS = 20;
const DISK = '4G';
const TARGETS = { cold: 0.4, warm: 0.08, concurrentMs: 5000, startupMs: 150 };
if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a whole number >= 1 (got ${process.argv[2]})`);
if (process.getuid?.() !== 0) throw new Error('bench/compare.ts needs root (loop devices, mounts, libvirt)');

interface Sample {
  wallMs: number;
  cpuS: number;
  maxRssKiB: number;
  stdout: string;
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const tag = `c${process.pid.toString(36)}`;
const node = process.execPath;
const cliPath = join(REPO, 'dist/cli/main.js');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' / ');

/** Runs argv under GNU time; throws with the command's output when it fails. */
async function timed(argv: string[], env: Record<string, string> = {}, timeFile: string): Promise<Sample> {
  const t = performance.now();
  const r = await execa('/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, ...argv], { cwd: REPO, env, reject: false, all: true });
  const wallMs = performance.now() - t;
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (exit ${r.exitCode}):\n${r.all}`);
  // The last line: GNU time puts "Command exited with..." first when the status is not 0.
  const [user, sys, rss] = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
  await rm(timeFile, { force: true });
  return { wallMs, cpuS: (user ?? 0) + (sys ?? 0), maxRssKiB: rss ?? 0, stdout: String(r.stdout) };
}

/** zstd -dc BLOB | pigz -6 > OUT, with no byte passing through this process. */
async function gzipFrom(blobPath: string, out: string): Promise<void> {
  const fd = await open(out, 'wx', 0o600);
  try {
    const z = spawn('zstd', ['-dc', blobPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    const g = spawn('pigz', ['-6', '-c'], { stdio: [z.stdout, fd.fd, 'inherit'] });
    const done = (c: ReturnType<typeof spawn>, what: string) =>
      new Promise<void>((ok, fail) => {
        c.on('error', fail);
        c.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`${what} exited with ${String(code)}`))));
      });
    await Promise.all([done(z, 'zstd -dc'), done(g, 'pigz')]);
  } finally {
    await fd.close();
  }
}

/** The classic recipe's input: the template's tar stream gzip'ed at gzip's default level, as `tar czpf` makes it. */
async function gzipTarball(blobPath: string, sha256: string): Promise<string> {
  const dir = join(TEMPLATE_CACHE, '..', 'classic-tarballs');
  const out = join(dir, `${sha256}.tar.gz`);
  if (existsSync(out)) return out;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    await gzipFrom(blobPath, tmp);
    await rename(tmp, out);
  } finally {
    await rm(tmp, { force: true });
  }
  return out;
}

/** An xfs filesystem with reflink=1 in a loop-mounted image file: a storage dir where `--clone reflink` works. */
async function xfsStorage(under: string): Promise<{ dir: string; release(): Promise<void> } | string> {
  if (!existsSync('/usr/sbin/mkfs.xfs') && !existsSync('/sbin/mkfs.xfs')) return 'mkfs.xfs is not installed (apt-get install xfsprogs)';
  const img = join(under, 'xfs.img');
  const dir = join(under, 'xfs');
  await execa('truncate', ['-s', '24G', img]);
  await execa('mkfs.xfs', ['-q', '-m', 'reflink=1', img]);
  await mkdir(dir);
  // -o loop attaches with autoclear: the loop device goes away at umount.
  await execa('mount', ['-o', 'loop', img, dir]);
  await chmod(dir, 0o755);
  return {
    dir,
    async release() {
      await execa('umount', [dir], { reject: false });
      await rm(img, { force: true });
    },
  };
}

interface Column {
  key: string;
  label: string;
  samples: Sample[];
  note?: string;
}

await ensureLibvirt();
const bundle = await ensureTemplate();
const { blobPath, manifest } = await new BundleStore(TEMPLATE_CACHE).resolve(bundle);
const tarball = await gzipTarball(blobPath, manifest.sha256);
await execa('npm', ['run', '-s', 'build'], { cwd: REPO });
const help = (await execa(node, [cliPath, 'vm', 'build', '--help'])).stdout;
const hasClone = help.includes('--clone');

const loadStart = load();
// The config default (ssh.hostKeyPool: 20); the test harness turns the pool off unless the YAML names it.
const POOL_YAML = 'ssh:\n  hostKeyPool: 20\n';
const env = await makeTestEnv(POOL_YAML);
const work = await mkdtemp('/var/tmp/vmforge-bench-compare-');
await chmod(work, 0o755);
const classicOut = join(work, 'classic');
await mkdir(classicOut, { mode: 0o755 });
const timeFile = join(work, 'time.out');
let reflinkEnv: TestEnv | null = null;
let xfs: { dir: string; release(): Promise<void> } | null = null;
const notes: string[] = [];
const built: { env: TestEnv; name: string }[] = [];
const classicDefined: string[] = [];

const cliEnv = (e: TestEnv) => ({ VMFORGE_CONFIG: e.configPath });
const buildArgv = (name: string, clone: string | null) => [
  node, cliPath, 'vm', 'build', name, '--bundle', bundle, '--no-start', '--net', 'none', '--disk', DISK,
  ...(clone && hasClone ? ['--clone', clone] : []), '--json',
];
/** Median duration of each step of vmforge's builds (from the --json progress events), in the order they ran. */
function stepMedians(samples: Sample[]): [string, number][] {
  const per = new Map<string, number[]>();
  for (const s of samples) {
    for (const l of s.stdout.split('\n')) {
      if (!l.startsWith('{')) continue;
      const e = JSON.parse(l) as { event?: string; step?: string; durationMs?: number };
      if (e.event === 'step.done' && e.step && e.durationMs !== undefined) per.set(e.step, [...(per.get(e.step) ?? []), e.durationMs]);
    }
  }
  return [...per].map(([k, v]) => [k, median(v)]);
}
/**
 * Waits for the key pool's background filler (started by the previous build) and tops the pool up, untimed: each
 * measured build starts on a host whose pool had time to refill, and no filler competes with it for the cores.
 */
async function settlePool(e: TestEnv): Promise<void> {
  await execa(node, [cliPath, 'cache', 'keys', '--fill'], { env: cliEnv(e) });
}
async function emptyPool(e: TestEnv): Promise<void> {
  await settlePool(e);
  await execa(node, [cliPath, 'cache', 'keys', '--clear'], { env: cliEnv(e) });
}
async function vmforgeBuild(e: TestEnv, name: string, clone: string | null, file = timeFile): Promise<Sample> {
  built.push({ env: e, name });
  return timed(buildArgv(name, clone), cliEnv(e), file);
}
async function destroy(e: TestEnv, name: string): Promise<void> {
  const r = await execa(node, [cliPath, 'vm', 'destroy', name], { env: cliEnv(e), reject: false, all: true });
  if (r.exitCode !== 0) console.error(`warning: vm destroy ${name}: ${r.all}`);
  const at = built.findIndex((b) => b.env === e && b.name === name);
  if (r.exitCode === 0 && at >= 0) built.splice(at, 1);
}
/** The qcow2 strategy's golden image of this run (the first warm build prepared it), or null. */
async function goldenImage(e: TestEnv): Promise<string | null> {
  const dir = join(e.config.storage.dir, 'golden');
  const imgs = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.img'));
  return imgs.length === 1 ? join(dir, imgs[0] as string) : null;
}
async function classicUndefine(name: string): Promise<void> {
  await execa('virsh', ['-q', 'undefine', name], { reject: false });
  await rm(join(classicOut, `${name}.img`), { force: true });
  await rm(join(classicOut, `${name}.xml`), { force: true });
  const at = classicDefined.indexOf(name);
  if (at >= 0) classicDefined.splice(at, 1);
}

const classic: Column = { key: 'classic', label: 'classic shell recipe (baseline)', samples: [] };
// The raw operations alone, driven by a shell script (bench/raw-floor.sh): what no build can go below here.
const floorCold: Column = { key: 'floor-cold', label: 'raw floor, cold (shell: mkfs, tar -x, umount, define)', samples: [] };
const floorWarm: Column = { key: 'floor-warm', label: 'raw floor, warm (shell: overlay, FUSE, loop, resize2fs, tune2fs, mount, umount, define)', samples: [] };
const cold: Column = { key: 'cold', label: `vmforge cold${hasClone ? ' (--clone off)' : ''}`, samples: [] };
const warm: Column[] = [];
const golden: { label: string; sample: Sample }[] = [];
const concurrentRuns: { label: string; wallMs: number; cpuS: number; maxRssKiB: number; sumRssKiB: number }[] = [];
let countRun: { label: string; sample: Sample } | null = null;
const startup: number[] = [];
/** Node's own start-up on this machine at this load, for scale. */
const bareNode: number[] = [];

try {
  if (hasClone) {
    warm.push({ key: 'qcow2', label: 'vmforge warm --clone qcow2', samples: [] });
    const x = await xfsStorage(work);
    if (typeof x === 'string') notes.push(`reflink: skipped, ${x}`);
    else {
      xfs = x;
      reflinkEnv = await makeTestEnv(`storage:\n  dir: ${x.dir}\n${POOL_YAML}`);
      warm.push({ key: 'reflink', label: 'vmforge warm --clone reflink (xfs loop)', samples: [] });
    }
    // The first clone build of a bundle prepares its golden image; it is shown apart, not in the warm medians.
    for (const w of warm) {
      const e = w.key === 'reflink' ? (reflinkEnv as TestEnv) : env;
      const name = `${tag}-g${w.key}`;
      golden.push({ label: `first --clone ${w.key} build (prepares the golden image)`, sample: await vmforgeBuild(e, name, w.key) });
      await destroy(e, name);
    }
  } else {
    notes.push('warm builds (--clone): not available in this build; 20 concurrent builds are COLD builds');
  }

  for (let i = 0; i < runs; i++) {
    const cname = `${tag}-classic${i}`;
    classicDefined.push(cname);
    classic.samples.push(await timed([join(REPO, 'bench/classic-baseline.sh'), cname, tarball, DISK, classicOut], {}, timeFile));
    await classicUndefine(cname);

    const fcname = `${tag}-floorc${i}`;
    classicDefined.push(fcname);
    floorCold.samples.push(await timed([join(REPO, 'bench/raw-floor.sh'), 'cold', fcname, blobPath, DISK, classicOut], {}, timeFile));
    await classicUndefine(fcname);
    const goldenImg = await goldenImage(env);
    if (goldenImg) {
      const fwname = `${tag}-floorw${i}`;
      classicDefined.push(fwname);
      floorWarm.samples.push(await timed([join(REPO, 'bench/raw-floor.sh'), 'warm', fwname, goldenImg, DISK, classicOut], {}, timeFile));
      await classicUndefine(fwname);
    }

    const name = `${tag}-cold${i}`;
    await settlePool(env);
    cold.samples.push(await vmforgeBuild(env, name, 'off'));
    await destroy(env, name);

    for (const w of warm) {
      const e = w.key === 'reflink' ? (reflinkEnv as TestEnv) : env;
      const wname = `${tag}-${w.key}${i}`;
      await settlePool(e);
      w.samples.push(await vmforgeBuild(e, wname, w.key));
      await destroy(e, wname);
    }
    process.stderr.write(`run ${i + 1}/${runs} done (load ${load()})\n`);
  }

  // 20 at once, with the default strategy (auto: qcow2 where it works), all started together: once with a full
  // key pool (a host whose pool refilled since its last burst), once with an empty one (every build makes its RSA key).
  const strategy = hasClone ? 'auto' : 'off';
  for (const pool of ['full', 'empty'] as const) {
    const names = Array.from({ length: CONCURRENT }, (_, i) => `${tag}-par${pool[0]}${i}`);
    if (pool === 'full') await settlePool(env);
    else await emptyPool(env);
    const t = performance.now();
    const res = await Promise.allSettled(names.map((n, i) => vmforgeBuild(env, n, strategy, `${timeFile}.${i}`)));
    const wallMs = performance.now() - t;
    const ok = res.filter((r): r is PromiseFulfilledResult<Sample> => r.status === 'fulfilled').map((r) => r.value);
    for (const r of res) if (r.status === 'rejected') console.error(`concurrent build failed: ${String(r.reason)}`);
    concurrentRuns.push({
      label: `${CONCURRENT} concurrent ${hasClone ? 'warm (--clone auto)' : 'COLD'} builds, total, key pool ${pool}`,
      wallMs,
      cpuS: ok.reduce((a, s) => a + s.cpuS, 0),
      maxRssKiB: Math.max(...ok.map((s) => s.maxRssKiB)),
      sumRssKiB: ok.reduce((a, s) => a + s.maxRssKiB, 0),
    });
    if (ok.length !== CONCURRENT) notes.push(`${CONCURRENT - ok.length} of the ${CONCURRENT} concurrent builds FAILED (see above)`);
    for (let i = 0; i < names.length; i += 5) await Promise.all(names.slice(i, i + 5).map((n) => destroy(env, n)));
  }

  // The same 20 in one command (`--count`): one Node start-up and one recovery instead of 20.
  if (help.includes('--count')) {
    const cnames = Array.from({ length: CONCURRENT }, (_, i) => `${tag}-cnt${i + 1}`);
    for (const n of cnames) built.push({ env, name: n });
    const argv = [...buildArgv(`${tag}-cnt%d`, hasClone ? 'auto' : null), '--count', String(CONCURRENT), '--parallel', '16'];
    await settlePool(env);
    const sample = await timed(argv, cliEnv(env), timeFile);
    countRun = { label: `${CONCURRENT} warm builds in one command (--count ${CONCURRENT} --parallel 16, the maximum), key pool full`, sample };
    for (let i = 0; i < cnames.length; i += 5) await Promise.all(cnames.slice(i, i + 5).map((n) => destroy(env, n)));
  }

  for (let i = 0; i < STARTUP_RUNS; i++) {
    let s = performance.now();
    await execa(node, [cliPath, '--version']);
    startup.push(performance.now() - s);
    s = performance.now();
    await execa(node, ['-e', '0']);
    bareNode.push(performance.now() - s);
  }
} finally {
  for (const b of [...built]) await destroy(b.env, b.name);
  for (const n of [...classicDefined]) await classicUndefine(n);
  // When `vm destroy` itself failed, libvirt would keep the domain after the state dir is gone.
  for (const d of (await execa('virsh', ['-q', 'list', '--all', '--name'], { reject: false })).stdout.split('\n')) {
    if (!d.startsWith(`${tag}-`)) continue;
    await execa('virsh', ['-q', 'destroy', d], { reject: false });
    await execa('virsh', ['-q', 'undefine', d], { reject: false });
    console.error(`warning: ${d} was undefined with virsh (vm destroy failed)`);
  }
  await env.cleanup();
  await reflinkEnv?.cleanup();
  await xfs?.release();
  await rm(work, { recursive: true, force: true });
}

// Anything of this run still on the host (it should be nothing).
const leftovers: string[] = [];
const loops = JSON.parse((await execa('losetup', ['-J', '-l'], { reject: false })).stdout || '{"loopdevices":[]}') as { loopdevices: { name: string; 'back-file': string | null }[] };
for (const l of loops.loopdevices) if (l['back-file'] && [env.dir, work].some((d) => l['back-file']!.startsWith(d))) leftovers.push(`loop ${l.name} -> ${l['back-file']}`);
for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
  const mp = line.split(' ')[4];
  if (mp && [env.dir, work, '/var/tmp/vmf-classic-mnt', '/var/tmp/vmf-floor-mnt'].some((d) => mp.startsWith(d))) leftovers.push(`mount ${mp}`);
}
for (const d of (await execa('virsh', ['-q', 'list', '--all', '--name'])).stdout.split('\n')) if (d.startsWith(`${tag}-`)) leftovers.push(`domain ${d}`);
const loadEnd = load();

const base = median(classic.samples.map((s) => s.wallMs));
const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
const rows: string[][] = [];
const row = (c: Column, target?: number) => {
  const w = median(c.samples.map((s) => s.wallMs));
  const ratio = w / base;
  rows.push([c.label, sec(w), `${median(c.samples.map((s) => s.cpuS)).toFixed(2)} s`, mib(median(c.samples.map((s) => s.maxRssKiB))), `${ratio.toFixed(3)}×`,
    target === undefined ? '-' : `≤ ${target}×: ${verdict(ratio <= target)}`]);
};
row(classic);
if (floorCold.samples.length) row(floorCold);
if (floorWarm.samples.length) row(floorWarm);
row(cold, TARGETS.cold);
for (const w of warm) row(w, TARGETS.warm);
for (const g of golden) rows.push([g.label, sec(g.sample.wallMs), `${g.sample.cpuS.toFixed(2)} s`, mib(g.sample.maxRssKiB), `${(g.sample.wallMs / base).toFixed(3)}×`, '(once per bundle)']);
for (const concurrent of concurrentRuns) {
  rows.push([concurrent.label, sec(concurrent.wallMs), `${concurrent.cpuS.toFixed(2)} s (sum)`, `${mib(concurrent.maxRssKiB)} (sum ${mib(concurrent.sumRssKiB)})`,
    `${(concurrent.wallMs / base).toFixed(3)}×`, hasClone ? `< 5 s: ${verdict(concurrent.wallMs < TARGETS.concurrentMs)}` : '(cold: target is for warm)']);
}
if (countRun) {
  rows.push([countRun.label, sec(countRun.sample.wallMs), `${countRun.sample.cpuS.toFixed(2)} s`, mib(countRun.sample.maxRssKiB),
    `${(countRun.sample.wallMs / base).toFixed(3)}×`, `< 5 s: ${verdict(countRun.sample.wallMs < TARGETS.concurrentMs)}`]);
}
const st = median(startup);
rows.push([`vmforge --version (median of ${STARTUP_RUNS})`, `${st.toFixed(0)} ms`, '-', '-', '-', `< 150 ms: ${verdict(st < TARGETS.startupMs)}`]);
rows.push([`(node -e 0, for scale)`, `${median(bareNode).toFixed(0)} ms`, '-', '-', '-', '-']);

const head = ['what', 'wall', 'CPU (user+sys)', 'peak RSS', 'vs classic', 'target'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
console.log(`\nbundle ${bundle}; disk ${DISK}; ${runs} run(s) each, medians; ${CONCURRENT} concurrent once`);
console.log(`load average (1/5/15 min): start ${loadStart}, end ${loadEnd}; ${(await execa('nproc')).stdout} cores; /dev/kvm ${existsSync('/dev/kvm') ? 'present' : 'absent'}`);
console.log(line(head));
console.log(line(widths.map((w) => '-'.repeat(w))));
for (const r of rows) console.log(line(r));
for (const c of [cold, ...warm]) {
  const steps = stepMedians(c.samples);
  if (steps.length) console.log(`${c.label}, step medians: ${steps.map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')} (ms)`);
}
if (floorWarm.samples.length) {
  // The least a warm build by a Node program can take here: the raw operations plus Node's own start-up.
  const least = median(floorWarm.samples.map((x) => x.wallMs)) + median(bareNode);
  console.log(`raw warm floor + node -e 0 = ${sec(least)} = ${(least / base).toFixed(3)}× classic (warm target ${TARGETS.warm}×)`);
}
if (floorCold.samples.length) {
  const least = median(floorCold.samples.map((x) => x.wallMs)) + median(bareNode);
  console.log(`raw cold floor + node -e 0 = ${sec(least)} = ${(least / base).toFixed(3)}× classic (cold target ${TARGETS.cold}×)`);
}
for (const n of notes) console.log(`note: ${n}`);
if (leftovers.length) {
  console.log(`LEFTOVERS:\n  ${leftovers.join('\n  ')}`);
  process.exitCode = 1;
} else console.log('cleanup: no loop devices, mounts, domains or files of this run left');
