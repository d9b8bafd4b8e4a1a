/**
 * `vm build --count N PATTERN` with the real template bundle and --no-start: N VMs with distinct names, disks and
 * domains from one command; a bad pattern (or --ip with several VMs) is refused with nothing made; one VM that
 * fails (its name is taken in libvirt) leaves the others built and the command's exit status non-zero.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, requireRoot, uniqueName, type TestEnv } from '../harness/env.js';

requireRoot();

let bundle: string;
let env: TestEnv;
const made: string[] = [];
const foreignDomains: string[] = [];
const base = ['--disk', '3G', '--swap', '256M', '--memory', '256M', '--net', 'none', '--no-start'];

beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
  env = await makeTestEnv();
});

afterAll(async () => {
  const found: string[] = [];
  for (const name of made) {
    await env.cli(['vm', 'destroy', name]);
    found.push(...(await leftovers(env, name)));
  }
  for (const name of foreignDomains) await execa('virsh', ['-c', env.config.libvirt.uri, 'undefine', name], { reject: false });
  await env.cleanup();
  expect(found).toEqual([]);
});

const jsonLines = (stdout: string) => stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('vm build --count', () => {
  it('builds 3 VMs from one pattern, each with its own name, disk and domain', async () => {
    const prefix = uniqueName('wtcount');
    const names = [1, 2, 3].map((i) => `${prefix}-${i}`);
    made.push(...names);
    // A virsh on PATH that notes each start: the batch asks libvirt for its domain names once, not once per VM.
    const wrapDir = join(env.dir, 'virsh-count');
    const calls = join(wrapDir, 'calls.log');
    await mkdir(wrapDir);
    await writeFile(join(wrapDir, 'virsh'), `#!/bin/sh\necho "$*" >> '${calls}'\nexec /usr/bin/virsh "$@"\n`, { mode: 0o755 });
    const r = await env.cli(['vm', 'build', `${prefix}-%d`, '--count', '3', '--bundle', bundle, ...base, '--json'], {
      env: { PATH: `${wrapDir}:${process.env.PATH ?? ''}` },
    });
    expect(r.exitCode, r.stderr + r.stdout.slice(-2000)).toBe(0);
    const virshCalls = (await readFile(calls, 'utf8')).trim().split('\n');
    expect(virshCalls.filter((c) => / list --all --name$/.test(c))).toHaveLength(1);
    // ... in the same virsh start as its active networks (the default NIC picks from them).
    expect(virshCalls.filter((c) => /net-list/.test(c))).toHaveLength(1);
    const lines = jsonLines(r.stdout);
    const results = lines.filter((l) => l.event === 'result');
    expect(results.map((l) => l.vm).sort()).toEqual(names);
    // Progress events carry the VM they belong to.
    expect(lines.some((l) => l.event === 'step.done' && l.vm === names[2])).toBe(true);
    expect(lines.at(-1)).toEqual({ event: 'summary', result: { dryRun: false, built: names, failed: [] } });

    const listed = JSON.parse((await env.cli(['vm', 'list', '--json'])).stdout) as { name: string; diskPath: string; state: string | null }[];
    const ours = listed.filter((v) => names.includes(v.name));
    expect(ours.map((v) => v.name).sort()).toEqual(names);
    const disks = ours.map((v) => v.diskPath);
    expect(new Set(disks).size).toBe(3);
    const inodes = new Set<number>();
    for (const d of disks) {
      expect(existsSync(d), d).toBe(true);
      inodes.add((await stat(d)).ino);
    }
    expect(inodes.size).toBe(3);
    for (const v of ours) expect(v.state).toBe('shut off');
    for (const name of names) {
      const dom = await execa('virsh', ['-q', '-c', env.config.libvirt.uri, 'domuuid', name]);
      expect(dom.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);
    }

    for (const name of names) {
      const d = await env.cli(['vm', 'destroy', name]);
      expect(d.exitCode, d.stderr).toBe(0);
      expect(await leftovers(env, name)).toEqual([]);
    }
  });

  it('refuses a bad pattern, and --ip with several VMs, before making anything', async () => {
    const prefix = uniqueName('wtcount');
    const before = await readdir(env.config.storage.dir).catch(() => [] as string[]);
    const cases = [
      { args: [`${prefix}-%d-%d`, '--count', '2'], says: "has 2 '%d'" },
      { args: [prefix, '--count', '2'], says: "has 0 '%d'" },
      // The 10th name is one character too long: refused as a whole, so not even the first 9 are built.
      { args: [`${prefix}${'a'.repeat(62 - prefix.length)}%d`, '--count', '10'], says: 'not a valid VM name' },
      { args: [`${prefix}-%d`, '--count', '2', '--ip', '10.77.0.9/24'], says: '--ip' },
    ];
    for (const c of cases) {
      const r = await env.cli(['vm', 'build', ...c.args, '--bundle', bundle, ...base]);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toContain(c.says);
    }
    const listed = JSON.parse((await env.cli(['vm', 'list', '--json'])).stdout) as { name: string }[];
    expect(listed.filter((v) => v.name.startsWith(prefix))).toEqual([]);
    expect(await readdir(env.config.storage.dir).catch(() => [] as string[])).toEqual(before);
    const doms = await execa('virsh', ['-q', '-c', env.config.libvirt.uri, 'list', '--all', '--name']);
    expect(doms.stdout.split('\n').filter((n) => n.startsWith(prefix))).toEqual([]);
  });

  it('keeps the VMs that were built when one fails, and exits non-zero naming it', async () => {
    const prefix = uniqueName('wtcount');
    const names = [1, 2].map((i) => `${prefix}-${i}`);
    // A domain libvirt has but vmforge did not make: the build of that name is refused (CONFLICT).
    const taken = `${prefix}-2`;
    const xml = join(env.dir, 'foreign.xml');
    const caps = (await execa('virsh', ['-c', env.config.libvirt.uri, 'domcapabilities'])).stdout;
    const type = /<domain>kvm<\/domain>/.test(caps) ? 'kvm' : 'qemu';
    await writeFile(xml, `<domain type='${type}'><name>${taken}</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>`);
    await execa('virsh', ['-c', env.config.libvirt.uri, 'define', xml]);
    foreignDomains.push(taken);
    made.push(names[0] as string);

    const r = await env.cli(['vm', 'build', `${prefix}-%d`, '--count', '2', '--bundle', bundle, ...base]);
    expect(r.exitCode, r.stderr).toBe(5);
    expect(r.stdout).toContain(`VM ${names[0]} built`);
    expect(r.stderr).toContain(`1 of 2 builds failed: ${taken} (CONFLICT`);
    const listed = JSON.parse((await env.cli(['vm', 'list', '--json'])).stdout) as { name: string }[];
    expect(listed.map((v) => v.name).filter((n) => n.startsWith(prefix))).toEqual([names[0]]);
  });
});
