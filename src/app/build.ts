/**
 * The cold build use case: validate, gather host facts, plan (pure), then run the plan's steps through the
 * pipeline, each journaling its undo before its side effect.
 */
import { randomBytes } from 'node:crypto';
import { access, mkdir, readFile, rmdir } from 'node:fs/promises';
import { hostBridges } from '../exec/host/bridges.js';
import { OVMF_CODE_PATH, OVMF_VARS_TEMPLATE_PATH } from '../core/domain-xml/defaults.js';
import { extractBundle } from '../bundles/extract.js';
import { guestAdapterFor, readGuestFiles, type GuestEditInput } from '../core/guest/adapter.js';
import { MAC_PREFIX, formatUuid, pickMac, validateMac } from '../core/ipam/mac.js';
import { compilePool, checkRequestedIp, lowestFree, poolExhausted } from '../core/ipam/pool.js';
import { formatDhcp } from '../core/ipam/network.js';
import { dnsRecordsFor, planRegistration, describeConflict, type DnsRecord, type DnsSettings } from '../core/dns/index.js';
import { dnsRegistrarFor } from '../exec/dns/from-config.js';
import type { DnsRegistrar } from '../exec/dns/registrar.js';
import { dhcpReservationsFor } from './dhcp.js';
import type { GuestNetConfig } from '../core/model/spec.js';
import type { Lease, Network } from '../store/networks.js';
import { readDomainFacts } from '../core/domain-xml/facts.js';
import { mbrBytes } from '../core/disk/mbr.js';
import { swapPartition } from '../core/disk/layout.js';
import { specFromRequest, pickNic, type BuildRequest } from '../core/plan/build-request.js';
import { describePlan, planBuild, requireDiskFitsBundle, type BuildFacts, type BuildPlan, type BuildStepId } from '../core/plan/build-plan.js';
import { conflict, invalidInput, VmforgeError } from '../errors.js';
import { waitForPattern, tailFile } from '../exec/console-wait.js';
import { GuestRoot } from '../exec/guestfs/guest-root.js';
import { requireTools } from '../exec/host-tools.js';
import { createSparseFile, writeAt } from '../exec/tools/disk-image.js';
import { installGrubBios } from '../exec/tools/grub.js';
import { attachPartitions, detachPartitions, type AttachedPartitions } from '../exec/tools/loop.js';
import { makeFilesystem, makeSwap } from '../exec/tools/mkfs.js';
import { mount, privateMountRoot, umount } from '../exec/tools/mount.js';
import { hashPassword } from '../exec/tools/passwd.js';
import type { EventSink } from '../pipeline/events.js';
import { parseFault } from '../pipeline/fault.js';
import { runPipeline, type Step, type StepTiming } from '../pipeline/pipeline.js';
import { resolveOrPull } from './bundle-source.js';
import type { AppContext } from './context.js';
import { withHostLock } from './mutating.js';
import { acceleratorVerdict, describeVerdict } from './accelerator.js';
import { acceleratorNote } from '../core/host/accelerator.js';
import { undoRegistry } from './undo-executors.js';
import { loggedSink } from './log.js';
import { chooseCloneStrategy, parseCloneSetting } from './clone-choice.js';
import { warmStepImplementations, type WarmState } from './clone-steps.js';
import { goldenKey } from '../core/plan/golden-plan.js';
import { copyOutOfGuest } from './kernel-files.js';
import { grubCoreCacheDir } from './grub-core-cache.js';
import { storageStepImplementations } from './storage-steps.js';
import { parseStorageSpec } from '../core/storage/lvm-plan.js';
import { readLvmFacts } from '../exec/storage/lvm-facts.js';
import type { StoredHostKey } from '../core/ssh/host-keys.js';
import { applyGuestEditsWithHostKeys, refillHostKeyPool, makeCloudInitSeed, startVmHostKeys, type IdentityState } from './identity-steps.js';
import type { PendingHostKeys } from '../exec/tools/ssh-host-keys.js';

