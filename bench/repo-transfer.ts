/**
 * Repository transfer: `vmforge bundle publish` and `vmforge bundle pull` of a 4 GiB bundle over loopback against
 * `cp` of the same file on the same disk, medians of N runs each, all in the same run. Peak RSS of the client
 * (GNU time's maximum resident set) and of the server (/proc/PID/status VmHWM, reset before each transfer).
 *
 * The blob is the cached Debian template's blob repeated up to 4 GiB: real compressed bytes, not a valid tar
 * (the repository and the client check size and sha256 only; nothing here extracts it).
 *
 * Baselines: `cp SRC DST && sync DST` (sync FILE = fsync of that file: the store fsyncs every blob it takes, so
 * this is the like-for-like one) and plain `cp SRC DST` (ends with the data still in the page cache).
 * Usage (root): npx tsx bench/repo-transfer.ts [runs=3] [GiB=4]
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { link, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DIRECT_IO_ENV } from '../src/bundles/direct-io.js';
import { BundleStore } from '../src/bundles/store.js';
import { ensureTemplate, TEMPLATE_CACHE } from '../test/harness/env.js';

const runs = Number(process.argv[2] ?? 3);
const SIZE = Number(process.argv[3] ?? 4) * 2 ** 30;
const TOKEN = 'bench-token-0123456789abcdef';
const REF = 'bench-xfer:1';
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const node = process.execPath;
const cli = 'dist/cli/main.js';

await execa('npm', ['run', '-s', 'build']);
const template = await new BundleStore(TEMPLATE_CACHE).resolve(await ensureTemplate());
const work = await mkdtemp('/var/tmp/vmforge-bench-xfer-');
const serverProcs: ReturnType<typeof execa>[] = [];

/** SIZE bytes of the template blob repeated, hashed while written. */
async function makeBlob(path: string): Promise<string> {
  const piece = await readFile(template.blobPath);
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < SIZE; ) {
      const chunk = piece.subarray(0, Math.min(piece.length, SIZE - done));
      hash.update(chunk);
      for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off)).bytesWritten;
      done += chunk.length;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

async function storeConfig(name: string, storeDir: string, extra = ''): Promise<string> {
  const path = join(work, `${name}.yaml`);
  await writeFile(path, `stateDir: ${join(work, `state-${name}`)}\nbundles:\n  dir: ${storeDir}\n${extra}`);
  return path;
}

