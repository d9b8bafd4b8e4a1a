/**
 * Two builds of vmforge's warm path against each other in the same run: warm `vm build` with dist A (e.g. a copy
 * of dist/ from before a change) and with dist B (default: dist/), alternating, in one private state dir, so a
 * change of load hits both alike. Each side prepares its own golden image first if its key differs (reported
 * apart). Prints per-step medians and whole-command medians (wall, and CPU of the process tree via GNU time).
 *
 * Usage (root): node_modules/.bin/tsx bench/warm-ab.ts RUNS DIST_A [DIST_B=dist] [clone=qcow2]
 */
import { execa } from 'execa';
import { readFile, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureLibvirt, ensureTemplate, makeTestEnv } from '../test/harness/env.js';

const runs = Number(process.argv[2] ?? 5);
const distA = resolve(process.argv[3] ?? 'dist');
const distB = resolve(process.argv[4] ?? 'dist');
const strategy = process.argv[5] ?? 'qcow2';
if (!Number.isInteger(runs) || runs < 1) throw new Error('runs must be a whole number >= 1');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

await ensureLibvirt();
const bundle = await ensureTemplate();
const env = await makeTestEnv('storage:\n  clone: off\n');
const opts = { env: { VMFORGE_CONFIG: env.configPath }, reject: false, all: true } as const;
const timeFile = join(env.dir, 'time.out');
const tag = `wab${process.pid.toString(36)}`;

interface Run {
  wall: number;
  cpu: number;
  steps: Map<string, number>;
}
async function once(dist: string, name: string): Promise<Run> {
  const argv = [process.execPath, join(dist, 'cli/main.js'), 'vm', 'build', name, '--bundle', bundle, '--disk', '4G', '--swap', '512M', '--net', 'none', '--no-start', '--clone', strategy, '--json'];
  const t = performance.now();
  const r = await execa('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, ...argv], opts);
  const wall = performance.now() - t;
  if (r.exitCode !== 0) throw new Error(`${name} failed (exit ${r.exitCode}):\n${r.all}`);
  const [u, s] = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
  await rm(timeFile, { force: true });
  const steps = new Map<string, number>();
  for (const line of String(r.stdout).trim().split('\n')) {
    const e = JSON.parse(line) as { event: string; step?: string; durationMs?: number };
    if (e.event === 'step.done' && e.step && e.durationMs !== undefined) steps.set(e.step, e.durationMs);
  }
  const d = await execa(process.execPath, [join(distB, 'cli/main.js'), 'vm', 'destroy', name], opts);
  if (d.exitCode !== 0) throw new Error(`destroy ${name} failed:\n${d.all}`);
  return { wall, cpu: (u ?? 0) + (s ?? 0), steps };
}

const sides = { A: distA, B: distB } as const;
const results: Record<'A' | 'B', Run[]> = { A: [], B: [] };
const prep: Partial<Record<'A' | 'B', Run>> = {};
const loadBefore = load();
try {
  for (const k of ['A', 'B'] as const) prep[k] = await once(sides[k], `${tag}-prep-${k.toLowerCase()}`);
  for (let i = 0; i < runs; i++) {
    for (const k of ['A', 'B'] as const) results[k].push(await once(sides[k], `${tag}-${k.toLowerCase()}${i}`));
  }
} finally {
  await env.cleanup();
}

console.log(`bundle ${bundle}; ${runs} warm builds (--clone ${strategy}, --no-start, 4G disk, 512M swap) each of A=${distA} and B=${distB}, alternating`);
console.log(`load average (1/5/15 min) before ${loadBefore}, after ${load()}`);
for (const k of ['A', 'B'] as const) {
  const p = prep[k];
  console.log(`${k} first build (golden.ensure ${p?.steps.get('golden.ensure')?.toFixed(0)} ms): whole ${p?.wall.toFixed(0)} ms`);
}
const stepNames = [...new Set([...results.A, ...results.B].flatMap((r) => [...r.steps.keys()]))];
console.log(`${'step'.padEnd(20)} ${'A'.padStart(7)} ${'B'.padStart(7)}  (median ms)`);
for (const s of stepNames) {
  const m = (k: 'A' | 'B') => {
    const xs = results[k].map((r) => r.steps.get(s)).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs).toFixed(0) : '-';
  };
  console.log(`${s.padEnd(20)} ${m('A').padStart(7)} ${m('B').padStart(7)}`);
}
const sum = (k: 'A' | 'B') => median(results[k].map((r) => [...r.steps.values()].reduce((a, b) => a + b, 0)));
console.log(`${'sum of steps'.padEnd(20)} ${sum('A').toFixed(0).padStart(7)} ${sum('B').toFixed(0).padStart(7)}`);
for (const [label, f] of [['whole command (wall)', (r: Run) => r.wall], ['CPU s (user+sys)', (r: Run) => r.cpu * 1000]] as const) {
  console.log(`${label.padEnd(20)} ${median(results.A.map(f)).toFixed(0).padStart(7)} ${median(results.B.map(f)).toFixed(0).padStart(7)}`);
}
console.log(`all wall (ms) A: ${results.A.map((r) => r.wall.toFixed(0)).join(' ')}; B: ${results.B.map((r) => r.wall.toFixed(0)).join(' ')}`);
