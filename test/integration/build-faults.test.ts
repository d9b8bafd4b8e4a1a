/**
 * Fault injection through the real CLI: the build fails before and after each of its steps in turn (the
 * list comes from the plan itself, via --dry-run --json), and afterwards nothing of the VM exists: no loop
 * device, mount, disk file, console file, domain, inventory row or pending undo record. Ctrl-C too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, REPO, uniqueName, type TestEnv } from '../harness/env.js';

let env: TestEnv;
let bundle: string;
const base = ['--memory', '256M', '--disk', '2G', '--swap', '128M', '--net', 'none'];

beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
  env = await makeTestEnv();
});
afterAll(async () => {
  await env?.cleanup();
});

async function plannedSteps(extra: string[]): Promise<string[]> {
  const r = await env.cli(['vm', 'build', 'plan-only', '--bundle', bundle, ...base, ...extra, '--dry-run', '--json']);
  expect(r.exitCode).toBe(0);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as { result: { plan: { steps: { id: string }[] } } };
  return last.result.plan.steps.map((s) => s.id);
}

describe('a failure at any build step undoes everything', () => {
  it('covers every step of the plan, before and after', async () => {
    const withWait = await plannedSteps(['--wait']);
    expect(withWait).toContain('boot.wait');
    // after:boot.wait would need a full boot; the e2e test covers a successful boot.wait instead.
    const faults = [
      ...withWait.map((s) => ({ fault: `before:${s}`, flags: ['--wait'] })),
      ...withWait.filter((s) => s !== 'boot.wait' && s !== 'inventory.commit').map((s) => ({ fault: `after:${s}`, flags: ['--wait'] })),
      { fault: 'after:inventory.commit', flags: ['--no-start'] },
    ];
    const report: string[] = [];
    for (const { fault, flags } of faults) {
      const name = uniqueName('vmffault');
      const r = await env.cli(['vm', 'build', name, '--bundle', bundle, ...base, ...flags], { env: { VMFORGE_FAULT: fault } });
      expect(r.exitCode, `${fault}: ${r.stderr}`).not.toBe(0);
      expect(r.stderr).toContain(`injected fault ${fault.replace(':', ' step \'')}'`);
      expect(r.stderr).not.toContain('undo also failed');
      const left = await leftovers(env, name);
      if (left.length) report.push(`${fault}: ${left.join(', ')}`);
    }
    expect(report).toEqual([]);
  });

  it('Ctrl-C during the bundle extraction stops and undoes', async () => {
    const name = uniqueName('vmfint');
    const child = execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'vm', 'build', name, '--bundle', bundle, ...base, '--json'], {
      cwd: REPO,
      env: { VMFORGE_CONFIG: env.configPath },
      reject: false,
    });
    let sent = false;
    child.stdout?.on('data', (d: Buffer) => {
      if (!sent && d.toString().includes('"step":"bundle.extract"')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const r = await child;
    expect(sent).toBe(true);
    expect(r.exitCode).toBe(130);
    expect(String(r.stderr)).toMatch(/SIGINT: stopping and undoing/);
    expect(String(r.stdout)).toContain('"event":"pipeline.failed"');
    expect(await leftovers(env, name)).toEqual([]);
  });
});
