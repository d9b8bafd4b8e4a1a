/**
 * The cold build use case: validate, gather host facts, plan (pure), then run the plan's steps through the
 * pipeline, each journaling its undo before its side effect.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rmdir } from 'node:fs/promises';
import { extractBundle } from '../bundles/extract.js';
import { guestAdapterFor, readGuestFiles, type GuestEditInput } from '../core/guest/adapter.js';
import { MAC_PREFIX, formatUuid, pickMac } from '../core/ipam/mac.js';
import { readDomainFacts } from '../core/domain-xml/facts.js';
import { mbrBytes } from '../core/disk/mbr.js';
import { swapPartition } from '../core/disk/layout.js';
import { specFromRequest, pickNic, type BuildRequest } from '../core/plan/build-request.js';
import { describePlan, planBuild, requireDiskFitsBundle, type BuildPlan, type BuildStepId } from '../core/plan/build-plan.js';
import { conflict, invalidInput, VmforgeError } from '../errors.js';
import { waitForPattern, tailFile } from '../exec/console-wait.js';
import { GuestRoot } from '../exec/guestfs/guest-root.js';
import { detectDomainType } from '../exec/host-facts.js';
import { requireTools } from '../exec/host-tools.js';
import { createSparseFile, writeAt } from '../exec/tools/disk-image.js';
import { installGrubBios } from '../exec/tools/grub.js';
import { attachPartitions, detachPartitions, type AttachedPartitions } from '../exec/tools/loop.js';
import { makeFilesystem, makeSwap } from '../exec/tools/mkfs.js';
import { mount, umount } from '../exec/tools/mount.js';
import { hashPassword } from '../exec/tools/passwd.js';
import type { EventSink } from '../pipeline/events.js';
import { parseFault } from '../pipeline/fault.js';
import { runPipeline, type Step, type StepTiming } from '../pipeline/pipeline.js';
import { resolveOrPull } from './bundle-source.js';
import type { AppContext } from './context.js';
import { recoverOrphans } from './recover.js';
import { undoRegistry } from './undo-executors.js';
import { loggedSink } from './log.js';

export interface BuildOptions {
  dryRun?: boolean;
  wait?: boolean;
  waitTimeoutSeconds?: number | undefined;
  rootPasswordFile?: string | undefined;
  /** Public key files whose keys go to root's authorized_keys. */
  sshKeyFiles?: string[] | undefined;
  emit?: EventSink;
  signal?: AbortSignal;
}

export type BuildResult =
  | { dryRun: true; name: string; planText: string; domainXml: string; plan: BuildPlan }
  | {
      dryRun: false;
      name: string;
      state: 'running' | 'defined';
      mac: string | null;
      ip: string | null;
      diskPath: string;
      consoleLog: string;
      bootSeconds?: number;
      loginLine?: string;
      timings: StepTiming[];
    };

/** Host programs the cold build runs; checked before anything is created. */
export const BUILD_TOOLS = ['virsh', 'losetup', 'mkswap', 'mount', 'umount', 'tar', 'grub-mkimage'] as const;

interface BuildState {
  attached?: AttachedPartitions;
  rootDevice?: string;
  bootSeconds?: number;
  loginLine?: string;
}

