/**
 * bootstrapDebian: debootstrap a minimal bootable Debian root, strip what must differ per VM (machine-id, SSH host
 * keys, hostname, the build host's resolv.conf) and what is only download cache, bundle it, remove the scratch
 * root. The result records a cache key of its inputs, so a second call with the same inputs reuses it.
 */
import { createHash } from 'node:crypto';
import { readFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join, resolve as resolvePath, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { invalidInput, VmforgeError } from '../errors.js';
import { GuestRoot } from '../exec/guestfs/guest-root.js';
import type { CommandRunner, HostRunner } from '../exec/runner.js';
import { createBundle, type CreateProgress } from './create.js';
import type { Compression } from './manifest.js';
import { BundleStore, type ResolvedBundle } from './store.js';

/** Bump when the recipe below changes what ends up in the root, so cached bundles are not reused. */
export const BOOTSTRAP_RECIPE_VERSION = 1;

/** Besides the kernel: boot with systemd, get an address by DHCP or static config, be reachable over SSH. */
export const DEBIAN_BASE_PACKAGES: readonly string[] = Object.freeze([
  'systemd-sysv',
  'udev',
  'dbus',
  'ifupdown',
  'isc-dhcp-client',
  'iproute2',
  'iputils-ping',
  'netbase',
  'openssh-server',
  'kmod',
  'procps',
]);

export const DEFAULT_DEBIAN_MIRROR = 'http://deb.debian.org/debian';

export interface BootstrapDebianOptions {
  /** Scratch parent directory; a unique subdirectory is made in it and removed afterwards. */
  workDir: string;
  storeDir: string;
  /** ISO 8601 creation time of the bundle. */
  created: string;
  suite?: string;
  mirror?: string;
  /** dpkg architecture name. */
  arch?: string;
  kernelPackage?: string;
  extraPackages?: readonly string[];
  /** Default `debian-<suite>`. */
  name?: string;
  /** Default `<yyyymmdd of created>-<first 8 hex digits of the cache key>`. */
  version?: string;
  compression?: Compression;
  level?: number;
  /** Bootstrap even when the store already holds a bundle with the same cache key. */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (e: BootstrapProgress) => void;
}

export type BootstrapProgress =
  | { phase: 'debootstrap'; message: string }
  | { phase: 'clean' }
  | ({ phase: 'bundle' } & CreateProgress);

export interface BootstrapResult extends ResolvedBundle {
  /** True when an existing bundle with the same cache key was returned and nothing was built. */
  reused: boolean;
  cacheKey: string;
}

interface BootstrapInputs {
  suite: string;
  mirror: string;
  arch: string;
  variant: 'minbase';
  components: string[];
  packages: string[];
}

function bootstrapInputs(opts: Pick<BootstrapDebianOptions, 'suite' | 'mirror' | 'arch' | 'kernelPackage' | 'extraPackages'>): BootstrapInputs {
  const suite = opts.suite ?? 'bookworm';
  const mirror = (opts.mirror ?? DEFAULT_DEBIAN_MIRROR).replace(/\/+$/, '');
  const arch = opts.arch ?? 'amd64';
  const kernel = opts.kernelPackage ?? 'linux-image-cloud-amd64';
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(suite)) throw invalidInput(`suite '${suite}' is not a Debian suite name`);
  if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(arch)) throw invalidInput(`arch '${arch}' is not a dpkg architecture`);
  if (!/^(https?|file):\/\/[^\s,]+$/.test(mirror)) throw invalidInput(`mirror '${mirror}' is not an http(s):// or file:// URL`);
  const packages = [...new Set([kernel, ...DEBIAN_BASE_PACKAGES, ...(opts.extraPackages ?? [])])].sort();
  for (const p of packages) {
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(p)) throw invalidInput(`'${p}' is not a Debian package name`);
  }
  return { suite, mirror, arch, variant: 'minbase', components: ['main'], packages };
}

/** sha256 of everything that decides what debootstrap produces (plus the recipe version), as hex. */
export function bootstrapCacheKey(opts: Pick<BootstrapDebianOptions, 'suite' | 'mirror' | 'arch' | 'kernelPackage' | 'extraPackages'>): string {
  const inputs = bootstrapInputs(opts);
  const canonical = JSON.stringify({ recipe: BOOTSTRAP_RECIPE_VERSION, ...inputs });
  return createHash('sha256').update(canonical).digest('hex');
}

export function debootstrapArgv(inputs: BootstrapInputs, target: string): string[] {
  return [
    'debootstrap',
    `--variant=${inputs.variant}`,
    `--arch=${inputs.arch}`,
    `--components=${inputs.components.join(',')}`,
    `--include=${inputs.packages.join(',')}`,
    inputs.suite,
    target,
    inputs.mirror,
  ];
}

