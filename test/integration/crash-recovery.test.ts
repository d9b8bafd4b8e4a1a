/**
 * Crash recovery: a build killed with SIGKILL (no chance to undo anything itself) at 20 points spread over its
 * duration, each followed by `vmforge recover`, leaves nothing behind. Only the main process is killed, as the
 * OOM killer would: children it started (mkfs, tar, zstd) may still be finishing when recovery runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { join } from 'node:path';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, REPO, requireRoot, uniqueName, type TestEnv } from '../harness/env.js';

requireRoot();

let env: TestEnv;
let bundle: string;
const base = ['--memory', '256M', '--disk', '2G', '--swap', '128M', '--net', 'none', '--json'];
const KILLS = 20;

beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
  env = await makeTestEnv();
});
afterAll(async () => {
  await env?.cleanup();
});

function startBuild(name: string): { child: ResultPromise; firstStep: Promise<number>; steps: string[] } {
  const child = execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'vm', 'build', name, '--bundle', bundle, ...base], {
    cwd: REPO,
    env: { VMFORGE_CONFIG: env.configPath },
    reject: false,
    buffer: false,
  });
  const steps: string[] = [];
  const firstStep = new Promise<number>((resolve) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const m = /"event":"step\.start","step":"([^"]+)"/.exec(line) ?? /"step":"([^"]+)"[^}]*"event":"step\.start"/.exec(line);
        if (m) {
          if (!steps.length) resolve(performance.now());
          steps.push(m[1] as string);
        }
      }
    });
  });
  return { child, firstStep, steps };
}

describe('SIGKILL at any moment of a build, then recover: nothing leaks', () => {
  it(`survives ${KILLS} kills spread over the build`, async () => {
    // Calibrate: how long a whole build takes from its first step to its exit on this host, now.
    // Two runs, the shorter one counts: the first build after start-up is slower (cold caches), and kills timed
    // by it would land after the end of the later, faster builds.
    let durationMs = Infinity;
    for (let k = 0; k < 2; k++) {
      const cal = uniqueName('vmfcal');
      const c = startBuild(cal);
      const t0 = await c.firstStep;
      const cr = await c.child;
      durationMs = Math.min(durationMs, performance.now() - t0);
      expect(cr.exitCode).toBe(0);
      expect((await env.cli(['vm', 'destroy', cal])).exitCode).toBe(0);
      expect(await leftovers(env, cal)).toEqual([]);
    }

    const rows: { at: string; lastStep: string; outcome: string; undone: number; leaks: string[] }[] = [];
    for (let i = 1; i <= KILLS; i++) {
      const name = uniqueName('vmfkill');
      const b = startBuild(name);
      const start = await b.firstStep;
      const delay = (durationMs * i) / (KILLS + 1);
      await new Promise((r) => setTimeout(r, Math.max(0, start + delay - performance.now())));
      const killed = b.child.kill('SIGKILL');
      const res = await b.child;
      let outcome = res.exitCode === 0 ? 'finished before the kill' : killed ? 'killed' : `exit ${res.exitCode}`;
      const rec = await env.cli(['recover', '--json']);
      expect(rec.exitCode, rec.stderr).toBe(0);
      const jobs = JSON.parse(rec.stdout.trim().split('\n').at(-1) as string) as { result: { vm: string; undone: number; failures: string[] }[] };
      const mine = jobs.result.filter((j) => j.vm === name);
      expect(mine.flatMap((j) => j.failures)).toEqual([]);
      if (res.exitCode === 0) {
        // The kill came too late: the VM is whole and is removed the normal way.
        expect((await env.cli(['vm', 'destroy', name])).exitCode).toBe(0);
        outcome = 'finished before the kill';
      } else if ((await env.cli(['vm', 'show', name, '--json'])).exitCode === 0) {
        // Killed after inventory.commit (its transaction also drops the journal): the VM is built and on record,
        // nothing is pending, so recovery must have undone nothing; it is removed the normal way.
        expect(mine.reduce((n, j) => n + j.undone, 0)).toBe(0);
        expect((await env.cli(['vm', 'destroy', name])).exitCode).toBe(0);
        outcome = 'killed after inventory.commit (VM whole, on record)';
      }
      rows.push({
        at: `${(delay / 1000).toFixed(2)} s`,
        lastStep: b.steps.at(-1) ?? '(none)',
        outcome,
        undone: mine.reduce((n, j) => n + j.undone, 0),
        leaks: await leftovers(env, name),
      });
    }
    console.log(`build ${(durationMs / 1000).toFixed(2)} s from first step to exit; kills:\n${rows.map((r) => `  ${r.at}  ${r.lastStep.padEnd(18)} ${r.outcome}, undid ${r.undone}, leaks ${r.leaks.length}`).join('\n')}`);
    expect(rows.flatMap((r) => r.leaks)).toEqual([]);
    // The kills really land inside the build, not all before or after it.
    expect(rows.filter((r) => r.outcome.startsWith('killed')).length).toBeGreaterThanOrEqual(KILLS - 2);
    expect(new Set(rows.map((r) => r.lastStep)).size).toBeGreaterThanOrEqual(5);
  }, 900_000);
});