export interface BuildOptions {
  dryRun?: boolean;
  wait?: boolean;
  waitTimeoutSeconds?: number | undefined;
  rootPasswordFile?: string | undefined;
  /** Public key files whose keys go to root's authorized_keys. */
  sshKeyFiles?: string[] | undefined;
  /** Public key lines (OpenSSH format) for root's authorized_keys, given as text (the API's). */
  sshKeys?: string[] | undefined;
  /** A job row the caller made already (the API answers with its id before the build starts); default: a new one. */
  jobId?: number;
  emit?: EventSink;
  signal?: AbortSignal;
  /** --clone: auto | qcow2 | reflink | off (default: config storage.clone). */
  clone?: string | undefined;
  /** The caller took the host lock and ran crash recovery already (build-many: once for all its builds). */
  recovered?: boolean;
  /**
   * libvirt's domain names and active networks, asked for by the caller after that recovery (build-many: one
   * virsh start for all its builds instead of one each). Names this batch defines meanwhile are its own,
   * distinct and checked.
   */
  libvirtLists?: Promise<{ names: string[]; networks: string[] }>;
}

export type BuildResult =
  | { dryRun: true; name: string; planText: string; domainXml: string; plan: BuildPlan }
  | {
      dryRun: false;
      name: string;
      state: 'running' | 'defined';
      mac: string | null;
      ip: string | null;
      network?: string;
      /** DNS records this build added. */
      dns?: string[];
      diskPath: string;
      consoleLog: string;
      bootSeconds?: number;
      loginLine?: string;
      /** Public halves and fingerprints of the SSH host keys put in the guest. */
      sshHostKeys?: StoredHostKey[];
      cloudInitSeed?: string;
      timings: StepTiming[];
    };

/** Host programs the cold build runs; checked before anything is created. */
export const BUILD_TOOLS = ['virsh', 'losetup', 'mkswap', 'mount', 'umount', 'tar', 'grub-mkimage'] as const;

interface BuildState extends WarmState, IdentityState {
  lease?: Lease;
  dnsAdded?: DnsRecord[];
  attached?: AttachedPartitions;
  rootDevice?: string;
  bootSeconds?: number;
  loginLine?: string;
}

export async function buildVm(ctx: AppContext, req: BuildRequest, opts: BuildOptions = {}): Promise<BuildResult> {
  const spec0 = specFromRequest(req, ctx.config);
  const waitTimeoutS = opts.waitTimeoutSeconds ?? ctx.config.boot.waitTimeoutSeconds;
  if (!Number.isInteger(waitTimeoutS) || waitTimeoutS < 1) throw invalidInput(`--wait-timeout '${opts.waitTimeoutSeconds}' must be a whole number of seconds`);
  if (opts.wait && !spec0.start) throw invalidInput('--wait needs the VM to start; drop --no-start');
  // --wait reads the serial log virtlogd writes for QEMU; xenconsoled keeps Xen's console elsewhere.
  if (opts.wait && spec0.hypervisor === 'xen') throw invalidInput('--wait is not supported for Xen guests yet', "drop --wait and watch the console with 'virsh console NAME'");
  // Made on the thread pool from here on, while the bundle, the host checks and the disk are done (see
  // startVmHostKeys); whatever guest.configure did not take is wiped when the build ends.
  const hostKeys = opts.dryRun ? undefined : startVmHostKeys(ctx, spec0);
  try {
    return await buildChecked(ctx, spec0, waitTimeoutS, hostKeys, opts);
  } finally {
    hostKeys?.discard();
    if (hostKeys) await refillHostKeyPool(ctx);
  }
}

