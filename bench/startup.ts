/**
 * CLI start-up: medians of `node -e 0` (Node's own floor on this host right now), `vmforge --version`,
 * `vmforge --help` (the whole command tree), `vmforge vm build --help` and `vmforge vm list --json` (empty
 * inventory in a temp state dir, so no virsh call): wall time, and CPU (user+sys, via GNU time), which moves less
 * with the host's load. The commands run interleaved, round after round, so load changes hit every row alike;
 * what to compare is the difference to `node -e 0` in the same run. Extra arguments are other builds of the
 * entry (e.g. the previous commit's dist/cli/main.js) measured the same way in the same rounds.
 * Usage: npx tsx bench/startup.ts [runs=20] [other/cli/main.js ...]   (runs `npm run build` first; no root)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..');
const runs = Number(process.argv[2] ?? 20);
const entries = [join(REPO, 'dist/cli/main.js'), ...process.argv.slice(3).map((p) => resolve(p))];
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

const built = spawnSync('npm', ['run', '-s', 'build'], { cwd: REPO, stdio: 'inherit' });
if (built.status !== 0) throw new Error('npm run build failed');
const dir = await mkdtemp(join(tmpdir(), 'vmforge-bench-startup-'));
try {
  const configPath = join(dir, 'config.yaml');
  await writeFile(configPath, `stateDir: ${dir}/state\n`);
  const env = { ...process.env, VMFORGE_CONFIG: configPath };

  const cases: { label: string; argv: string[] }[] = [{ label: 'node -e 0', argv: ['-e', '0'] }];
  for (const entry of entries) {
    const tag = entries.length > 1 ? ` [${relative(REPO, entry)}]` : '';
    cases.push(
      { label: `vmforge --version${tag}`, argv: [entry, '--version'] },
      { label: `vmforge --help${tag}`, argv: [entry, '--help'] },
      { label: `vmforge vm build --help${tag}`, argv: [entry, 'vm', 'build', '--help'] },
      { label: `vmforge vm list --json${tag}`, argv: [entry, 'vm', 'list', '--json'] },
    );
  }
  // CPU (user+sys, from GNU time) moves far less with the host's load than wall time does.
  const timeFile = join(dir, 'time.out');
  const once = (argv: string[]): { wall: number; cpu: number } => {
    const t = performance.now();
    const r = spawnSync('/usr/bin/time', ['-o', timeFile, '-f', '%U %S', process.execPath, ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const wall = performance.now() - t;
    if (r.status !== 0) throw new Error(`node ${argv.join(' ')} exited ${r.status}: ${String(r.stderr)}`);
    const [user, sys] = (readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '').split(' ').map(Number);
    return { wall, cpu: ((user ?? NaN) + (sys ?? NaN)) * 1000 };
  };
  // Warm-up round: page cache, and the first `vm list` creates the state database.
  for (const c of cases) once(c.argv);
  const loadBefore = load();
  const times = new Map(cases.map((c) => [c.label, { wall: [] as number[], cpu: [] as number[] }]));
  for (let i = 0; i < runs; i++)
    for (const c of cases) {
      const r = once(c.argv);
      times.get(c.label)?.wall.push(r.wall);
      times.get(c.label)?.cpu.push(r.cpu);
    }
  const floor = times.get('node -e 0') ?? { wall: [], cpu: [] };
  const [floorWall, floorCpu] = [median(floor.wall), median(floor.cpu)];
  console.log(`${runs} runs each, interleaved; load average before ${loadBefore}, after ${load()}`);
  console.log(`${''.padEnd(52)} ${'wall median'.padStart(11)} ${'min'.padStart(6)} ${'over node'.padStart(9)}   ${'CPU median'.padStart(10)} ${'over node'.padStart(9)}`);
  for (const c of cases) {
    const t = times.get(c.label) ?? { wall: [], cpu: [] };
    const [w, cpu] = [median(t.wall), median(t.cpu)];
    const over = (x: number, f: number) => (c.label === 'node -e 0' ? '' : `+${(x - f).toFixed(0)}`).padStart(9);
    console.log(
      `${c.label.padEnd(52)} ${w.toFixed(0).padStart(8)} ms ${Math.min(...t.wall).toFixed(0).padStart(6)} ${over(w, floorWall)}   ${cpu.toFixed(0).padStart(7)} ms ${over(cpu, floorCpu)}`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
