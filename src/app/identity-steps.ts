/**
 * The VM's own identity beyond its name and address: SSH host keys made on the host (started with the pipeline,
 * installed by guest.configure, cold and warm path alike) and the cloud-init NoCloud seed (--cloud-init). Kept
 * apart from build.ts so the build pipeline only calls in here.
 */
import { dirOf, type GuestFiles } from '../core/guest/current-files.js';
import { cloudInitSeedFiles, type CloudInitNetwork } from '../core/guest/cloud-init-seed.js';
import { hostKeyTypesFor, SSH_DIR, withHostKeys } from '../core/guest/ssh-host-keys.js';
import type { FileEdit } from '../core/model/spec.js';
import type { BuildPlan } from '../core/plan/build-plan.js';
import type { StoredHostKey } from '../core/ssh/host-keys.js';
import { VmforgeError } from '../errors.js';
import { makeSeedImage } from '../exec/tools/cloud-init-seed.js';
import { hostKeyPoolDir, refillInBackground } from '../exec/tools/host-key-pool.js';
import { publicHostKeys, startHostKeys, wipeHostKeys, type PendingHostKeys } from '../exec/tools/ssh-host-keys.js';
import type { StepContext } from '../pipeline/pipeline.js';
import type { Lease } from '../store/networks.js';
import type { AppContext } from './context.js';

export interface IdentityState {
  lease?: Lease;
  /** The host keys written into the guest (public halves only); unset when none were. */
  hostKeys?: StoredHostKey[];
}

/**
 * Starts making the VM's host keys unless the spec says --no-host-keys (the plan's `hostKeys` is this same
 * test). They depend on nothing but the name, so the build starts them first thing and guest.configure only
 * waits for what is left (RSA 3072 takes 0.1 to over 1 s). All three types are started, as the template's
 * /etc/ssh, which decides, is read only then; the ones not taken are wiped. The caller must `discard()` them
 * when the build ends, whether guest.configure took them or not.
 */
export function startVmHostKeys(ctx: AppContext, spec: { name: string; hostKeys?: boolean }): PendingHostKeys | undefined {
  if (spec.hostKeys === false) return undefined;
  const poolDir = ctx.config.ssh.hostKeyPool > 0 ? hostKeyPoolDir(ctx.config.stateDir) : undefined;
  return startHostKeys({ comment: `root@${spec.name}`, ...(poolDir ? { poolDir } : {}) });
}

/**
 * After a build that made host keys: starts the pool's filler in the background when the pool is below its
 * target (the CLI only: an in-process caller has no command to start). Never fails the build.
 */
export async function refillHostKeyPool(ctx: AppContext): Promise<void> {
  const target = ctx.config.ssh.hostKeyPool;
  if (target <= 0 || !ctx.selfCommand) return;
  try {
    await refillInBackground(hostKeyPoolDir(ctx.config.stateDir), target, { ...ctx.selfCommand, configPath: ctx.config.source });
  } catch (e) {
    ctx.log().warn({ err: (e as Error).message }, 'could not start the host key pool filler');
  }
}

/**
 * Applies the adapter's edits with the VM's own SSH host keys in place of the template's (when the plan wants
 * them and the guest has an SSH server), then records their public halves in the inventory. The private halves
 * exist only in memory between node:crypto and the guest's /etc/ssh, and are zeroed afterwards.
 */
export async function applyGuestEditsWithHostKeys(
  ctx: AppContext,
  c: StepContext,
  s: IdentityState,
  args: { plan: BuildPlan; hostKeys: PendingHostKeys | undefined; edits: FileEdit[]; current: GuestFiles; apply: (edits: readonly FileEdit[]) => Promise<unknown> },
): Promise<void> {
  const { plan, hostKeys, edits, current, apply } = args;
  const sshDir = dirOf(current, SSH_DIR);
  if (!plan.hostKeys || !sshDir.includes('sshd_config')) {
    hostKeys?.discard();
    await apply(edits);
    return;
  }
  if (!hostKeys) throw new VmforgeError('INTERNAL', 'guest.configure wants host keys that were never started');
  const keys = await hostKeys.take(hostKeyTypesFor(sshDir), c.signal);
  try {
    const res = withHostKeys(edits, sshDir, keys.map((k) => ({ type: k.type, publicKey: k.publicKey, privateKey: k.privateKey })));
    await apply(res.edits);
  } finally {
    wipeHostKeys(keys);
  }
  const stored = publicHostKeys(keys);
  s.hostKeys = stored;
  await ctx.vms.update(plan.spec.name, { ssh_host_keys: JSON.stringify(stored) });
  c.info(`SSH host keys: ${stored.map((k) => `${k.type} ${k.fingerprint}`).join(', ')}`);
}

/** The cloudinit.seed step: the NoCloud image next to the disk, removed again by the undo (and by vm destroy). */
export async function makeCloudInitSeed(ctx: AppContext, c: StepContext, s: IdentityState, args: { plan: BuildPlan; sshKeys: readonly string[] }): Promise<void> {
  const { plan, sshKeys } = args;
  if (!plan.cloudInit) throw new VmforgeError('INTERNAL', 'cloudinit.seed needs a plan with --cloud-init');
  const { spec } = plan;
  const seedPath = plan.cloudInit.seedPath;
  const network: CloudInitNetwork | undefined = plan.domain.interfaces.length
    ? {
        mac: plan.mac,
        net: spec.net,
        ...(s.lease?.ipv6 && s.lease.ipv6Prefix !== null ? { ipv6: { address: s.lease.ipv6, prefix: s.lease.ipv6Prefix } } : {}),
      }
    : undefined;
  const files = cloudInitSeedFiles({
    instanceId: plan.uuid,
    hostname: spec.name,
    ...(plan.guestDomain ? { domain: plan.guestDomain } : {}),
    ...(sshKeys.length ? { sshAuthorizedKeys: sshKeys } : {}),
    keepHostKeys: Boolean(s.hostKeys?.length),
    ...(network ? { network } : {}),
  });
  const undo = await c.willUndo({ kind: 'file.remove', path: seedPath });
  await makeSeedImage(ctx.runner, { path: seedPath, files, signal: c.signal }).catch(async (e: unknown) => {
    // A file already at this path is someone else's and must survive our undo.
    if (e instanceof VmforgeError && e.code === 'CONFLICT') await undo.cancel();
    throw e;
  });
  await ctx.vms.update(spec.name, { cloud_init_seed: seedPath });
  c.info(`cloud-init seed: ${Object.keys(files).join(', ')}`);
}