export async function bootstrapDebian(runner: HostRunner, opts: BootstrapDebianOptions): Promise<BootstrapResult> {
  const inputs = bootstrapInputs(opts);
  const cacheKey = bootstrapCacheKey(opts);
  const store = new BundleStore(opts.storeDir);
  const name = opts.name ?? `debian-${inputs.suite}`;
  await store.sweepTemp();
  if (!opts.force) {
    // Same inputs under the same name: the cached bundle is the answer (another name gets its own bundle).
    const existing = (await store.findByCacheKey(cacheKey)).find((m) => m.name === name);
    if (existing) return { ...(await store.resolve(existing)), reused: true, cacheKey };
  }
  const version = opts.version ?? `${opts.created.slice(0, 10).replace(/-/g, '')}-${cacheKey.slice(0, 8)}`;

  await mkdir(opts.workDir, { recursive: true });
  const scratch = await mkdtemp(join(resolvePath(opts.workDir), 'vmforge-bootstrap-'));
  const root = join(scratch, 'root');
  try {
    await runDebootstrap(runner, inputs, root, opts);
    opts.onProgress?.({ phase: 'clean' });
    await cleanTemplateRoot(root);
    const made = await createBundle(runner, {
      rootDir: root,
      name,
      version,
      compression: opts.compression ?? 'zstd',
      level: opts.level,
      storeDir: opts.storeDir,
      created: opts.created,
      source: { kind: 'debootstrap', cacheKey },
      signal: opts.signal,
      onProgress: (p) => opts.onProgress?.({ phase: 'bundle', ...p }),
    });
    return { ...made, reused: false, cacheKey };
  } finally {
    await removeScratch(runner, scratch);
  }
}

async function runDebootstrap(runner: HostRunner, inputs: BootstrapInputs, root: string, opts: BootstrapDebianOptions): Promise<void> {
  // debootstrap reports on stdout (I:/W:/E: lines); stderr is the noise of the tools it runs.
  const problems: string[] = [];
  const pipe = runner.pipeline({ stages: [{ argv: debootstrapArgv(inputs, root) }], stdout: 'pipe', signal: opts.signal });
  const lines = createInterface({ input: pipe.stdout as NodeJS.ReadableStream, crlfDelay: Infinity });
  const reading = (async () => {
    for await (const line of lines) {
      if (line.startsWith('I: ')) opts.onProgress?.({ phase: 'debootstrap', message: line.slice(3) });
      else if (/^[EW]: /.test(line)) problems.push(line);
    }
  })();
  try {
    await Promise.all([pipe.done, reading]);
  } catch (e) {
    if (!(e instanceof VmforgeError) || e.code !== 'COMMAND_FAILED') throw e;
    const log = await readFile(join(root, 'debootstrap', 'debootstrap.log'), 'utf8').catch(() => '');
    const logTail = log.trim().split('\n').slice(-15).join('\n');
    throw new VmforgeError('COMMAND_FAILED', [e.message, ...problems.slice(-10), logTail && `debootstrap.log:\n${logTail}`].filter(Boolean).join('\n'), {
      hint: `check that ${inputs.mirror} is reachable and carries ${inputs.suite}/${inputs.arch} and every package in: ${inputs.packages.join(' ')}`,
      cause: e,
    });
  }
}

/**
 * Per-VM identity and download caches out, so every VM made from the bundle starts unique and the bundle small.
 * SSH host keys are removed here, so provisioning must create them (ssh-keygen -A in the guest root, or at boot).
 */
export async function cleanTemplateRoot(root: string): Promise<void> {
  const guest = new GuestRoot(root);
  // Only files and links go: directories among the names below (apt's partial/ and the like) stay.
  const removeFile = async (p: string) => {
    if ((await guest.entryType(p)) !== 'directory') await guest.remove(p);
  };
  // Empty (not absent) machine-id: systemd fills it on first boot and treats that boot as the first.
  await guest.writeText('/etc/machine-id', '', 0o444);
  await removeFile('/var/lib/dbus/machine-id');
  for (const f of await guest.list('/var/cache/apt')) {
    if (f.endsWith('.bin')) await removeFile(`/var/cache/apt/${f}`);
  }
  for (const f of await guest.list('/var/cache/apt/archives')) {
    if (f.endsWith('.deb')) await removeFile(`/var/cache/apt/archives/${f}`);
  }
  for (const f of await guest.list('/var/lib/apt/lists')) {
    if (f !== 'partial' && f !== 'lock') await removeFile(`/var/lib/apt/lists/${f}`);
  }
  // debootstrap copies the build host's hostname and resolver into the target. Explicit 0644: not the host's mode.
  await guest.writeText('/etc/hostname', 'localhost\n', 0o644);
  await guest.writeText('/etc/resolv.conf', '', 0o644);
  for (const f of await guest.list('/etc/ssh')) {
    if (f.startsWith('ssh_host_')) await removeFile(`/etc/ssh/${f}`);
  }
  if (!(await guest.exists('/etc/fstab'))) {
    await guest.writeText('/etc/fstab', '# /etc/fstab: written when a VM is provisioned\n', 0o644);
  }
  await removeFile('/etc/udev/rules.d/70-persistent-net.rules');
}

/**
 * Removes the scratch directory, but never through a mount: debootstrap mounts /proc and /sys in the target and a
 * failed run can leave them (or a bind mount of the host's /dev) behind, which a recursive delete would walk into.
 */
async function removeScratch(runner: CommandRunner, scratch: string): Promise<void> {
  let mounts = await mountsUnder(scratch);
  for (const m of mounts.sort((a, b) => b.length - a.length)) {
    await runner.run(['umount', '--lazy', m]).catch(() => undefined);
  }
  mounts = await mountsUnder(scratch);
  if (mounts.length > 0) {
    throw new VmforgeError('INTERNAL', `cannot remove ${scratch}: still mounted: ${mounts.join(', ')}`, {
      hint: `unmount them (umount -R ${scratch}) and remove ${scratch}`,
    });
  }
  await rm(scratch, { recursive: true, force: true });
}

async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const mountPoint = field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (mountPoint === dir || mountPoint.startsWith(dir + sep)) out.push(mountPoint);
  }
  return out;
}

