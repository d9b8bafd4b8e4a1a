/**
 * A guest filesystem on a host mount cannot raise anyone's privileges: a bundle carrying a setuid-root copy of
 * /usr/bin/id is built, the build is paused (VMFORGE_FAULT=pause:STEP, a SIGSTOP) right after the extraction while
 * the root filesystem is mounted, and then: the mount's options include nosuid,nodev,noexec; <runDir>/mnt is 0700
 * although it existed beforehand with a wider mode; and with a path planted for user nobody (the directories on
 * the way opened up for the check), exec of the setuid file as nobody never gets euid 0.
 */
import { execa, type ResultPromise } from 'execa';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMountinfo } from '../../src/exec/tools/mount.js';
import { ensureLibvirt, leftovers, makeTestEnv, REPO, requireRoot, uniqueName, type TestEnv } from '../harness/env.js';
import { writeMinimalDebianRoot } from '../harness/minimal-root.js';

requireRoot();

let env: TestEnv;
let config: string;

beforeAll(async () => {
  await ensureLibvirt();
  env = await makeTestEnv();
  config = join(env.dir, 'suid.yaml');
  await writeFile(config, `stateDir: ${env.config.stateDir}\nbundles:\n  dir: ${env.dir}/bundles\nstorage:\n  clone: off\n`);
});
afterAll(async () => {
  await env?.cleanup();
});

/** A Debian-looking root with /usr/local/bin/suid-id: the host's id, owned by root, mode 4755. */
async function suidBundle(): Promise<string> {
  const src = join(env.dir, 'suid-root');
  await writeMinimalDebianRoot(src);
  await mkdir(join(src, 'usr/local/bin'), { recursive: true });
  await writeFile(join(src, 'usr/local/bin/suid-id'), await readFile('/usr/bin/id'));
  await chmod(join(src, 'usr/local/bin/suid-id'), 0o4755);
  const out = join(env.dir, 'suid.tar.zst');
  await execa('tar', ['-c', '--zstd', '--numeric-owner', '--owner=0', '--group=0', '-f', out, '-C', src, '.']);
  return out;
}

async function processState(pid: number): Promise<string | null> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  return text ? (/\) (\S)/.exec(text)?.[1] ?? null) : null;
}

describe('guest filesystems on the host', () => {
  it('a setuid-root file in a bundle is not setuid-effective on the build mount; run/mnt is 0700', async () => {
    const imported = await execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'bundle', 'import', await suidBundle(), '--name', 'suid', '--version', '1', '--arch', 'x86_64'], {
      env: { VMFORGE_CONFIG: config },
      reject: false,
    });
    expect(imported.exitCode, imported.stderr).toBe(0);
    // run/mnt already there, world-writable: the build must tighten it, not trust it.
    const mntRoot = join(env.config.runDir, 'mnt');
    await mkdir(mntRoot, { recursive: true });
    await chmod(mntRoot, 0o1777);

    const name = uniqueName('hd-suid');
    const child: ResultPromise = execa(
      process.execPath,
      ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'vm', 'build', name, '--bundle', 'suid:1', '--memory', '256M', '--disk', '1G', '--swap', '0', '--net', 'none', '--no-start'],
      { cwd: REPO, env: { VMFORGE_CONFIG: config, VMFORGE_FAULT: 'pause:guest.configure' }, reject: false },
    );
    const pid = child.pid as number;
    // What is seen while paused, asserted once the build has finished and been cleaned up.
    let mountOptions: string[] | undefined;
    let mntMode = -1;
    let suidFile: [number, number] = [-1, -1];
    let asNobody: { exitCode: number; out: string } | undefined;
    try {
      const deadline = Date.now() + 180_000;
      for (let st = await processState(pid); st !== 'T'; st = await processState(pid)) {
        if (st === null || st === 'Z' || Date.now() > deadline) throw new Error(`the build never paused (state ${st})`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const mountDir = join(mntRoot, name);
      mountOptions = parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'))
        .find((e) => e.mountPoint === mountDir)
        ?.options.split(',');
      mntMode = (await stat(mntRoot)).mode & 0o7777;
      const suid = join(mountDir, 'usr/local/bin/suid-id');
      const st = await stat(suid);
      suidFile = [st.uid, st.mode & 0o7777];
      // The planted path: every directory on the way opened to others, as a careless admin (or a reused run dir
      // with a wide mode) could leave it; only the mount's own options stand between nobody and euid 0.
      const opened: [string, number][] = [];
      try {
        for (let d = join(mountDir, 'usr/local/bin'); d !== '/'; d = join(d, '..')) {
          const mode = (await stat(d)).mode & 0o7777;
          if ((mode & 0o001) === 0) {
            opened.push([d, mode]);
            await chmod(d, mode | 0o001);
          }
        }
        const r = await execa('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', suid], { reject: false });
        asNobody = { exitCode: r.exitCode ?? -1, out: `${String(r.stdout)}${String(r.stderr)}` };
      } finally {
        for (const [d, mode] of opened.reverse()) await chmod(d, mode);
      }
    } finally {
      process.kill(pid, 'SIGCONT');
      const r = await child;
      if (r.exitCode === 0) expect((await env.cli(['vm', 'destroy', name], { env: { VMFORGE_CONFIG: config } })).exitCode).toBe(0);
      expect(await leftovers(env, name)).toEqual([]);
    }
    expect(mountOptions, 'no mount of the guest root while paused').toBeDefined();
    for (const o of ['nosuid', 'nodev', 'noexec']) expect(mountOptions).toContain(o);
    expect(mntMode.toString(8)).toBe('700');
    expect(suidFile).toEqual([0, 0o4755]);
    // Either it does not run at all (noexec: EACCES) or it runs without the owner's privileges (nosuid).
    expect(asNobody?.out).not.toMatch(/euid=0\(|^uid=0\(/);
    expect(asNobody?.out).toMatch(asNobody?.exitCode === 0 ? /^uid=65534\(nobody\)/ : /Permission denied/);
  }, 300_000);
});