export async function buildVm(ctx: AppContext, req: BuildRequest, opts: BuildOptions = {}): Promise<BuildResult> {
  const signal = opts.signal ?? new AbortController().signal;
  const spec0 = specFromRequest(req, ctx.config);
  const emit = opts.dryRun ? (opts.emit ?? (() => {})) : loggedSink(ctx.log(), { kind: 'build', vm: spec0.name }, opts.emit ?? (() => {}));
  const waitTimeoutS = opts.waitTimeoutSeconds ?? ctx.config.boot.waitTimeoutSeconds;
  if (!Number.isInteger(waitTimeoutS) || waitTimeoutS < 1) throw invalidInput(`--wait-timeout '${opts.waitTimeoutSeconds}' must be a whole number of seconds`);
  if (opts.wait && !spec0.start) throw invalidInput('--wait needs the VM to start; drop --no-start');
  const rootPasswordHash = opts.rootPasswordFile ? await readPasswordHash(ctx, opts.rootPasswordFile, Boolean(opts.dryRun)) : undefined;
  const sshKeys = await readSshKeys(opts.sshKeyFiles ?? []);

  // Not in the local store: pulled from the configured repository first (a dry run only reads its manifest).
  const bundle = await resolveOrPull(ctx, spec0.bundle, emit, { dryRun: Boolean(opts.dryRun), signal });
  // Before the host checks: a disk too small for the bundle is the user's to fix whatever the host has.
  requireDiskFitsBundle(spec0, bundle.manifest.unpackedBytes, `${bundle.manifest.name}:${bundle.manifest.version}`);
  if (!opts.dryRun) {
    await requireTools([
      ...BUILD_TOOLS,
      ...(spec0.fs === 'xfs' ? ['mkfs.xfs'] : ['mkfs.ext4']),
      ...(ctx.config.storage.partitionAccess === 'partx' ? ['partx'] : []),
      ...(opts.rootPasswordFile ? ['openssl'] : []),
      ...(bundle.manifest.compression === 'zstd' ? ['zstd'] : bundle.manifest.compression === 'xz' ? ['xz'] : ['gzip']),
    ]);
    await ctx.hypervisor.ping();
    await recoverOrphans(ctx, emit);
  }
  if (await ctx.vms.get(spec0.name)) {
    throw conflict(`a VM named '${spec0.name}' exists already`, `pick another name, or remove it with 'vmforge vm destroy ${spec0.name}'`);
  }
  // A dry run still reads libvirt when it can, but does not need it.
  const libvirtNames = await ctx.hypervisor.listAllNames().catch((e: unknown) => {
    if (opts.dryRun) return [] as string[];
    throw e;
  });
  if (libvirtNames.includes(spec0.name)) {
    throw conflict(`libvirt already has a domain named '${spec0.name}' (not made by vmforge)`, `pick another name, or remove it with 'virsh undefine ${spec0.name}'`);
  }

  const bridges = await hostBridges();
  const nic = pickNic(spec0.nicRequest, { bridges, activeNetworks: await activeNetworks(ctx).catch(() => []) });
  if (nic.type === 'bridge' && !bridges.includes(nic.bridge)) {
    throw invalidInput(`bridge '${nic.bridge}' does not exist on this host`, `create it (ip link add ${nic.bridge} type bridge) or pick another with --bridge / --net`);
  }
  const domainType = ctx.config.libvirt.domainType === 'auto' ? await detectDomainType() : ctx.config.libvirt.domainType;
  const takenMacs = [...(await ctx.vms.macsInUse()), ...(await libvirtMacs(ctx, libvirtNames))];
  const { nicRequest: _ignored, ...spec } = { ...spec0, nic };
  const plan = planBuild(spec, Boolean(opts.wait), {
    domainType,
    bundleRef: `${bundle.manifest.name}:${bundle.manifest.version}`,
    manifest: bundle.manifest,
    storageDir: ctx.config.storage.dir,
    consoleDir: ctx.config.consoleDir,
    runDir: ctx.config.runDir,
    partitionAccess: ctx.config.storage.partitionAccess,
    nic,
    ids: {
      uuid: formatUuid(randomBytes(16)),
      mac: pickMac(MAC_PREFIX[domainType], takenMacs, (n) => randomBytes(n)),
      diskSignature: randomBytes(4).readUInt32LE(0),
      rootFsUuid: formatUuid(randomBytes(16)),
      swapFsUuid: formatUuid(randomBytes(16)),
    },
  });
  if (opts.dryRun) return { dryRun: true, name: spec.name, planText: describePlan(plan), domainXml: plan.domainXml, plan };

  await mkdir(ctx.config.storage.dir, { recursive: true, mode: 0o755 });
  await mkdir(ctx.config.consoleDir, { recursive: true, mode: 0o755 });
  await mkdir(`${ctx.config.runDir}/mnt`, { recursive: true, mode: 0o700 });

  const impl = stepImplementations(ctx, plan, bundle.blobPath, { rootPasswordHash, sshKeys }, waitTimeoutS);
  const steps: Step<BuildState>[] = plan.steps.map((s) => ({ id: s.id, title: s.title, run: impl[s.id] }));
  const jobId = await ctx.jobs.start('build', spec.name);
  const state: BuildState = {};
  const timings = await runPipeline({
    steps,
    state,
    jobs: ctx.jobs,
    jobId,
    undo: undoRegistry(ctx),
    emit,
    signal,
    fault: parseFault(process.env.VMFORGE_FAULT),
  });
  const row = await ctx.vms.get(spec.name);
  return {
    dryRun: false,
    name: spec.name,
    state: spec.start ? 'running' : 'defined',
    mac: plan.domain.interfaces.length ? plan.mac : null,
    ip: spec.net.mode === 'static' ? spec.net.address : null,
    diskPath: plan.paths.disk,
    consoleLog: plan.paths.consoleLog,
    ...(row?.boot_seconds != null ? { bootSeconds: row.boot_seconds } : {}),
    ...(state.loginLine ? { loginLine: state.loginLine } : {}),
    timings,
  };
}

