/**
 * Cold vs warm builds in the same run: N builds with --no-start each of `--clone off` and `--clone qcow2`
 * (alternating, so load changes hit both alike) from the cached Debian template into a private state dir. The
 * golden image is prepared once, before the measured runs (its cost is printed apart). Prints the median of
 * each step and of the whole command (wall), and the load average before and after.
 * Usage (root): npx tsx bench/warm-build.ts [runs=5] [clone=qcow2]
 */
import { execa } from 'execa';
import { loadavg } from 'node:os';
import { ensureLibvirt, ensureTemplate, makeTestEnv } from '../test/harness/env.js';

const runs = Number(process.argv[2] ?? 5);
const warmStrategy = process.argv[3] ?? 'qcow2';
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

await ensureLibvirt();
const bundle = await ensureTemplate();
const env = await makeTestEnv('storage:\n  clone: off\n');
const node = process.execPath;
const cli = ['dist/cli/main.js'];
await execa('npm', ['run', '-s', 'build']);
const opts = { env: { VMFORGE_CONFIG: env.configPath } };
const buildArgs = (name: string, clone: string) => [...cli, 'vm', 'build', name, '--bundle', bundle, '--disk', '4G', '--swap', '512M', '--net', 'none', '--no-start', '--clone', clone, '--json'];

interface Series {
  wall: number[];
  perStep: Map<string, number[]>;
}
const series: Record<'cold' | 'warm', Series> = { cold: { wall: [], perStep: new Map() }, warm: { wall: [], perStep: new Map() } };

async function once(kind: 'cold' | 'warm', name: string): Promise<{ wall: number; steps: Map<string, number> }> {
  const t = performance.now();
  const r = await execa(node, buildArgs(name, kind === 'cold' ? 'off' : warmStrategy), opts);
  const wall = performance.now() - t;
  const steps = new Map<string, number>();
  for (const line of r.stdout.trim().split('\n')) {
    const e = JSON.parse(line) as { event: string; step?: string; durationMs?: number };
    if (e.event === 'step.done' && e.step && e.durationMs !== undefined) steps.set(e.step, e.durationMs);
  }
  await execa(node, [...cli, 'vm', 'destroy', name], opts);
  return { wall, steps };
}

const loadBefore = load();
let prepare: { wall: number; steps: Map<string, number> } | undefined;
try {
  prepare = await once('warm', 'bench-golden');
  for (let i = 0; i < runs; i++) {
    for (const kind of ['cold', 'warm'] as const) {
      const r = await once(kind, `bench-${kind}-${i}`);
      series[kind].wall.push(r.wall);
      for (const [step, ms] of r.steps) series[kind].perStep.set(step, [...(series[kind].perStep.get(step) ?? []), ms]);
    }
  }
} finally {
  await env.cleanup();
}

console.log(`bundle ${bundle}; ${runs} cold (--clone off) and ${runs} warm (--clone ${warmStrategy}) builds, --no-start, 4G disk, 512M swap`);
console.log(`load average (1/5/15 min) before ${loadBefore}, after ${load()}`);
console.log(`golden image prepared once by the first warm build: golden.ensure ${prepare?.steps.get('golden.ensure')?.toFixed(0)} ms, whole command ${prepare?.wall.toFixed(0)} ms`);
for (const kind of ['cold', 'warm'] as const) {
  console.log(`${kind} medians:`);
  for (const [step, xs] of series[kind].perStep) console.log(`  ${step.padEnd(18)} ${median(xs).toFixed(0).padStart(6)} ms`);
  const pipeline = [...series[kind].perStep.values()].reduce((a, xs) => a + median(xs), 0);
  console.log(`  ${'sum of steps'.padEnd(18)} ${pipeline.toFixed(0).padStart(6)} ms`);
  console.log(`  ${'whole command'.padEnd(18)} ${median(series[kind].wall).toFixed(0).padStart(6)} ms`);
}
console.log(`warm/cold whole command: ${(median(series.warm.wall) / median(series.cold.wall)).toFixed(2)}`);
