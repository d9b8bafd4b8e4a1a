/**
 * CLI start-up: medians of `node -e 0` (Node's own floor on this host right now), `vmforge --version`,
 * `vmforge --help` (the whole command tree), `vmforge vm build --help` and `vmforge vm list --json` (empty
 * inventory in a temp state dir, so no virsh call). The commands run interleaved, round after round, so load changes hit every row alike; what to compare is
 * the difference to `node -e 0` in the same run. Extra arguments are other builds of the entry (e.g. the
 * previous commit's dist/cli/main.js) measured the same way in the same rounds.
 * Usage: npx tsx bench/startup.ts [runs=20] [other/cli/main.js ...]   (runs `npm run build` first; no root)
 */
import { spawnSync } from 'node:child_process';
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
  const once = (argv: string[]): number => {
    const t = performance.now();
    const r = spawnSync(process.execPath, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const ms = performance.now() - t;
    if (r.status !== 0) throw new Error(`node ${argv.join(' ')} exited ${r.status}: ${String(r.stderr)}`);
    return ms;
  };
  // Warm-up round: page cache, and the first `vm list` creates the state database.
  for (const c of cases) once(c.argv);
  const loadBefore = load();
  const times = new Map(cases.map((c) => [c.label, [] as number[]]));
  for (let i = 0; i < runs; i++) for (const c of cases) times.get(c.label)?.push(once(c.argv));
  const floor = median(times.get('node -e 0') ?? []);
  console.log(`${runs} runs each, interleaved; load average before ${loadBefore}, after ${load()}`);
  for (const c of cases) {
    const ts = times.get(c.label) ?? [];
    const m = median(ts);
    const extra = c.label === 'node -e 0' ? '' : `  (+${(m - floor).toFixed(0)} ms over node)`;
    console.log(`${c.label.padEnd(40)} median ${m.toFixed(0).padStart(5)} ms  min ${Math.min(...ts).toFixed(0).padStart(5)} ms${extra}`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