function stepImplementations(
  ctx: AppContext,
  plan: BuildPlan,
  blobPath: string,
  { rootPasswordHash, sshKeys }: { rootPasswordHash: string | undefined; sshKeys: string[] },
  waitTimeoutS: number,
): Record<BuildStepId, Step<BuildState>['run']> {
  const { spec, paths } = plan;
  const runner = ctx.runner;
  return {
    'inventory.reserve': async (c) => {
      const undo = await c.willUndo({ kind: 'inventory.forget', name: spec.name });
      const now = new Date().toISOString();
      try {
        await ctx.vms.insert({
          name: spec.name,
          uuid: plan.uuid,
          status: 'building',
          spec: JSON.stringify(spec),
          bundle_ref: plan.bundleRef,
          bundle_sha256: plan.manifest.sha256,
          disk_path: paths.disk,
          mac: plan.domain.interfaces.length ? plan.mac : null,
          ip: spec.net.mode === 'static' ? spec.net.address : null,
          domain_name: spec.name,
          console_log: paths.consoleLog,
          boot_seconds: null,
          created_at: now,
          updated_at: now,
        });
      } catch (e) {
        // Another process reserved the name between our check and now: the database's key decides.
        if (/UNIQUE constraint failed: vms\.name/.test((e as Error).message)) {
          await undo.cancel(); // the row is the other process's: not ours to forget
          throw conflict(`a VM named '${spec.name}' is being built by another process`);
        }
        throw e;
      }
    },
    'disk.create': async (c) => {
      const undo = await c.willUndo({ kind: 'file.remove', path: paths.disk });
      // Exclusive create: a file already at this path is someone else's and must survive our undo.
      await createSparseFile(paths.disk, spec.diskBytes).catch(async (e: unknown) => {
        if (e instanceof VmforgeError && e.code === 'CONFLICT') await undo.cancel();
        throw e;
      });
      await writeAt(paths.disk, 0, mbrBytes(plan.layout, plan.diskSignature));
    },
    'disk.attach': async (c, s) => {
      await c.willUndo({ kind: 'loop.detach-backing', backingFile: paths.disk });
      s.attached = await attachPartitions(runner, { file: paths.disk, layout: plan.layout, strategy: plan.partitionAccess });
      s.rootDevice = deviceFor(s.attached, 'root');
    },
    'disk.format': async (c, s) => {
      const rootDev = s.rootDevice as string;
      const swap = swapPartition(plan.layout);
      const jobs: Promise<unknown>[] = [makeFilesystem(runner, { device: rootDev, fs: spec.fs, uuid: plan.rootFsUuid, signal: c.signal })];
      if (swap && plan.swapFsUuid && s.attached) {
        jobs.push(makeSwap(runner, { device: deviceFor(s.attached, 'swap'), uuid: plan.swapFsUuid, label: 'swap' }));
      }
      await Promise.all(jobs);
    },
    'root.mount': async (c, s) => {
      await c.willUndo({ kind: 'dir.remove', path: paths.mountDir });
      await mkdir(paths.mountDir, { recursive: true, mode: 0o700 });
      await c.willUndo({ kind: 'mount.umount', target: paths.mountDir });
      await mount(runner, { device: s.rootDevice as string, target: paths.mountDir, fsType: spec.fs });
    },
    'bundle.extract': async (c) => {
      const total = plan.manifest.compressedBytes;
      await extractBundle(runner, {
        blobPath,
        compression: plan.manifest.compression,
        expectedSha256: plan.manifest.sha256,
        targetDir: paths.mountDir,
        signal: c.signal,
        onProgress: (p) => c.progress(p.compressedBytesRead, total, 'bytes'),
      });
    },
    'guest.configure': async () => {
      const guest = new GuestRoot(paths.mountDir);
      const adapter = guestAdapterFor(plan.guestFamily);
      const input: GuestEditInput = {
        hostname: spec.name,
        fstabText: plan.fstab,
        net: spec.net,
        iface: 'eth0',
        rootFsUuid: plan.rootFsUuid,
        connectionUuid: plan.uuid,
        selinux: spec.selinux,
        ...(spec.timezone ? { timezone: spec.timezone } : {}),
        ...(sshKeys.length ? { sshAuthorizedKeys: sshKeys } : {}),
        ...(rootPasswordHash ? { rootPasswordHash } : {}),
      };
      const current = await readGuestFiles(adapter, input, (needs) => guest.snapshot(needs));
      await guest.applyEdits(adapter.edits(input, current));
    },
    'boot.install': async (c) => {
      await installGrubBios(runner, {
        diskPath: paths.disk,
        rootMountDir: paths.mountDir,
        layout: plan.layout,
        fs: spec.fs,
        grubCfgText: plan.grubCfg,
        tmpDir: ctx.config.runDir,
        signal: c.signal,
      });
    },
    'root.release': async (_c, s) => {
      await umount(runner, paths.mountDir);
      await rmdir(paths.mountDir);
      if (s.attached) await detachPartitions(runner, s.attached.undo);
      s.attached = undefined;
    },
    'domain.define': async (c) => {
      await c.willUndo({ kind: 'domain.remove', name: spec.name, uri: ctx.config.libvirt.uri, uuid: plan.uuid });
      // `virsh define` would silently replace a same-named domain defined since our first check.
      if (await ctx.hypervisor.exists(spec.name)) throw conflict(`libvirt got a domain named '${spec.name}' while this build ran`);
      await ctx.hypervisor.defineXml(plan.domainXml);
      await ctx.hypervisor.setAutostart(spec.name, spec.autostart);
    },
    'domain.start': async (c) => {
      await c.willUndo({ kind: 'file.remove', path: paths.consoleLog });
      await ctx.hypervisor.start(spec.name);
    },
    'boot.wait': async (c, s) => {
      const res = await waitForPattern(paths.consoleLog, new RegExp(`^${spec.name} login:`), {
        timeoutMs: waitTimeoutS * 1000,
        signal: c.signal,
        onFail: () => tailFile(paths.consoleLog, 1500),
      });
      s.bootSeconds = res.elapsedMs / 1000;
      s.loginLine = res.line;
      c.info(`console: ${res.line}  (${s.bootSeconds.toFixed(1)} s after start)`);
    },
    'inventory.commit': async (_c, s) => {
      await ctx.vms.update(spec.name, { status: spec.start ? 'running' : 'defined', boot_seconds: s.bootSeconds ?? null });
    },
  };
}

