/**
 * `vm build --count N PATTERN`: N VMs named from the pattern, each its own build pipeline (with its own undo),
 * a few at a time in this one process. Everything that can be refused is refused before the first build
 * starts: the pattern and every name it makes, the options, names already taken. Crash recovery runs once,
 * under the host lock, not once per VM. A failed build undoes only itself; the others are kept.
 */
import { expandNamePattern } from '../core/plan/name-pattern.js';
import { specFromRequest, type BuildRequest } from '../core/plan/build-request.js';
import { conflict, errorSummary, invalidInput, VmforgeError, type ErrorSummary } from '../errors.js';
import type { PipelineEvent } from '../pipeline/events.js';
import { buildVm, type BuildOptions, type BuildResult } from './build.js';
import type { AppContext } from './context.js';
import { withHostLock } from './mutating.js';

/** At most this many builds at once: each holds a loop device, a mount and a disk's worth of writes. */
export const MAX_PARALLEL_BUILDS = 16;

export interface BuildManyOptions extends Omit<BuildOptions, 'emit' | 'recovered'> {
  count: number;
  /** Number of the first VM (default 1). */
  first?: number | undefined;
  /** Builds at once (default: config defaults.parallelBuilds). */
  parallel?: number | undefined;
  /** Every pipeline event, with the VM it belongs to. */
  emit?: (vm: string, e: PipelineEvent) => void;
  /** Called as each VM's build ends (in the order they end). */
  onResult?: (item: BuildManyItem) => void;
}

export type BuildFailure = ErrorSummary;

export type BuildManyItem = { name: string; ok: true; result: BuildResult } | { name: string; ok: false; error: BuildFailure };

export interface BuildManyResult {
  dryRun: boolean;
  /** In name order. */
  results: BuildManyItem[];
  built: string[];
  failed: string[];
}

/** Options that name one VM's identity: with several VMs they would collide on the second. */
const SINGLE_VM_OPTIONS: ReadonlyArray<['ip' | 'mac', string, string]> = [
  ['ip', '--ip', 'leave it out for DHCP, or use --network to lease one address per VM'],
  ['mac', '--mac', 'leave it out: each VM gets its own random MAC'],
];

export async function buildMany(ctx: AppContext, pattern: string, req: Omit<BuildRequest, 'name'>, opts: BuildManyOptions): Promise<BuildManyResult> {
  const names = expandNamePattern(pattern, opts.count, opts.first ?? 1);
  if (names.length > 1) {
    for (const [key, flag, hint] of SINGLE_VM_OPTIONS) {
      if (req[key] !== undefined) throw invalidInput(`${flag} names one VM's own ${flag.slice(2).toUpperCase()}; it cannot go with --count ${names.length}`, hint);
    }
  }
  const parallel = opts.parallel ?? ctx.config.defaults.parallelBuilds;
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > MAX_PARALLEL_BUILDS) {
    throw invalidInput(`--parallel '${opts.parallel}' must be a whole number from 1 to ${MAX_PARALLEL_BUILDS}`);
  }
  // Pure checks of every VM's request (sizes, network flags, ...): the same for each but its name.
  for (const name of names) specFromRequest({ ...req, name }, ctx.config);
  const taken: string[] = [];
  for (const name of names) if (await ctx.vms.get(name)) taken.push(name);
  if (taken.length) {
    throw conflict(
      `VM name(s) taken already: ${taken.join(', ')}`,
      `pick another pattern, or start the numbering past them with --first; remove a VM with 'vmforge vm destroy NAME'`,
    );
  }

  const dryRun = Boolean(opts.dryRun);
  const { count: _c, first: _f, parallel: _p, emit, onResult, ...buildOpts } = opts;
  if (!dryRun) {
    // Each build checks the lock itself to recover; here it is done once for all of them.
    const sink = (e: PipelineEvent) => emit?.(names[0] as string, e);
    await withHostLock(
      ctx,
      {
        emit: sink,
        ...(opts.signal ? { signal: opts.signal } : {}),
        onWait: (h) => sink({ type: 'step.info', step: 'lock', message: `waiting for pid ${h.pid} (${h.command}) to release the host lock` }),
      },
      async () => {},
    );
  }

  // After the recovery above: one list of libvirt's domains (and networks) for every build of the batch.
  const libvirtLists = dryRun ? undefined : ctx.hypervisor.listAllNamesAndNetworks();
  libvirtLists?.catch(() => {}); // each build awaits it, and throws what it threw
  const results: BuildManyItem[] = new Array<BuildManyItem>(names.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const i = next++;
      const name = names[i] as string;
      let item: BuildManyItem;
      if (opts.signal?.aborted) {
        item = { name, ok: false, error: failure(new VmforgeError('CANCELLED', `${name} was not started: the command was interrupted`)) };
      } else {
        try {
          const result = await buildVm(ctx, { ...req, name }, { ...buildOpts, recovered: true, ...(libvirtLists ? { libvirtLists } : {}), emit: (e) => emit?.(name, e) });
          item = { name, ok: true, result };
        } catch (e) {
          item = { name, ok: false, error: failure(e) };
        }
      }
      results[i] = item;
      onResult?.(item);
    }
  };
  // A dry run prints plans: one after the other, in name order.
  const workers = dryRun ? 1 : Math.min(parallel, names.length);
  await Promise.all(Array.from({ length: workers }, worker));
  return {
    dryRun,
    results,
    built: results.filter((r) => r.ok).map((r) => r.name),
    failed: results.filter((r) => !r.ok).map((r) => r.name),
  };
}

/** The error a --count build ends with when any VM failed: the first failure's code, every failed VM named. */
export function buildManyError(res: BuildManyResult): VmforgeError | null {
  const failed = res.results.filter((r): r is Extract<BuildManyItem, { ok: false }> => !r.ok);
  const first = failed[0];
  if (!first) return null;
  return new VmforgeError(
    first.error.code,
    `${failed.length} of ${res.results.length} builds failed: ${failed.map((f) => `${f.name} (${f.error.code}: ${f.error.message})`).join('; ')}` +
      (res.built.length ? `; built: ${res.built.join(', ')}` : ''),
    { hint: res.built.length ? `the VMs that were built are kept; build the failed ones again by name once the cause is fixed` : (first.error.hint ?? undefined) },
  );
}

const failure = errorSummary;