/** Wall seconds and the child's peak RSS in KiB (GNU time %M), for a command run as a child process. */
async function timedChild(argv: string[], env: Record<string, string> = {}): Promise<{ wall: number; rssKiB: number; cpu: number; faults: number }> {
  const t = performance.now();
  const r = await execa('/usr/bin/time', ['-f', 'vmforge-bench-rss %M %U %S %R', ...argv], { env, reject: false });
  const wall = (performance.now() - t) / 1000;
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (${r.exitCode}): ${String(r.stderr)}`);
  const m = /vmforge-bench-rss (\d+) ([\d.]+) ([\d.]+) (\d+)/.exec(String(r.stderr));
  return { wall, rssKiB: Number(m?.[1]), cpu: Number(m?.[2]) + Number(m?.[3]), faults: Number(m?.[4]) };
}

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat (100 Hz ticks). */
async function cpuOf(pid: number): Promise<number> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  return (Number(f[11]) + Number(f[12])) / 100;
}
/** Minor page faults of a process so far (/proc/PID/stat minflt). */
async function faultsOf(pid: number): Promise<number> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  return Number(f[7]);
}

async function serverHwmKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]);
}
/** Resets VmHWM to the current RSS (proc(5): clear_refs value 5), so each transfer's peak is its own. */
async function resetHwm(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

type Row = { wall: number[]; clientRss: number[]; serverRss: number[]; clientCpu: number[]; serverCpu: number[] };
const rows: Record<string, Row> = {};
const add = (k: string, wall: number, clientRss?: number, serverRss?: number, cpu?: { client: number; server: number; faults: string }) => {
  const r = (rows[k] ??= { wall: [], clientRss: [], serverRss: [], clientCpu: [], serverCpu: [] });
  if (cpu) {
    r.clientCpu.push(cpu.client);
    r.serverCpu.push(cpu.server);
  }
  r.wall.push(wall);
  process.stderr.write(`  ${k}: ${wall.toFixed(2)} s${clientRss !== undefined ? `, client ${(clientRss / 1024).toFixed(0)} MiB, server ${((serverRss ?? 0) / 1024).toFixed(0)} MiB` : ''}${cpu ? `, cpu client ${cpu.client.toFixed(1)} s server ${cpu.server.toFixed(1)} s, minor faults client / server ${cpu.faults}` : ''}\n`);
  if (clientRss !== undefined) r.clientRss.push(clientRss);
  if (serverRss !== undefined) r.serverRss.push(serverRss);
};

try {
  process.stderr.write(`load at the start: ${(await execa('uptime')).stdout.trim()}\n`);
  const src = join(work, 'source.blob');
  process.stderr.write(`making a ${SIZE / 2 ** 30} GiB blob from ${template.blobPath}...\n`);
  const sha256 = await makeBlob(src);
  const manifest = { ...template.manifest, name: 'bench-xfer', version: '1', sha256, compressedBytes: SIZE };

  // The publishing host's store holds the blob (a hard link of source.blob: no second copy on disk).
  const storeA = new BundleStore(join(work, 'client-a'));
  await mkdir(join(storeA.blobPath(sha256, manifest.compression), '..'), { recursive: true });
  await link(src, storeA.blobPath(sha256, manifest.compression));
  await storeA.put(manifest);

  // Variants, each with its own server, run one after the other within every round (A/B in the same run):
  // BENCH_OLD_CLI=path/to/other/dist/cli/main.js adds that build as "old"; BENCH_TUNABLES=1 adds this build with
  // the glibc allocator tunables on both sides; BENCH_DIRECT=1 adds this build with O_DIRECT on both sides.
  const TUNABLES = 'glibc.malloc.trim_threshold=2147483648:glibc.malloc.top_pad=67108864';
  const variants: { label: string; cli: string; env: Record<string, string> }[] = [];
  if (process.env.BENCH_OLD_CLI) variants.push({ label: 'old ', cli: process.env.BENCH_OLD_CLI, env: {} });
  const several = process.env.BENCH_OLD_CLI || process.env.BENCH_TUNABLES || process.env.BENCH_DIRECT;
  variants.push({ label: several ? 'new ' : '', cli, env: {} });
  if (process.env.BENCH_DIRECT) variants.push({ label: 'new O_DIRECT ', cli, env: { [DIRECT_IO_ENV]: '1' } });
  if (process.env.BENCH_TUNABLES) variants.push({ label: 'new+tunables ', cli, env: { GLIBC_TUNABLES: TUNABLES } });
  const servers: { url: string; pid: number; dir: string; v: (typeof variants)[number] }[] = [];
  for (const [vi, v] of variants.entries()) {
    const serverDir = join(work, `server-${vi}`);
    const serverCfg = await storeConfig(
      `server-${vi}`,
      serverDir,
      `repoServer:\n  tokens:\n    - name: bench\n      token: ${TOKEN}\n      scopes: [read, write]\n`,
    );
    const srv = execa(node, [v.cli, 'repo', 'serve', '--listen', '127.0.0.1:0', '--data', serverDir], { env: { VMFORGE_CONFIG: serverCfg, ...v.env }, stderr: 'ignore' });
    serverProcs.push(srv);
    const url = await new Promise<string>((resolve, reject) => {
      srv.stdout!.on('data', (d: Buffer) => {
        const m = /at (http:\/\/\S+)/.exec(d.toString());
        if (m) resolve(m[1] as string);
      });
      srv.catch(reject);
    });
    servers.push({ url, pid: srv.pid!, dir: serverDir, v });
  }
  const clientEnv = (cfg: string, extra: Record<string, string>) => ({ VMFORGE_CONFIG: cfg, VMFORGE_REPO_TOKEN: TOKEN, ...extra });
  const cfgA = await storeConfig('a', storeA.dir);

  for (let i = 0; i < runs; i++) {
    const copy = join(work, 'copy.blob');
    let t = performance.now();
    await execa('cp', [src, copy]);
    await execa('sync', [copy]);
    add('cp + sync FILE (baseline)', (performance.now() - t) / 1000);
    await rm(copy);

    t = performance.now();
    await execa('cp', [src, copy]);
    add('cp (no sync)', (performance.now() - t) / 1000);
    await rm(copy);
    await execa('sync'); // so the next step does not pay for this one's writeback

    // Alternate the order between rounds, so no variant always goes first.
    const order = i % 2 === 0 ? servers : [...servers].reverse();
    for (const { url, pid: serverPid, dir: serverDir, v } of order) {
      await resetHwm(serverPid);
      let c0 = await cpuOf(serverPid);
      let f0 = await faultsOf(serverPid);
      const pub = await timedChild([node, v.cli, 'bundle', 'publish', REF, '--repo', url, '--json'], clientEnv(cfgA, v.env));
      add(`${v.label}bundle publish`, pub.wall, pub.rssKiB, await serverHwmKiB(serverPid), {
        client: pub.cpu,
        server: (await cpuOf(serverPid)) - c0,
        faults: `${pub.faults} / ${(await faultsOf(serverPid)) - f0}`,
      });
      await execa('sync');

      // The server's copy is read once before the pull, so every variant's pull starts with it in the page cache
      // (like cp's source): one written with O_DIRECT would otherwise be read from the disk.
      await execa('cat', [new BundleStore(serverDir).blobPath(sha256, manifest.compression)], { stdout: 'ignore' });
      const storeBDir = join(work, `client-b-${i}`);
      const cfgB = await storeConfig(`b-${i}`, storeBDir);
      await resetHwm(serverPid);
      c0 = await cpuOf(serverPid);
      f0 = await faultsOf(serverPid);
      const pull = await timedChild([node, v.cli, 'bundle', 'pull', REF, '--repo', url, '--json'], clientEnv(cfgB, v.env));
      add(`${v.label}bundle pull`, pull.wall, pull.rssKiB, await serverHwmKiB(serverPid), {
        client: pull.cpu,
        server: (await cpuOf(serverPid)) - c0,
        faults: `${pull.faults} / ${(await faultsOf(serverPid)) - f0}`,
      });
      await rm(storeBDir, { recursive: true, force: true });

      const del = await fetch(new URL('v1/bundles/bench-xfer/1', url.endsWith('/') ? url : `${url}/`), { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
      if (!del.ok) throw new Error(`DELETE failed: ${del.status} ${await del.text()}`);
      await execa('sync');
    }
  }
} finally {
  for (const p of serverProcs) {
    p.kill('SIGTERM');
    await p.catch(() => undefined);
  }
  await rm(work, { recursive: true, force: true });
}

const { stdout: up } = await execa('uptime');
process.stderr.write(`load at the end: ${up.trim()}\n`);
const gib = SIZE / 2 ** 30;
const base = median(rows['cp + sync FILE (baseline)']!.wall);
const mibps = (s: number) => `${(SIZE / 2 ** 20 / s).toFixed(0)} MiB/s`;
const cpuCell = (xs: number[]) => (xs.length ? `${median(xs).toFixed(1)} s` : '-');
const rssCell = (xs: number[]) => (xs.length ? `${(Math.max(...xs) / 1024).toFixed(0)} MiB` : '-');
console.log(`${gib} GiB blob over 127.0.0.1, ${runs} runs each, medians; RSS = max over runs; load: ${up.trim()}`);
console.log(
  `${'what'.padEnd(28)} ${'wall'.padStart(8)} ${'rate'.padStart(11)} ${'vs cp+sync'.padStart(10)} ${'client RSS'.padStart(10)} ${'server RSS'.padStart(10)} ${'client CPU'.padStart(10)} ${'server CPU'.padStart(10)}`,
);
for (const [k, r] of Object.entries(rows)) {
  const w = median(r.wall);
  console.log(
    `${k.padEnd(28)} ${`${w.toFixed(2)} s`.padStart(8)} ${mibps(w).padStart(11)} ${`${((base / w) * 100).toFixed(0)}%`.padStart(10)} ${rssCell(r.clientRss).padStart(10)} ${rssCell(r.serverRss).padStart(10)} ${cpuCell(r.clientCpu).padStart(10)} ${cpuCell(r.serverCpu).padStart(10)}`,
  );
}
console.log('publish/pull walls are whole CLI commands (Node start-up, config, manifest request, transfer, fsync, rename).');
