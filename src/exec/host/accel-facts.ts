/**
 * Reads the host facts the accelerator decision (src/core/host/accelerator.ts) needs. Every path is injectable
 * so tests can describe any host; a file that cannot be read is an unknown fact (null), never a failure.
 */
import { readFile, stat } from 'node:fs/promises';
import { kvmBlocker, type AccelFacts, type DomcapsFacts, type KvmDeviceFacts } from '../../core/host/accelerator.js';
import { parseCpuFlags, parseGroup, parseKvmModules, parsePasswd, parseQemuConf, resolveQemuUser } from '../../core/host/host-files.js';
import type { CommandRunner } from '../runner.js';
import { readCachedProbe, type ProbeCacheKey } from './accel-cache.js';

export interface AccelFactPaths {
  kvmDevice: string;
  cpuinfo: string;
  modules: string;
  qemuConf: string;
  passwd: string;
  group: string;
  bootId: string;
}

export const DEFAULT_ACCEL_PATHS: AccelFactPaths = {
  kvmDevice: '/dev/kvm',
  cpuinfo: '/proc/cpuinfo',
  modules: '/proc/modules',
  qemuConf: '/etc/libvirt/qemu.conf',
  passwd: '/etc/passwd',
  group: '/etc/group',
  bootId: '/proc/sys/kernel/random/boot_id',
};

/** Where libvirt finds QEMU on Debian; used for the cache key when domcapabilities was not asked. */
const DEFAULT_EMULATOR = '/usr/bin/qemu-system-x86_64';

export interface ReadAccelFactsOptions {
  uri: string;
  /** Where the probe cache lives; without it no cached probe is read. */
  stateDir?: string;
  paths?: Partial<AccelFactPaths>;
  /**
   * 'if-needed' (default): ask libvirt only when the cheap facts allow KVM. On a host with a half-usable
   * /dev/kvm libvirt re-probes QEMU on such calls, which can take most of a minute.
   */
  domcaps?: 'if-needed' | 'always' | 'never';
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface AccelFactsRead {
  facts: AccelFacts;
  /** What a probe result is cached under on this host now (the app writes the probe's result with it). */
  cacheKey: ProbeCacheKey;
}

export async function readAccelFacts(runner: CommandRunner, opts: ReadAccelFactsOptions): Promise<AccelFactsRead> {
  const paths = { ...DEFAULT_ACCEL_PATHS, ...opts.paths };
  const [kvmDevice, cpuinfo, modules, qemuConf, passwd, group, bootId] = await Promise.all([
    readDevice(paths.kvmDevice),
    readText(paths.cpuinfo),
    readText(paths.modules),
    readText(paths.qemuConf),
    readText(paths.passwd),
    readText(paths.group),
    readText(paths.bootId),
  ]);
  const cheap: AccelFacts = {
    kvmDevice: nameOwner(kvmDevice, passwd, group),
    cpuFlags: cpuinfo === null ? null : parseCpuFlags(cpuinfo),
    kvmModules: modules === null ? null : parseKvmModules(modules),
    qemuUser: resolveQemuUser(parseQemuConf(qemuConf ?? ''), parsePasswd(passwd ?? ''), parseGroup(group ?? '')),
    domcaps: null,
    cachedProbe: null,
  };
  const mode = opts.domcaps ?? 'if-needed';
  const ask = mode === 'always' || (mode === 'if-needed' && kvmBlocker(cheap) === null);
  const domcaps = ask ? await readDomcaps(runner, opts) : null;
  const emulatorPath = domcaps?.emulator ?? DEFAULT_EMULATOR;
  const emulator = await stat(emulatorPath).then(
    (s) => `${emulatorPath}:${s.mtimeMs}:${s.size}`,
    () => `${emulatorPath}:absent`,
  );
  const cacheKey: ProbeCacheKey = {
    uri: opts.uri,
    bootId: (bootId ?? 'unknown').trim(),
    device: kvmDevice.present ? `${kvmDevice.mode.toString(8)}:${kvmDevice.uid}:${kvmDevice.gid}:${kvmDevice.rdev}` : 'absent',
    emulator,
  };
  // Without a boot id the cache could outlive a reboot that changed the host: not used then.
  const cachedProbe = opts.stateDir && bootId !== null ? await readCachedProbe(opts.stateDir, cacheKey) : null;
  return { facts: { ...cheap, domcaps, cachedProbe }, cacheKey };
}

async function readDomcaps(runner: CommandRunner, opts: ReadAccelFactsOptions): Promise<DomcapsFacts> {
  try {
    const { stdout } = await runner.run(['virsh', '-c', opts.uri, 'domcapabilities', '--virttype', 'kvm'], {
      timeoutMs: opts.timeoutMs ?? 90_000,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const emulator = /<path>([^<]+)<\/path>/.exec(stdout)?.[1];
    const kvm = /<domain>kvm<\/domain>/.test(stdout);
    return { kvm, ...(emulator ? { emulator } : {}), ...(kvm ? {} : { error: 'its answer names no kvm domain' }) };
  } catch (e) {
    if ((e as { code?: string }).code === 'CANCELLED') throw e;
    return { kvm: false, error: (e as Error).message.replace(/^.*? exited with \d+: /s, '') };
  }
}

async function readDevice(path: string): Promise<KvmDeviceFacts & { rdev: number }> {
  try {
    const s = await stat(path);
    return { path, present: true, charDevice: s.isCharacterDevice(), mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, rdev: s.rdev };
  } catch {
    return { path, present: false, charDevice: false, mode: 0, uid: 0, gid: 0, rdev: 0 };
  }
}

function nameOwner(dev: KvmDeviceFacts & { rdev: number }, passwd: string | null, group: string | null): KvmDeviceFacts {
  const { rdev: _rdev, ...rest } = dev;
  if (!dev.present) return rest;
  const owner = parsePasswd(passwd ?? '').find((p) => p.uid === dev.uid)?.name;
  const grp = parseGroup(group ?? '').find((g) => g.gid === dev.gid)?.name;
  return { ...rest, ...(owner ? { owner } : {}), ...(grp ? { group: grp } : {}) };
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}
