/**
 * The accelerator probe: a throwaway transient domain (`virsh create`, never defined) boots the probe boot
 * sector and must print its marker on the serial console in time. The domain and its private directory are
 * removed in `finally`, on failure, timeout and abort alike; a probe whose process was killed leaves a domain
 * and directory named after its pid, which the next probe (or `vmforge recover`) removes (sweepStaleProbes).
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { buildCpuMode, type ProbeResult } from '../../core/host/accelerator.js';
import { markerBootSector, probeMarker, silentBootSector } from '../../core/host/probe-bootsector.js';
import { PROBE_PREFIX, probeDomainXml, probeName, probeOwnerPid } from '../../core/host/probe-domain.js';
import { formatUuid } from '../../core/ipam/mac.js';
import { VmforgeError } from '../../errors.js';
import { waitForPattern } from '../console-wait.js';
import { pidAlive } from '../pid.js';
import type { CommandRunner } from '../runner.js';

export const DEFAULT_PROBE_TIMEOUT_MS = 5_000;

export interface AccelProbeOptions {
  uri: string;
  /** Default 'kvm'; tests run the same probe with 'qemu' on hosts without KVM. */
  domainType?: 'kvm' | 'qemu';
  /** How long the marker may take once the domain runs; default 5 s (TCG prints it in well under one). */
  timeoutMs?: number;
  /** Limit for `virsh create` itself (QEMU start-up); default 60 s. */
  createTimeoutMs?: number;
  /** Parent of the probe's private directory; QEMU's user must be able to traverse it. Default os.tmpdir(). */
  tmpDir?: string;
  signal?: AbortSignal;
  /** 'silent': a boot sector that never prints (tests of the timeout path). */
  bootSector?: 'marker' | 'silent';
  /** Called with the domain name once it runs (tests). */
  onRunning?: (name: string) => void;
}

const UNREACHABLE_RE = /failed to connect to the hypervisor/i;

