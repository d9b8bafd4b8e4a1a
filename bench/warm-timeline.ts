/**
 * Where the time of one warm build goes outside its steps: runs a warm build (golden image prepared first) and
 * prints when each --json event arrived, relative to the spawn, so start-up, gaps between steps and the tail
 * after the last step show up. Usage (root): npx tsx bench/warm-timeline.ts [runs=3] [extra vm build args...]
 */
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { ensureLibvirt, ensureTemplate, makeTestEnv } from '../test/harness/env.js';

const runs = Number(process.argv[2] ?? 3);
const extra = process.argv.slice(3);
await ensureLibvirt();
const bundle = await ensureTemplate();
const env = await makeTestEnv('storage:\n  clone: qcow2\n');
await execa('npm', ['run', '-s', 'build']);
const opts = { env: { ...process.env, VMFORGE_CONFIG: env.configPath } };
const build = (name: string) => ['dist/cli/main.js', 'vm', 'build', name, '--bundle', bundle, '--disk', '4G', '--net', 'none', '--no-start', '--json', ...extra];

function timeline(args: string[]): Promise<{ t: number; line: string }[]> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const out: { t: number; line: string }[] = [];
    const p = spawn(process.execPath, args, opts);
    let buf = '';
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        out.push({ t: performance.now() - t0, line: buf.slice(0, i) });
        buf = buf.slice(i + 1);
      }
    });
    p.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    p.on('exit', (code) => {
      out.push({ t: performance.now() - t0, line: `exit ${code}` });
      if (code === 0) resolve(out);
      else reject(new Error(`exit ${code}`));
    });
  });
}

try {
  await execa(process.execPath, build('tl-golden'), opts);
  await execa(process.execPath, ['dist/cli/main.js', 'vm', 'destroy', 'tl-golden'], opts);
  for (let i = 0; i < runs; i++) {
    const tl = await timeline(build(`tl-${i}`));
    console.log(`--- run ${i}`);
    for (const { t, line } of tl) {
      let s = line;
      try {
        const e = JSON.parse(line) as { event: string; step?: string; durationMs?: number };
        s = `${e.event} ${e.step ?? ''} ${e.durationMs !== undefined ? `(${e.durationMs.toFixed(0)} ms)` : ''}`;
      } catch {
        // not JSON: printed as it came
      }
      console.log(`${t.toFixed(0).padStart(6)} ms  ${s}`);
    }
    const d0 = performance.now();
    await execa(process.execPath, ['dist/cli/main.js', 'vm', 'destroy', `tl-${i}`], opts);
    console.log(`destroy ${(performance.now() - d0).toFixed(0)} ms`);
  }
} finally {
  await env.cleanup();
}