function deviceFor(a: AttachedPartitions, role: 'root' | 'swap'): string {
  const d = a.devices.find((x) => x.role === role);
  if (!d) throw new VmforgeError('INTERNAL', `no ${role} partition device after attaching`);
  return d.device;
}

async function readPasswordHash(ctx: AppContext, file: string, dryRun: boolean): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw invalidInput(`cannot read --root-password-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const pw = text.split(/\r?\n/)[0] ?? '';
  if (!pw) throw invalidInput(`--root-password-file ${file} is empty`, 'put the password on its first line');
  return dryRun ? '(hashed at build time)' : hashPassword(ctx.runner, pw);
}

/** OpenSSH public key lines from --ssh-key files; anything else (a private key!) is refused. */
async function readSshKeys(files: string[]): Promise<string[]> {
  const keys: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw invalidInput(`cannot read --ssh-key ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (text.includes('PRIVATE KEY')) throw invalidInput(`--ssh-key ${file} is a private key`, 'give the public key file (the .pub one)');
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const bad = lines.find((l) => !/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp\d+|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( .*)?$/.test(l));
    if (bad !== undefined || !lines.length) {
      throw invalidInput(`--ssh-key ${file} does not hold OpenSSH public keys`, "give a file like ~/.ssh/id_ed25519.pub ('ssh-ed25519 AAAA... comment')");
    }
    keys.push(...lines);
  }
  return keys;
}

async function hostBridges(): Promise<string[]> {
  const names = await readdir('/sys/class/net').catch(() => [] as string[]);
  const out: string[] = [];
  for (const n of names) {
    if (await readdir(`/sys/class/net/${n}/bridge`).then(() => true, () => false)) out.push(n);
  }
  return out;
}

async function activeNetworks(ctx: AppContext): Promise<string[]> {
  const { stdout } = await ctx.runner.run(['virsh', '-q', '-c', ctx.config.libvirt.uri, 'net-list', '--name']);
  return stdout.split('\n').map((s) => s.trim()).filter(Boolean);
}

async function libvirtMacs(ctx: AppContext, names: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const n of names) {
    const xml = await ctx.hypervisor.dumpXml(n, { inactive: true }).catch(() => null);
    if (xml) out.push(...readDomainFacts(xml).macs);
  }
  return out;
}

