/**
 * `vmforge host check`: every fact a build depends on, checked for real on this host (libvirt answers and how
 * fast, the accelerator, loop devices, FUSE, GRUB, tools, bridges, DNS, free space, the state database, the host
 * lock), one result each with the fix. Read-only apart from throwaway objects it removes again (a loop device on
 * a sparse file, a FUSE export, a defined-and-undefined domain, the accelerator probe's transient domain).
 */
import { performance } from 'node:perf_hooks';
import type { CheckResult, CheckStatus } from '../core/host/check-report.js';
import { VmforgeError } from '../errors.js';
import type { AppContext } from './context.js';
import { acceleratorChecks } from './host-checks/accelerator.js';
import { diskAccessChecks } from './host-checks/disk-access.js';
import { libvirtChecks } from './host-checks/libvirt.js';
import { networkChecks } from './host-checks/networks.js';
import { stateChecks } from './host-checks/state.js';
import { toolChecks } from './host-checks/tools.js';

/** What one check group reports; `ms` is filled with the group's time when the group does not time itself. */
export type Finding = Omit<CheckResult, 'ms'> & { ms?: number };

export interface CheckEnv {
  ctx: AppContext;
  signal: AbortSignal;
  /** Run the accelerator's real probe when the facts call for it (default true). */
  probe: boolean;
  /** Facts one group learns that a later one explains with (the accelerator verdict explains a slow define). */
  notes: Map<string, string>;
}

interface CheckGroup {
  name: string;
  timeoutMs: number;
  run(env: CheckEnv): Promise<Finding[]>;
}

/** In output order. Sequential on purpose: the libvirt timings would mean little with other checks running. */
const GROUPS: readonly CheckGroup[] = [
  { name: 'accelerator', timeoutMs: 60_000, run: acceleratorChecks },
  { name: 'libvirt', timeoutMs: 150_000, run: libvirtChecks },
  { name: 'disk access', timeoutMs: 60_000, run: diskAccessChecks },
  { name: 'tools', timeoutMs: 30_000, run: toolChecks },
  { name: 'networks', timeoutMs: 60_000, run: networkChecks },
  { name: 'state', timeoutMs: 30_000, run: stateChecks },
];

export interface HostCheckOptions {
  probe?: boolean;
  signal?: AbortSignal;
  /** Each result as soon as it is known (the CLI prints lines as they come). */
  onResult?: (r: CheckResult) => void;
}

export async function hostCheck(ctx: AppContext, opts: HostCheckOptions = {}): Promise<CheckResult[]> {
  const env = { ctx, probe: opts.probe ?? true, notes: new Map<string, string>() };
  const out: CheckResult[] = [];
  for (const group of GROUPS) {
    const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(group.timeoutMs)]) : AbortSignal.timeout(group.timeoutMs);
    const t0 = performance.now();
    let findings: Finding[];
    try {
      findings = await group.run({ ...env, signal });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      findings = [failedGroup(group, e, signal.aborted)];
    }
    const ms = performance.now() - t0;
    for (const f of findings) {
      const r: CheckResult = { ...f, ms: f.ms ?? ms };
      out.push(r);
      opts.onResult?.(r);
    }
  }
  return out;
}

/** A group that threw: its error is the finding, so one broken fact never hides the others. */
function failedGroup(group: CheckGroup, e: unknown, timedOut: boolean): Finding {
  const hint = e instanceof VmforgeError ? e.hint : undefined;
  return {
    id: `${group.name.replace(/\s+/g, '-')}.error`,
    title: group.name,
    status: 'fail',
    detail: timedOut ? `did not finish within ${group.timeoutMs / 1000} s` : (e as Error)?.message ?? String(e),
    ...(hint ? { fix: hint } : {}),
  };
}

/** A finding from a check that throws a VmforgeError (its message and hint) or passes. */
export async function findingOf(
  id: string,
  title: string,
  check: () => Promise<{ status?: CheckStatus; detail: string; fix?: string }>,
  failStatus: CheckStatus = 'fail',
): Promise<Finding> {
  const t0 = performance.now();
  try {
    const r = await check();
    return { id, title, status: r.status ?? 'ok', detail: r.detail, ...(r.fix ? { fix: r.fix } : {}), ms: performance.now() - t0 };
  } catch (e) {
    const hint = e instanceof VmforgeError ? e.hint : undefined;
    return { id, title, status: failStatus, detail: (e as Error)?.message ?? String(e), ...(hint ? { fix: hint } : {}), ms: performance.now() - t0 };
  }
}