/** buildVm after its checks of the request alone. */
async function buildChecked(
  ctx: AppContext,
  spec0: ReturnType<typeof specFromRequest>,
  waitTimeoutS: number,
  hostKeys: PendingHostKeys | undefined,
  opts: BuildOptions,
): Promise<BuildResult> {
  const signal = opts.signal ?? new AbortController().signal;
  const emit = opts.dryRun ? (opts.emit ?? (() => {})) : loggedSink(ctx.log(), { kind: 'build', vm: spec0.name }, opts.emit ?? (() => {}));
  // virsh takes ~0.1 s: asked now, answered while the bundle and the host are checked. Awaited (and so thrown)
  // where the answer is needed; the handler only keeps an early failure from counting as unhandled.
  // The default NIC (auto) also looks at libvirt's active networks: asked in the same virsh start.
  const wantNetworks = spec0.network === undefined && spec0.nicRequest === 'auto';
  const earlyLists = opts.libvirtLists ?? (wantNetworks ? ctx.hypervisor.listAllNamesAndNetworks() : undefined);
  const earlyLibvirtNames = earlyLists ? earlyLists.then((l) => l.names) : ctx.hypervisor.listAllNames();
  earlyLibvirtNames.catch(() => {});
  const rootPasswordHash = opts.rootPasswordFile ? await readPasswordHash(ctx, opts.rootPasswordFile, Boolean(opts.dryRun)) : undefined;
  const sshKeys = [...(await readSshKeys(opts.sshKeyFiles ?? [])), ...publicKeyLines(opts.sshKeys ?? [], 'sshKeys')];
  const cloneSetting = parseCloneSetting(opts.clone ?? ctx.config.storage.clone);

  // Not in the local store: pulled from the configured repository first (a dry run only reads its manifest).
  const bundle = await resolveOrPull(ctx, spec0.bundle, emit, { dryRun: Boolean(opts.dryRun), signal });
  // Before the host checks: a disk too small for the bundle is the user's to fix whatever the host has.
  requireDiskFitsBundle(spec0, bundle.manifest.unpackedBytes, `${bundle.manifest.name}:${bundle.manifest.version}`);
  const storageSpec = parseStorageSpec(spec0.storage ?? 'file');
  let recoveredNow = false;
  // Before anything exists: no LVM tools or no such VG fails here (a dry run notes it and goes on).
  const lvmFacts = storageSpec.backend === 'lvm' ? await readLvmFacts(ctx.runner, storageSpec, { dryRun: Boolean(opts.dryRun) }) : undefined;
  if (!opts.dryRun) {
    await requireTools([
      ...BUILD_TOOLS.filter((t) => t !== 'grub-mkimage' || needsGrubInstall(spec0)),
      ...(spec0.fs === 'xfs' ? ['mkfs.xfs'] : ['mkfs.ext4']),
      ...(ctx.config.storage.partitionAccess === 'partx' ? ['partx'] : []),
      ...(opts.rootPasswordFile ? ['openssl'] : []),
      ...(spec0.cloudInit ? ['xorriso'] : []),
      ...(bundle.manifest.compression === 'zstd' ? ['zstd'] : bundle.manifest.compression === 'xz' ? ['xz'] : ['gzip']),
    ]);
    if (spec0.firmware === 'uefi') await requireOvmf();
    // The host lock covers crash recovery only: builds then run side by side, arbitrated by the database
    // (unique names, leases, MACs) and by exclusive file creates.
    if (!opts.recovered) {
      await withHostLock(ctx, { emit, signal, onWait: (h) => emit({ type: 'step.info', step: 'lock', message: `waiting for pid ${h.pid} (${h.command}) to release the host lock` }) }, async (recovered) => {
        recoveredNow = recovered.length > 0;
      });
    }
  }
  if (await ctx.vms.get(spec0.name)) {
    throw conflict(`a VM named '${spec0.name}' exists already`, `pick another name, or remove it with 'vmforge vm destroy ${spec0.name}'`);
  }
  // A dry run still reads libvirt when it can, but does not need it. A build needs it: this is also the check that
  // libvirt answers (HYPERVISOR_UNREACHABLE), one virsh call instead of a separate ping.
  // Recovery may just have undefined a half-built domain that the early answer still lists: ask again then.
  const libvirtNames = await (recoveredNow ? ctx.hypervisor.listAllNames() : earlyLibvirtNames).catch((e: unknown) => {
    if (opts.dryRun) return [] as string[];
    throw e;
  });
  if (libvirtNames.includes(spec0.name)) {
    throw conflict(`libvirt already has a domain named '${spec0.name}' (not made by vmforge)`, `pick another name, or remove it with 'virsh undefine ${spec0.name}'`);
  }

  const bridges = await hostBridges();
  const network = spec0.network === undefined ? undefined : await ctx.networks.require(spec0.network);
  const nic = network ? ({ type: 'bridge', bridge: network.bridge } as const) : pickNic(spec0.nicRequest, { bridges, activeNetworks: wantNetworks && earlyLists ? await earlyLists.then((l) => l.networks, () => []) : [] });
  // Only a domain that starts now needs its bridge now; a defined one may be started after the bridge is made (the
  // plan says so). The same check in a dry run and a build.
  const bridgeMissing = nic.type === 'bridge' && !bridges.includes(nic.bridge) ? nic.bridge : undefined;
  if (bridgeMissing && spec0.start) {
    throw invalidInput(
      `bridge '${bridgeMissing}' does not exist on this host`,
      network ? `create it (ip link add ${bridgeMissing} type bridge), or fix network ${network.name}` : `create it (ip link add ${bridgeMissing} type bridge), pick another with --bridge / --net, or define the VM now with --no-start`,
    );
  }
  // KVM only when a KVM guest really runs for libvirt's QEMU user; a dry run starts no probe guest (facts and the
  // cached probe only, and its plan says so). A forced kvm that cannot work is refused here, before any disk work.
  const accel = spec0.hypervisor === 'xen' ? undefined : await acceleratorVerdict(ctx, { probe: !opts.dryRun, signal });
  if (accel?.error) throw new VmforgeError('INVALID_CONFIG', accel.error.message, { hint: accel.error.hint });
  const accelNote = accel ? acceleratorNote(accel) : null;
  if (accelNote) emit({ type: 'step.info', step: 'plan', message: accelNote });
  const domainType = accel ? accel.domainType : 'xen';
  const macPrefix = MAC_PREFIX[domainType];
  // Without a NIC the MAC is never used: no need to read every other domain's XML (one virsh call each).
  const otherMacs = nic.type === 'none' ? [] : await libvirtMacs(ctx, libvirtNames);
  const takenMacs = [...(await ctx.vms.macsInUse()), ...(await ctx.leases.macsInUse()), ...otherMacs];
  if (spec0.requestedMac) {
    validateMac(spec0.requestedMac, macPrefix);
    if (takenMacs.includes(spec0.requestedMac)) throw conflict(`MAC ${spec0.requestedMac} is in use by another VM`, 'leave --mac out to get a free one');
  }
  const mac = spec0.requestedMac ?? pickMac(macPrefix, takenMacs, (n) => randomBytes(n));
  // With a network, the plan shows the address the lease would give now; the lease step takes the real one.
  const preview = network ? await previewLease(ctx, network, spec0.requestedIp) : undefined;
  const { nicRequest: _ignored, ...spec } = { ...spec0, nic, ...(preview ? { net: preview.net } : {}) };
  const guestDomain = network?.dnsZone ?? ctx.config.dns?.zone ?? undefined;
  const dnsRecords = ctx.config.dns && spec.net.mode === 'static' ? dnsRecordsFor(ctx.config.dns, { name: spec.name, ipv4: `${spec.net.address}/${spec.net.prefix}` }) : [];
  if (dnsRecords.length) {
    // Before any disk work, in a dry run too: a name that resolves elsewhere is refused now (the update itself
    // checks again). A DNS server that does not answer fails a dry run as it would fail the build.
    await requireDnsFree(dnsRegistrarFor(ctx.runner, ctx.config.dns as DnsSettings), dnsRecords, spec.dnsForce, signal);
  }
  const facts: BuildFacts = {
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
      mac,
      diskSignature: randomBytes(4).readUInt32LE(0),
      rootFsUuid: formatUuid(randomBytes(16)),
      swapFsUuid: formatUuid(randomBytes(16)),
    },
    identity: {
      ...(network ? { leaseFrom: network.name } : {}),
      ...(dnsRecords.length ? { dns: dnsRecords.map((r) => `${r.name} ${r.type}`) } : {}),
      ...(network && network.dhcp.mode !== 'none' ? { dhcp: formatDhcp(network.dhcp) } : {}),
    },
    ...(guestDomain ? { guestDomain } : {}),
    ...(lvmFacts ? { lvm: lvmFacts } : {}),
    ...(bridgeMissing ? { bridgeMissing } : {}),
    ...(accel ? { accelerator: `${describeVerdict(accel)}${accel.fix && accel.status === 'tcg-fallback' ? `; fix: ${accel.fix}` : ''}` } : {}),
  };
  // A golden image carries GRUB; direct kernel boot is built cold (its kernel copy comes from the extracted root).
  const coldOnly = coldOnlyReason(spec);
  if (coldOnly && cloneSetting !== 'auto' && cloneSetting !== 'off') {
    throw invalidInput(`--clone ${cloneSetting} does not go with ${coldOnly.flag}`, `drop --clone (${coldOnly.why}) or drop ${coldOnly.flag}`);
  }
  const { strategy: cloneStrategy, skipped } = coldOnly ? { strategy: null, skipped: [coldOnly.why] } : await chooseCloneStrategy(ctx, cloneSetting);
  for (const why of skipped) emit({ type: 'step.info', step: 'plan', message: `clone strategy skipped: ${why}` });
  if (cloneStrategy) {
    facts.clone = { strategy: cloneStrategy, goldenKey: goldenKey({ bundleSha256: bundle.manifest.sha256, fs: spec.fs }) };
    if (!opts.dryRun) await requireTools(spec.fs === 'xfs' ? ['xfs_admin', 'xfs_growfs'] : ['e2fsck', 'resize2fs', 'tune2fs']);
  }
  const plan = planBuild(spec, Boolean(opts.wait), facts);
  if (opts.dryRun) return { dryRun: true, name: spec.name, planText: describePlan(plan), domainXml: plan.domainXml, plan };

  await mkdir(ctx.config.storage.dir, { recursive: true, mode: 0o755 });
  await mkdir(ctx.config.consoleDir, { recursive: true, mode: 0o755 });
  await privateMountRoot(ctx.config.runDir);

  const cur = {
    plan,
    // After the lease: the same plan with the leased address and MAC (the steps do not change).
    replan: (lease: Lease) => {
      cur.plan = planBuild({ ...spec, net: netFromLease(lease) }, Boolean(opts.wait), { ...facts, ids: { ...facts.ids, mac: lease.mac } });
    },
    pickMac: (inUse: ReadonlySet<string>) => (inUse.has(mac) ? pickMac(macPrefix, [...inUse, ...otherMacs], (n) => randomBytes(n)) : mac),
  };
  const impl = {
    ...stepImplementations(ctx, cur, bundle.blobPath, { rootPasswordHash, sshKeys, hostKeys }, waitTimeoutS),
    ...storageStepImplementations<BuildState>(ctx.runner, cur),
    ...(plan.clone ? warmStepImplementations(ctx, cur, bundle.blobPath) : {}),
  };
  const steps: Step<BuildState>[] = plan.steps.map((s) => {
    const run = impl[s.id];
    if (!run) throw new VmforgeError('INTERNAL', `no implementation for build step ${s.id}`);
    return { id: s.id, title: s.title, run };
  });
  const jobId = opts.jobId ?? (await ctx.jobs.start('build', spec.name));
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
  const done = cur.plan;
  return {
    dryRun: false,
    name: spec.name,
    state: spec.start ? 'running' : 'defined',
    mac: done.domain.interfaces.length ? done.mac : null,
    ip: done.spec.net.mode === 'static' ? done.spec.net.address : null,
    ...(state.lease ? { network: state.lease.network } : {}),
    ...(state.dnsAdded?.length ? { dns: state.dnsAdded.map((r) => `${r.name} ${r.type} ${r.value}`) } : {}),
    diskPath: done.paths.disk,
    consoleLog: done.paths.consoleLog,
    ...(row?.boot_seconds != null ? { bootSeconds: row.boot_seconds } : {}),
    ...(state.loginLine ? { loginLine: state.loginLine } : {}),
    ...(state.hostKeys ? { sshHostKeys: state.hostKeys } : {}),
    ...(done.cloudInit ? { cloudInitSeed: done.cloudInit.seedPath } : {}),
    timings,
  };
}