export async function runAccelProbe(runner: CommandRunner, opts: AccelProbeOptions): Promise<ProbeResult> {
  const domainType = opts.domainType ?? 'kvm';
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const parent = opts.tmpDir ?? tmpdir();
  const cpuMode = buildCpuMode(domainType);
  await requireSearchable(parent);
  await sweepStaleProbes(runner, { uri: opts.uri, tmpDir: parent });

  const suffix = randomBytes(6).toString('hex');
  const name = probeName(process.pid, suffix);
  // mkdtemp adds six characters: the directory name still parses as this pid's probe.
  const dir = await mkdtemp(join(parent, `${name}x`));
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let created = false;
  try {
    // QEMU runs as libvirt's user: it must reach the disk (libvirt chowns the file itself) through this directory.
    await chmod(dir, 0o711);
    const disk = join(dir, 'boot.img');
    const log = join(dir, 'serial.log');
    const xmlFile = join(dir, 'domain.xml');
    await writeFile(disk, opts.bootSector === 'silent' ? silentBootSector() : markerBootSector(suffix), { mode: 0o644 });
    // SeaBIOS does not boot a disk of one sector; a sparse MiB costs nothing.
    await truncate(disk, 1024 * 1024);
    await writeFile(xmlFile, probeDomainXml({ name, uuid: formatUuid(randomBytes(16)), domainType, diskPath: disk, serialLogPath: log, ownerPid: process.pid }), { mode: 0o644 });
    const res = await runner.run(['virsh', '--quiet', '-c', opts.uri, 'create', '--file', xmlFile], {
      okCodes: [1],
      timeoutMs: opts.createTimeoutMs ?? 60_000,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (res.exitCode !== 0) {
      const why = virshError(res.stderr);
      if (UNREACHABLE_RE.test(res.stderr)) {
        throw new VmforgeError('HYPERVISOR_UNREACHABLE', `cannot connect to libvirt at ${opts.uri} for the accelerator probe: ${why}`, {
          hint: 'start libvirtd: `systemctl start libvirtd`, or on a host without systemd `virtlogd -d && libvirtd -d`',
        });
      }
      return { domainType, cpuMode, outcome: 'failed', ms: elapsed(), detail: why };
    }
    created = true;
    const createMs = elapsed();
    opts.onRunning?.(name);
    const marker = new RegExp(probeMarker(suffix));
    try {
      await waitForPattern(log, marker, { timeoutMs, pollMs: 20, ...(opts.signal ? { signal: opts.signal } : {}) });
      return { domainType, cpuMode, outcome: 'passed', ms: elapsed(), createMs, detail: 'marker seen on the serial console' };
    } catch (e) {
      if (!(e instanceof VmforgeError && e.code === 'TIMEOUT')) throw e;
      const printed = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').pop()?.slice(0, 200);
      return { domainType, cpuMode, outcome: 'timeout', ms: elapsed(), createMs, detail: `no marker on the serial console within ${timeoutMs} ms${printed ? `; last output: ${printed}` : ''}` };
    }
  } finally {
    // Also after `virsh create` was killed by a timeout or abort: the domain may have come up all the same.
    try {
      await destroyProbe(runner, opts.uri, name, created);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/**
 * Removes probe domains and directories whose owner process is gone (a probe killed before its `finally`).
 * Returns the domain names it destroyed. Others' live probes are left alone.
 */
export async function sweepStaleProbes(runner: CommandRunner, opts: { uri: string; tmpDir?: string }): Promise<string[]> {
  const stale = (n: string) => {
    const pid = probeOwnerPid(n);
    return pid !== null && pid !== process.pid && !pidAlive(pid);
  };
  const res = await runner.run(['virsh', '--quiet', '-c', opts.uri, 'list', '--name'], { timeoutMs: 60_000 });
  const names = res.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((n) => n.startsWith(PROBE_PREFIX) && stale(n));
  for (const n of names) await destroyProbe(runner, opts.uri, n, true);
  const parent = opts.tmpDir ?? tmpdir();
  const dirs = await readdir(parent).catch(() => [] as string[]);
  for (const d of dirs) {
    // The directory is the domain's name plus mkdtemp's suffix.
    const m = /^(vmforge-probe-\d+-[0-9a-f]+)x[A-Za-z0-9]{6}$/.exec(d);
    if (m?.[1] && stale(m[1])) await rm(join(parent, d), { recursive: true, force: true });
  }
  return names;
}

/**
 * QEMU runs as libvirt's user: a parent it cannot traverse (a 0700 TMPDIR) would make every probe fail with
 * "Permission denied", which must not pass for "KVM does not work".
 */
async function requireSearchable(path: string): Promise<void> {
  for (let p = resolve(path); ; p = dirname(p)) {
    const mode = await stat(p).then((s) => s.mode, () => 0);
    if ((mode & 0o001) === 0) {
      throw new VmforgeError('INVALID_INPUT', `the accelerator probe's directory ${p} is not searchable by others, so libvirt's QEMU user cannot reach the probe disk`, {
        hint: `chmod o+x ${p}, or point TMPDIR at a directory like /tmp`,
      });
    }
    if (p === dirname(p)) return;
  }
}

async function destroyProbe(runner: CommandRunner, uri: string, name: string, expectRunning: boolean): Promise<void> {
  // A transient domain is gone once destroyed; "not found" means it never came up or is gone already.
  const res = await runner.run(['virsh', '--quiet', '-c', uri, 'destroy', '--domain', name], { okCodes: [1], timeoutMs: 60_000 });
  if (res.exitCode !== 0 && expectRunning && !/failed to get domain|Domain not found|not running/i.test(res.stderr)) {
    throw new VmforgeError('COMMAND_FAILED', `could not remove the accelerator probe domain ${name}: ${virshError(res.stderr)}`, {
      hint: `remove it with 'virsh -c ${uri} destroy ${name}'`,
    });
  }
}

/** libvirt's own message, without virsh's "error: Failed to create domain from ..." preamble. */
function virshError(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^error:\s*/, '').trim())
    .filter((l) => l && !/^Failed to create domain from/.test(l));
  return lines.join('; ') || 'virsh create failed with no message';
}
