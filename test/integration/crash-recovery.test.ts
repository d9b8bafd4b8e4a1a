/**
 * Crash recovery: a build killed with SIGKILL (no chance to undo anything itself) at 20 points, half spread over
 * its duration and half at the start of its steps one after another, each followed by `vmforge recover`, leaves
 * nothing behind. Only the main process is killed, as the
 * OOM killer would: children it started (mkfs, tar, zstd) may still be finishing when recovery runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
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

function startBuild(
  name: string,
  extra: string[] = [],
  extraEnv: Record<string, string> = {},
  onStep?: (step: string) => void,
): { child: ResultPromise; firstStep: Promise<number>; steps: string[] } {
  const child = execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'vm', 'build', name, '--bundle', bundle, ...base, ...extra], {
    cwd: REPO,
    env: { VMFORGE_CONFIG: env.configPath, ...extraEnv },
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
          onStep?.(m[1] as string);
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
    let calSteps: string[] = [];
    for (let k = 0; k < 2; k++) {
      const cal = uniqueName('vmfcal');
      const c = startBuild(cal);
      const t0 = await c.firstStep;
      const cr = await c.child;
      durationMs = Math.min(durationMs, performance.now() - t0);
      calSteps = c.steps;
      expect(cr.exitCode).toBe(0);
      expect((await env.cli(['vm', 'destroy', cal])).exitCode).toBe(0);
      expect(await leftovers(env, cal)).toEqual([]);
    }

    const rows: { at: string; lastStep: string; outcome: string; undone: number; leaks: string[] }[] = [];
    // Every other kill lands at a point in time spread over the build; the others as a given step starts, one
    // step after another, so the short steps between the long ones (extraction, flush) are hit too.
    for (let i = 1; i <= KILLS; i++) {
      const name = uniqueName('vmfkill');
      const target = i % 2 === 0 ? calSteps[(i / 2 - 1) % calSteps.length] : undefined;
      let killed = false;
      const b = startBuild(name, [], {}, (step) => {
        if (step === target) killed = b.child.kill('SIGKILL');
      });
      const start = await b.firstStep;
      const delay = (durationMs * i) / (KILLS + 1);
      if (target === undefined) {
        await new Promise((r) => setTimeout(r, Math.max(0, start + delay - performance.now())));
        killed = b.child.kill('SIGKILL');
      }
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
        at: target === undefined ? `${(delay / 1000).toFixed(2)} s` : `at ${target}`,
        lastStep: b.steps.at(-1) ?? '(none)',
        outcome,
        undone: mine.reduce((n, j) => n + j.undone, 0),
        leaks: await leftovers(env, name),
      });
    }
    console.log(`build ${(durationMs / 1000).toFixed(2)} s from first step to exit; kills:\n${rows.map((r) => `  ${r.at.padEnd(20)}  ${r.lastStep.padEnd(18)} ${r.outcome}, undid ${r.undone}, leaks ${r.leaks.length}`).join('\n')}`);
    expect(rows.flatMap((r) => r.leaks)).toEqual([]);
    // The kills really land inside the build, not all before or after it.
    expect(rows.filter((r) => r.outcome.startsWith('killed')).length).toBeGreaterThanOrEqual(KILLS - 2);
    expect(new Set(rows.map((r) => r.lastStep)).size).toBeGreaterThanOrEqual(Math.min(7, calSteps.length));
  }, 900_000);
});

describe('a build of the same name after a crash', () => {
  it('recovers the orphaned domain under the lock and builds, not mistaking it for a foreign one', async () => {
    // The killed build defined its domain (its journal says to remove it) but never committed: the next build's
    // recovery removes that domain. The build asks libvirt for its domain names early, before recovery; it must
    // ask again once recovery has undone something, or it would refuse the name as "not made by vmforge".
    // To kill it exactly there, the first build finds a virsh on its PATH that, after a define, says so in a
    // marker file and then waits.
    const name = uniqueName('vmfagain');
    const wrapDir = join(env.dir, 'virsh-wrap');
    const marker = join(env.dir, 'defined');
    await mkdir(wrapDir, { recursive: true });
    await writeFile(
      join(wrapDir, 'virsh'),
      `#!/bin/sh\n/usr/bin/virsh "$@"\nrc=$?\ncase "$*" in *define*) : > '${marker}'; sleep 20 ;; esac\nexit $rc\n`,
      { mode: 0o755 },
    );
    const b = startBuild(name, ['--no-start'], { PATH: `${wrapDir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` });
    for (let i = 0; !existsSync(marker); i++) {
      if (i > 1200) throw new Error('the build never defined its domain');
      await new Promise((r) => setTimeout(r, 100));
    }
    b.child.kill('SIGKILL');
    await b.child;
    expect(await listDomains()).toContain(name);

    const again = await env.cli(['vm', 'build', name, '--bundle', bundle, ...base, '--no-start']);
    expect(again.exitCode, again.stderr + again.stdout.slice(-2000)).toBe(0);
    expect(again.stdout).toMatch(/"event":"undo.done"/);
    expect((await env.cli(['vm', 'destroy', name])).exitCode).toBe(0);
    expect(await leftovers(env, name)).toEqual([]);
  }, 600_000);
});

async function listDomains(): Promise<string[]> {
  const r = await execa('virsh', ['-q', '-c', 'qemu:///system', 'list', '--all', '--name'], { reject: false });
  return String(r.stdout).split('\n').map((l) => l.trim());
}
