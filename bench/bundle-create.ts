/**
 * Bundle creation: `vmforge`'s createBundle (tar | zstd -T0 -3, sha256 in the same stream) against the classic
 * `tar czpf` of the same tree, in the same run, medians of N runs each. Prints wall time, CPU time and size.
 * Usage (root): npx tsx bench/bundle-create.ts [runs=3]
 */
import { execa } from 'execa';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createBundle } from '../src/bundles/create.js';
import { HostProcessRunner } from '../src/exec/runner.js';
import { ensureTemplateRoot } from '../test/harness/env.js';

const runs = Number(process.argv[2] ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const root = await ensureTemplateRoot();
const work = await mkdtemp('/var/tmp/vmforge-bench-create-');
const runner = new HostProcessRunner();

/** Wall seconds, and CPU seconds of this process plus its waited-for children (tar, gzip, zstd). */
async function timed(fn: () => Promise<void>): Promise<{ wall: number; cpu: number }> {
  const t = performance.now();
  const before = await childCpu();
  await fn();
  return { wall: (performance.now() - t) / 1000, cpu: (await childCpu()) - before };
}
async function childCpu(): Promise<number> {
  // Fields 16-17 of /proc/self/stat (cutime, cstime) in clock ticks (100 Hz on Linux).
  const f = (await readFile('/proc/self/stat', 'utf8')).split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(f[13]) + Number(f[14]);
  return ticks / 100 + process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6;
}

const results: Record<string, { wall: number[]; cpu: number[]; bytes: number }> = {
  'vmforge create (zstd -T0 -3)': { wall: [], cpu: [], bytes: 0 },
  'tar czpf (gzip -6)': { wall: [], cpu: [], bytes: 0 },
};
try {
  for (let i = 0; i < runs; i++) {
    const store = join(work, `store-${i}`);
    const a = await timed(async () => {
      const r = await createBundle(runner, { rootDir: root, name: 'bench', version: String(i), compression: 'zstd', storeDir: store, created: new Date().toISOString(), excludes: [] });
      results['vmforge create (zstd -T0 -3)']!.bytes = r.manifest.compressedBytes;
    });
    results['vmforge create (zstd -T0 -3)']!.wall.push(a.wall);
    results['vmforge create (zstd -T0 -3)']!.cpu.push(a.cpu);
    await rm(store, { recursive: true, force: true });

    const out = join(work, `classic-${i}.tar.gz`);
    const b = await timed(async () => {
      await execa('tar', ['czpf', out, '--numeric-owner', '--xattrs', '--acls', '-C', root, '.']);
    });
    results['tar czpf (gzip -6)']!.wall.push(b.wall);
    results['tar czpf (gzip -6)']!.cpu.push(b.cpu);
    results['tar czpf (gzip -6)']!.bytes = (await stat(out)).size;
    await rm(out, { force: true });
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
console.log(`tree: ${root}; ${runs} runs each, medians`);
for (const [k, v] of Object.entries(results)) console.log(`  ${k.padEnd(30)} wall ${median(v.wall).toFixed(2)} s  cpu ${median(v.cpu).toFixed(2)} s  size ${mib(v.bytes)}`);
const z = results['vmforge create (zstd -T0 -3)']!;
const g = results['tar czpf (gzip -6)']!;
console.log(`  speed-up ${(median(g.wall) / median(z.wall)).toFixed(1)}x, size ratio ${(z.bytes / g.bytes).toFixed(2)}`);
