/**
 * Shared set-up for integration and end-to-end tests: libvirt running, the Debian template bundle (built
 * once by debootstrap and cached between runs), a private state dir per test file, the CLI, and a leak check.
 */
import SQLite from 'better-sqlite3';
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll } from 'vitest';
import { bootstrapDebian } from '../../src/bundles/bootstrap.js';
import { extractBundle } from '../../src/bundles/extract.js';
import { BundleStore } from '../../src/bundles/store.js';
import { parseConfig } from '../../src/config/load.js';
import { pidAlive } from '../../src/exec/pid.js';
import type { Config } from '../../src/config/schema.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { fuseDaemonsUnder } from '../../src/exec/tools/qsd-find.js';

export const REPO = resolve(import.meta.dirname, '../..');
/** Where the debootstrapped template bundle is kept between runs (keyed by its inputs inside the store). */
export const TEMPLATE_CACHE = process.env.VMFORGE_TEST_CACHE ?? '/var/cache/vmforge-test/bundles';
export const TEMPLATE_NAME = 'debian-bookworm';
/** Extracted template roots, one per bundle blob: `<dir>/<sha256>`. */
export const TEMPLATE_ROOTS = process.env.VMFORGE_TEST_ROOTS ?? '/var/cache/vmforge-test/roots';

/** For integration and e2e files: without root they must fail, loudly, not pass or skip. */
export function requireRoot(): void {
  beforeAll(() => {
    if (process.getuid?.() !== 0) throw new Error('integration tests need root (run scripts/test.sh as root)');
  });
}

export async function ensureLibvirt(): Promise<void> {
  await execa(join(REPO, 'scripts/ensure-libvirt.sh'), [], { stdio: 'inherit' });
}

let templatePromise: Promise<string> | null = null;
/** Bootstraps (or reuses) the Debian template bundle; returns its ref. */
export function ensureTemplate(): Promise<string> {
  templatePromise ??= (async () => {
    await mkdir(TEMPLATE_CACHE, { recursive: true });
    const work = '/var/tmp/vmforge-test-work';
    await mkdir(work, { recursive: true, mode: 0o700 });
    const res = await bootstrapDebian(new HostProcessRunner(), {
      workDir: work,
      storeDir: TEMPLATE_CACHE,
      created: new Date().toISOString(),
      name: TEMPLATE_NAME,
      onProgress: (e) => {
        if (e.phase === 'debootstrap' && /^I: (Retrieving|Extracting|Installing|Configuring) [a-z]/.test(e.message) === false) return;
      },
    });
    return `${res.manifest.name}:${res.manifest.version}`;
  })();
  return templatePromise;
}

/**
 * The Debian template plus netplan.io and systemd-resolved, for booting the `ubuntu` (netplan) and
 * `systemd-networkd` guest families on Debian: the same debootstrap recipe with two more packages, cached under its
 * own name and cache key beside the plain template.
 */
export const NETPLAN_TEMPLATE_NAME = 'debian-bookworm-netplan';
export const NETPLAN_TEMPLATE_PACKAGES: readonly string[] = ['netplan.io', 'systemd-resolved'];

let netplanTemplatePromise: Promise<string> | null = null;
/** Bootstraps (or reuses) the netplan template bundle; returns its ref. */
export function ensureNetplanTemplate(): Promise<string> {
  netplanTemplatePromise ??= bootstrapTemplate(NETPLAN_TEMPLATE_NAME, NETPLAN_TEMPLATE_PACKAGES);
  return netplanTemplatePromise;
}

async function bootstrapTemplate(name: string, extraPackages: readonly string[]): Promise<string> {
  await mkdir(TEMPLATE_CACHE, { recursive: true });
  const work = '/var/tmp/vmforge-test-work';
  await mkdir(work, { recursive: true, mode: 0o700 });
  const res = await bootstrapDebian(new HostProcessRunner(), { workDir: work, storeDir: TEMPLATE_CACHE, created: new Date().toISOString(), name, extraPackages });
  return `${res.manifest.name}:${res.manifest.version}`;
}

let templateRootPromise: Promise<string> | null = null;
/**
 * The template bundle extracted once (per blob sha256) and kept between runs; returns the root's path. Callers
 * only read it (copy what they want to change). It is extracted into a temp sibling and renamed into place when
 * complete, so a killed run leaves no half root under the final name.
 */
export function ensureTemplateRoot(): Promise<string> {
  templateRootPromise ??= (async () => {
    const { manifest, blobPath } = await new BundleStore(TEMPLATE_CACHE).resolve(await ensureTemplate());
    const root = join(TEMPLATE_ROOTS, manifest.sha256);
    if (existsSync(root)) return root;
    await mkdir(TEMPLATE_ROOTS, { recursive: true, mode: 0o700 });
    await sweepPartialRoots();
    const partial = await mkdtemp(join(TEMPLATE_ROOTS, `${PARTIAL_PREFIX}${process.pid}-`));
    try {
      await extractBundle(new HostProcessRunner(), { blobPath, compression: manifest.compression, targetDir: partial, expectedSha256: manifest.sha256 });
      await rename(partial, root);
    } catch (e) {
      await rm(partial, { recursive: true, force: true });
      // Another run finished the same root first: its copy is as good as ours.
      if (existsSync(root) && isErrno(e, 'ENOTEMPTY', 'EEXIST')) return root;
      throw e;
    }
    return root;
  })();
  return templateRootPromise;
}