interface CurrentPlan {
  plan: BuildPlan;
  replan(lease: Lease): void;
  pickMac(inUse: ReadonlySet<string>): string;
}

function stepImplementations(
  ctx: AppContext,
  cur: CurrentPlan,
  blobPath: string,
  { rootPasswordHash, sshKeys, hostKeys }: { rootPasswordHash: string | undefined; sshKeys: string[]; hostKeys: PendingHostKeys | undefined },
  waitTimeoutS: number,
): Partial<Record<BuildStepId, Step<BuildState>['run']>> {
  // Paths and the step list never change with the lease; address, MAC and domain XML are read from cur.plan.
  const { paths } = cur.plan;
  const runner = ctx.runner;
  return {
    'inventory.reserve': async (c) => {
      const { plan } = cur;
      const { spec } = plan;
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
          dns_records: null,
          dhcp: null,
          ssh_host_keys: null,
          cloud_init_seed: null,
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
    'network.lease': async (c, s) => {
      const { spec } = cur.plan;
      await c.willUndo({ kind: 'lease.release', vm: spec.name });
      const lease = await ctx.leases.allocate({
        network: spec.network as string,
        vmName: spec.name,
        ...(spec.requestedIp ? { ip: spec.requestedIp } : {}),
        mac: spec.requestedMac ?? ((inUse) => cur.pickMac(inUse)),
      });
      s.lease = lease;
      cur.replan(lease);
      const { plan } = cur;
      await ctx.vms.update(spec.name, { ip: lease.ipv4, mac: lease.mac, spec: JSON.stringify(plan.spec) });
      c.info(`${lease.ipv4}/${lease.prefix} and MAC ${lease.mac} from network ${lease.network}`);
    },
    'dhcp.reserve': async (c, s) => {
      const lease = s.lease as Lease;
      const reservation = { mac: lease.mac, ip: lease.ipv4, name: lease.vmName };
      await c.willUndo({ kind: 'dhcp.release', dhcp: lease.dhcp, uri: ctx.config.libvirt.uri, reservation });
      const res = await dhcpReservationsFor(ctx, lease.dhcp, ctx.config.libvirt.uri).reserve(reservation, { signal: c.signal });
      for (const e of res.removedStale) c.info(`removed a stale DHCP entry: ${[e.mac, e.ip, e.name].filter(Boolean).join(' ')}`);
      await ctx.vms.update(lease.vmName, { dhcp: JSON.stringify({ dhcp: lease.dhcp, uri: ctx.config.libvirt.uri, reservation }) });
    },
    'dns.register': async (c, s) => {
      const { spec } = cur.plan;
      const settings = ctx.config.dns as DnsSettings;
      const net = spec.net as Extract<GuestNetConfig, { mode: 'static' }>;
      const records = dnsRecordsFor(settings, {
        name: spec.name,
        ipv4: `${net.address}/${net.prefix}`,
        ...(s.lease?.ipv6 ? { ipv6: `${s.lease.ipv6}/${s.lease.ipv6Prefix}` } : {}),
      });
      const undoSettings = { server: settings.server, keyFile: settings.keyFile };
      const broad = await c.willUndo({ kind: 'dns.remove', settings: undoSettings, records });
      const res = await dnsRegistrarFor(ctx.runner, settings).register(records, { force: spec.dnsForce, signal: c.signal });
      // Records that were there already (same value) are not ours: the undo and destroy leave them.
      if (res.present.length) {
        await c.willUndo({ kind: 'dns.remove', settings: undoSettings, records: res.added });
        await broad.cancel();
      }
      s.dnsAdded = res.added;
      await ctx.vms.update(spec.name, { dns_records: JSON.stringify({ settings: undoSettings, records: res.added }) });
      for (const r of res.replaced) c.info(`replaced (--force): ${describeConflict(r)}`);
      c.info(`DNS: ${records.map((r) => `${r.name} ${r.type} ${r.value}${res.present.includes(r) ? ' (was there)' : ''}`).join('; ')}`);
    },
    'disk.create': async (c) => {
      const { plan } = cur;
      const { spec } = plan;
      const undo = await c.willUndo({ kind: 'file.remove', path: paths.disk });
      // Exclusive create: a file already at this path is someone else's and must survive our undo.
      await createSparseFile(paths.disk, spec.diskBytes).catch(async (e: unknown) => {
        if (e instanceof VmforgeError && e.code === 'CONFLICT') await undo.cancel();
        throw e;
      });
      // No fsync: root.release's unmount flushes through the loop device, which fsyncs the whole image; a crash
      // before that removes the file (undo). Under I/O load this fsync alone took up to ~250 ms.
      await writeAt(paths.disk, 0, mbrBytes(plan.layout, plan.diskSignature), { sync: false });
    },
    'disk.attach': async (c, s) => {
      const { plan } = cur;
      await c.willUndo({ kind: 'loop.detach-backing', backingFile: paths.disk });
      s.attached = await attachPartitions(runner, { file: paths.disk, layout: plan.layout, strategy: plan.partitionAccess });
      s.rootDevice = deviceFor(s.attached, 'root');
    },
    'disk.format': async (c, s) => {
      const { plan } = cur;
      const { spec } = plan;
      const rootDev = s.rootDevice as string;
      const swap = swapPartition(plan.layout);
      const jobs: Promise<unknown>[] = [makeFilesystem(runner, { device: rootDev, fs: spec.fs, uuid: plan.rootFsUuid, signal: c.signal })];
      if (swap && plan.swapFsUuid && s.attached) {
        jobs.push(makeSwap(runner, { device: deviceFor(s.attached, 'swap'), uuid: plan.swapFsUuid, label: 'swap' }));
      }
      await Promise.all(jobs);
    },
    'root.mount': async (c, s) => {
      const { spec } = cur.plan;
      await c.willUndo({ kind: 'dir.remove', path: paths.mountDir });
      // Again here: a resumed or retried step must not trust a mode someone widened meanwhile.
      await privateMountRoot(ctx.config.runDir);
      await mkdir(paths.mountDir, { recursive: true, mode: 0o700 });
      await c.willUndo({ kind: 'mount.umount', target: paths.mountDir });
      await mount(runner, { device: s.rootDevice as string, target: paths.mountDir, fsType: spec.fs });
    },
    'bundle.extract': async (c) => {
      const { plan } = cur;
      const total = plan.manifest.compressedBytes;
      await extractBundle(runner, {
        blobPath,
        compression: plan.manifest.compression,
        expectedSha256: plan.manifest.sha256,
        targetDir: paths.mountDir,
        bundleRef: plan.bundleRef,
        swapBytes: plan.spec.swapBytes,
        signal: c.signal,
        onProgress: (p) => c.progress(p.compressedBytesRead, total, 'bytes'),
      });
    },
    'guest.configure': async (c, s) => {
      const { plan } = cur;
      const { spec } = plan;
      const guest = new GuestRoot(paths.mountDir);
      const adapter = guestAdapterFor(plan.guestFamily);
      const input: GuestEditInput = {
        hostname: spec.name,
        ...(plan.guestDomain ? { domain: plan.guestDomain } : {}),
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
      await applyGuestEditsWithHostKeys(ctx, c, s, { plan, hostKeys, edits: adapter.edits(input, current), current, apply: (edits) => guest.applyEdits(edits) });
    },
    'cloudinit.seed': (c, s) => makeCloudInitSeed(ctx, c, s, { plan: cur.plan, sshKeys }),
    'boot.install': async (c) => {
      const { plan } = cur;
      const { spec } = plan;
      await installGrubBios(runner, {
        diskPath: paths.disk,
        rootMountDir: paths.mountDir,
        layout: plan.layout,
        fs: spec.fs,
        grubCfgText: plan.grubCfg,
        tmpDir: ctx.config.runDir,
        coreCacheDir: grubCoreCacheDir(ctx.config),
        // Made durable by root.release's unmount (see syncWrites); a crash before it undoes the disk.
        syncWrites: false,
        signal: c.signal,
      });
    },
    'boot.kernel': async (c) => {
      const { plan } = cur;
      const guest = new GuestRoot(paths.mountDir);
      await c.willUndo({ kind: 'file.remove', path: paths.kernel });
      await copyOutOfGuest(guest, plan.kernel.kernel, paths.kernel);
      if (plan.kernel.initrd) {
        await c.willUndo({ kind: 'file.remove', path: paths.initrd });
        await copyOutOfGuest(guest, plan.kernel.initrd, paths.initrd);
      }
    },
    'root.release': async (_c, s) => {
      await umount(runner, paths.mountDir);
      await rmdir(paths.mountDir);
      if (s.attached) await detachPartitions(runner, s.attached.undo);
      s.attached = undefined;
    },
    'domain.define': async (c) => {
      const { plan } = cur;
      const { spec } = plan;
      await c.willUndo({ kind: 'domain.remove', name: spec.name, uri: ctx.config.libvirt.uri, uuid: plan.uuid });
      // A same-named domain defined since our first check is not replaced: libvirt refuses a definition whose
      // name it has under another UUID, and ours is fresh. (Saves a `virsh list` before the define.)
      await ctx.hypervisor.defineXml(plan.domainXml, spec.autostart ? { autostartUuid: plan.uuid } : {}).catch((e: unknown) => {
        if (e instanceof VmforgeError && /already exists with uuid/i.test(e.message)) {
          throw conflict(`libvirt got a domain named '${spec.name}' while this build ran`);
        }
        throw e;
      });
    },
    'domain.start': async (c) => {
      const { spec } = cur.plan;
      await c.willUndo({ kind: 'file.remove', path: paths.consoleLog });
      await ctx.hypervisor.start(spec.name);
    },
    'boot.wait': async (c, s) => {
      const { spec } = cur.plan;
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
      const { spec } = cur.plan;
      await ctx.vms.update(spec.name, { status: spec.start ? 'running' : 'defined', boot_seconds: s.bootSeconds ?? null });
    },
  };
}

async function requireOvmf(): Promise<void> {
  for (const f of [OVMF_CODE_PATH, OVMF_VARS_TEMPLATE_PATH]) {
    await access(f).catch(() => {
      throw new VmforgeError('MISSING_TOOL', `--firmware uefi needs ${f}, which is not on this host`, { hint: 'install OVMF: apt-get install ovmf' });
    });
  }
}

/** Why a build cannot use a golden image (which holds an MBR disk with GRUB on a file), or null. */
function coldOnlyReason(spec: { boot: string; hypervisor?: string; storage?: string }): { flag: string; why: string } | null {
  if (spec.boot === 'kernel') return { flag: '--boot kernel', why: 'direct kernel boot builds cold' };
  if (spec.hypervisor === 'xen') return { flag: '--hypervisor xen', why: 'Xen guests build cold' };
  if (spec.storage) return { flag: '--storage lvm', why: 'LVM volumes are built cold' };
  return null;
}

function needsGrubInstall(spec: { boot: string; hypervisor?: string; xenMode?: string }): boolean {
  return spec.boot !== 'kernel' && !(spec.hypervisor === 'xen' && spec.xenMode !== 'hvm');
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
    if (lines.some((l) => !isPublicKeyLine(l)) || !lines.length) {
      throw invalidInput(`--ssh-key ${file} does not hold OpenSSH public keys`, "give a file like ~/.ssh/id_ed25519.pub ('ssh-ed25519 AAAA... comment')");
    }
    keys.push(...lines);
  }
  return keys;
}

function isPublicKeyLine(l: string): boolean {
  return /^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp\d+|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( .*)?$/.test(l);
}

/** Public key lines given as text; `field` names them in the error. */
export function publicKeyLines(lines: string[], field: string): string[] {
  const keys = lines.map((l) => l.trim());
  keys.forEach((l, i) => {
    if (l.includes('PRIVATE KEY')) throw invalidInput(`${field}[${i}] is a private key`, 'give the public key (the .pub file\'s line)');
    if (!isPublicKeyLine(l) || l.includes('\n')) throw invalidInput(`${field}[${i}] is not one OpenSSH public key line`, "give a line like 'ssh-ed25519 AAAA... comment'");
  });
  return keys;
}

/** What the lease would be now (for the plan and --dry-run); the lease step takes the real one. */
async function previewLease(ctx: AppContext, network: Network, requestedIp: string | undefined): Promise<{ ip: string; net: GuestNetConfig }> {
  const pool = compilePool(network);
  const leases = await ctx.leases.inNetwork(network.name);
  let ip: string | null;
  if (requestedIp) ip = checkRequestedIp(pool, requestedIp, new Map(leases.map((l) => [l.ipv4, l.vmName])));
  else ip = lowestFree(pool, leases.map((l) => l.ipv4));
  if (ip === null) throw poolExhausted(pool, leases.length);
  const prefix = Number(network.cidr.split('/')[1]);
  return { ip, net: { mode: 'static', address: ip, prefix, gateway: network.gateway, dns: network.dnsServers.slice(0, 3) } };
}

function netFromLease(l: Lease): GuestNetConfig {
  return { mode: 'static', address: l.ipv4, prefix: l.prefix, gateway: l.gateway, dns: l.dnsServers.slice(0, 3) };
}

/** Refuses, before anything is made, a name whose DNS records point elsewhere (unless --force). */
async function requireDnsFree(registrar: DnsRegistrar, records: DnsRecord[], force: boolean, signal: AbortSignal): Promise<void> {
  const names = [...new Set(records.map((r) => r.name))];
  const observed = (await Promise.all(names.map((n) => registrar.lookup(n, ['A', 'AAAA', 'PTR', 'CNAME'], { signal })))).flat();
  const { conflicts } = planRegistration(records, observed, { force });
  if (conflicts.length) {
    throw conflict(`DNS: ${conflicts.map(describeConflict).join('; ')}`, 'pick another name or address, remove the record, or pass --force to replace it');
  }
}


/**
 * MACs of every libvirt domain, from their persistent definitions: one virsh start for up to 100 domains (it was
 * one per domain: seconds of CPU on a host with many VMs).
 */
async function libvirtMacs(ctx: AppContext, names: string[]): Promise<string[]> {
  const xmls = await ctx.hypervisor.inactiveXmls(names);
  return xmls.flatMap((xml) => readDomainFacts(xml).macs);
}

