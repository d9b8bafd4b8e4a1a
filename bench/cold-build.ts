/**
 * Cold-build benchmark: N builds with --no-start from the cached Debian template into a private state dir,
 * reporting the median of each step and of the whole command (wall), plus the CLI's start-up time.
 * Usage (root): npx tsx bench/cold-build.ts [runs=5]
 */
import { execa } from 'execa';
import { ensureLibvirt, ensureTemplate, makeTestEnv } from '../test/harness/env.js';

const runs = Number(process.argv[2] ?? 5);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

await ensureLibvirt();
const bundle = await ensureTemplate();
const env = await makeTestEnv();
const node = process.execPath;
const cli = ['dist/cli/main.js'];
await execa('npm', ['run', '-s', 'build']);

const startup: number[] = [];
for (let i = 0; i < 10; i++) {
  const t = performance.now();
  await execa(node, [...cli, '--version']);
  startup.push(performance.now() - t);
}

const perStep = new Map<string, number[]>();
const wall: number[] = [];
try {
  for (let i = 0; i < runs; i++) {
    const name = `bench-${i}`;
    const t = performance.now();
    const r = await execa(node, [...cli, 'vm', 'build', name, '--bundle', bundle, '--disk', '4G', '--swap', '512M', '--net', 'none', '--no-start', '--json'], {
      env: { VMFORGE_CONFIG: env.configPath },
    });
    wall.push(performance.now() - t);
    for (const line of r.stdout.trim().split('\n')) {
      const e = JSON.parse(line) as { event: string; step?: string; durationMs?: number };
      if (e.event === 'step.done' && e.step && e.durationMs !== undefined) perStep.set(e.step, [...(perStep.get(e.step) ?? []), e.durationMs]);
    }
    await execa(node, [...cli, 'vm', 'destroy', name], { env: { VMFORGE_CONFIG: env.configPath } });
  }
} finally {
  await env.cleanup();
}

console.log(`bundle ${bundle}; ${runs} cold builds (--no-start), medians:`);
for (const [step, xs] of perStep) console.log(`  ${step.padEnd(18)} ${median(xs).toFixed(0).padStart(6)} ms`);
console.log(`  ${'whole command'.padEnd(18)} ${median(wall).toFixed(0).padStart(6)} ms`);
console.log(`vmforge --version: median ${median(startup).toFixed(0)} ms over 10 runs`);