const PARTIAL_PREFIX = '.partial-';

/** Removes what killed runs left half extracted (their pid is gone); a live run's extraction is left alone. */
async function sweepPartialRoots(): Promise<void> {
  for (const name of await readdir(TEMPLATE_ROOTS)) {
    const pid = Number(/^\.partial-(\d+)-/.exec(name)?.[1]);
    if (!pid || pidAlive(pid)) continue;
    await rm(join(TEMPLATE_ROOTS, name), { recursive: true, force: true });
  }
}


function isErrno(e: unknown, ...codes: string[]): boolean {
  return e instanceof Error && codes.includes((e as NodeJS.ErrnoException).code ?? '');
}

export interface TestEnv {
  dir: string;
  configPath: string;
  config: Config;
  /** Runs the CLI (from source, so it is never stale) with this env's config. */
  cli(args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  cleanup(): Promise<void>;
}

/** A private state dir (disks, console, inventory) sharing the cached template bundles; `prefix` names its dir. */
export async function makeTestEnv(extraYaml = '', prefix = 'vmforge-test-'): Promise<TestEnv> {
  await mkdir('/var/tmp', { recursive: true });
  const dir = await mkdtemp(`/var/tmp/${prefix}`);
  // QEMU runs unprivileged and must traverse to the disk: mkdtemp's 0700 would stop it.
  await chmod(dir, 0o755);
  const yaml = `stateDir: ${dir}/state\nbundles:\n  dir: ${TEMPLATE_CACHE}\n${withKeyPoolSetting(withCloneSetting(extraYaml))}`;
  const configPath = join(dir, 'config.yaml');
  await writeFile(configPath, yaml);
  const config = parseConfig(yaml, configPath);
  return {
    dir,
    configPath,
    config,
    async cli(args, opts = {}) {
      const r = await execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), ...args], {
        cwd: REPO,
        env: { VMFORGE_CONFIG: configPath, ...opts.env },
        reject: false,
        timeout: opts.timeoutMs ?? 600_000,
      });
      return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
    },
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Tests written for the cold path keep it: `storage.clone: off` unless the test's YAML sets a clone strategy
 * (the config default is 'auto', which would take the warm path wherever qcow2 works).
 */
function withCloneSetting(extraYaml: string): string {
  if (/^\s+clone:/m.test(extraYaml)) return extraYaml;
  if (/^storage:\s*$/m.test(extraYaml)) return extraYaml.replace(/^storage:\s*$/m, 'storage:\n  clone: off');
  return `storage:\n  clone: off\n${extraYaml}`;
}

/**
 * No host key pool unless the test's YAML has an `ssh:` section: a pool's background filler would outlive the
 * test (and its state dir) and spend the CI's cores on RSA primes. test/integration/host-key-pool.test.ts
 * covers the pool.
 */
function withKeyPoolSetting(yaml: string): string {
  return /^ssh:/m.test(yaml) ? yaml : `${yaml.replace(/\n?$/, '\n')}ssh:\n  hostKeyPool: 0\n`;
}

/** Everything a VM could leave on the host, as seen from the outside (not through vmforge's own state). */
export async function leftovers(env: TestEnv, name: string): Promise<string[]> {
  const found: string[] = [];
  const state = env.config.stateDir;
  const loops = await execa('losetup', ['-J', '-l'], { reject: false });
  for (const l of (JSON.parse(String(loops.stdout || '{"loopdevices":[]}')) as { loopdevices: { name: string; 'back-file': string | null }[] }).loopdevices) {
    if (l['back-file']?.startsWith(state)) found.push(`loop device ${l.name} -> ${l['back-file']}`);
  }
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const mp = line.split(' ')[4];
    if (mp?.startsWith(state)) found.push(`mount ${mp}`);
  }
  // FUSE exports (qemu-storage-daemon) of the VM's overlay, and any daemon still serving something of this env.
  for (const d of await fuseDaemonsUnder(state)) found.push(`qemu-storage-daemon ${d.pid}: ${d.argv.join(' ')}`);
  for (const d of [env.config.storage.dir, env.config.consoleDir, join(env.config.runDir, 'mnt'), join(env.config.runDir, 'export')]) {
    for (const f of await readdir(d).catch(() => [] as string[])) if (f.startsWith(name)) found.push(`file ${join(d, f)}`);
  }
  const dom = await execa('virsh', ['-q', '-c', env.config.libvirt.uri, 'dominfo', name], { reject: false });
  if (dom.exitCode === 0) found.push(`libvirt domain ${name}`);
  if (existsSync(env.config.dbPath)) {
    const db = new SQLite(env.config.dbPath, { readonly: true, fileMustExist: true });
    try {
      if (db.prepare('select name from vms where name = ?').get(name)) found.push(`inventory row ${name}`);
      const pending = db.prepare('select count(*) as n from journal j join jobs b on b.id = j.job_id where b.vm_name = ? and j.undone_at is null').get(name) as { n: number };
      if (pending.n) found.push(`${pending.n} pending undo record(s) for ${name}`);
    } finally {
      db.close();
    }
  }
  return found;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Math.random().toString(36).slice(2, 7)}`;
}
