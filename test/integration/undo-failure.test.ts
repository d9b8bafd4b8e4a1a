/**
 * An undo that really fails (not a fake executor): a build is failed by an injected fault while a process keeps
 * its working directory inside the VM's mounted root, so the undo's `umount` gets EBUSY. The CLI must report the
 * original error first (its exit code, its message) with the undo failure beside it, keep the failed undo in the
 * journal, and `vmforge recover` must finish the job once the mount is free: nothing left.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { join } from 'node:path';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, REPO, uniqueName, type TestEnv } from '../harness/env.js';

let env: TestEnv;
let bundle: string;
const base = ['--memory', '256M', '--disk', '2G', '--swap', '128M', '--net', 'none', '--no-start'];

beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
  env = await makeTestEnv();
});
afterAll(async () => {
  await env?.cleanup();
});

describe('an undo that fails', () => {
  it('is reported with the original error, not instead of it, and recover finishes the job', async () => {
    const name = uniqueName('vmfundo');
    const mountDir = join(env.config.runDir, 'mnt', name);
    let holder: ResultPromise | undefined;
    try {
      const child = execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'vm', 'build', name, '--bundle', bundle, ...base, '--json'], {
        cwd: REPO,
        env: { VMFORGE_CONFIG: env.configPath, VMFORGE_FAULT: 'before:boot.install' },
        reject: false,
      });
      child.stdout?.on('data', (d: Buffer) => {
        // The root is mounted from root.mount on; extraction and the guest edits give the holder time to start.
        if (!holder && d.toString().includes('"event":"step.start","step":"bundle.extract"')) {
          holder = execa('sleep', ['600'], { cwd: mountDir, reject: false });
        }
      });
      const r = await child;
      expect(holder, 'the holder started inside the mounted root').toBeDefined();
      const stderr = String(r.stderr);
      // The original error decides the exit code and comes first; the undo failure is beside it.
      expect(r.exitCode).toBe(1);
      const lines = stderr.trim().split('\n');
      expect(lines[0]).toContain("injected fault before step 'boot.install'");
      expect(stderr).toMatch(new RegExp(`undo also failed: .*${name}`));
      expect(stderr).toMatch(/busy/i);
      expect(stderr).toContain("hint: run 'vmforge recover' to retry the undo");
      const failed = String(r.stdout).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.event === 'pipeline.failed');
      expect(failed).toMatchObject({ undoFailures: expect.any(Number) });
      expect(Number(failed?.undoFailures)).toBeGreaterThan(0);
      // What could not be undone is still there, and the journal knows it.
      expect((await leftovers(env, name)).length).toBeGreaterThan(0);

      holder?.kill('SIGKILL');
      await holder;
      const rec = await env.cli(['recover', '--json']);
      expect(rec.exitCode, rec.stderr).toBe(0);
      expect(await leftovers(env, name)).toEqual([]);
      // Nothing left to retry: a second recover has no work.
      const again = await env.cli(['recover', '--json']);
      expect(again.exitCode, again.stderr).toBe(0);
      expect(again.stdout).not.toContain(name);
    } finally {
      holder?.kill('SIGKILL');
      await holder;
    }
  });
});
