/**
 * The accelerator verdict: the one entry point the build and `vmforge host check` ask. Reads the host facts,
 * decides (src/core/host/accelerator.ts), and when the facts all say KVM and no probe of this host boot is
 * cached, runs the real probe and caches its result.
 */
import type { Config } from '../config/schema.js';
import { decideAccelerator, type AccelFacts, type AcceleratorVerdict, type ConfiguredDomainType } from '../core/host/accelerator.js';
import { writeCachedProbe } from '../exec/host/accel-cache.js';
import { readAccelFacts, type AccelFactPaths } from '../exec/host/accel-facts.js';
import { runAccelProbe } from '../exec/host/accel-probe.js';
import type { CommandRunner } from '../exec/runner.js';

export interface AcceleratorContext {
  config: Pick<Config, 'stateDir'> & { libvirt: Pick<Config['libvirt'], 'uri' | 'domainType'> };
  runner: CommandRunner;
}

export interface AcceleratorOptions {
  /** Run the probe when the facts ask for one (default true). false: facts and the cached probe only (dry runs). */
  probe?: boolean;
  signal?: AbortSignal;
  /** The probe's marker timeout (default 5 s). */
  timeoutMs?: number;
  /** Instead of libvirt.domainType. */
  configured?: ConfiguredDomainType;
  /** Host files to read instead of the real ones (tests). */
  paths?: Partial<AccelFactPaths>;
  /** Where the probe's private directory goes (default os.tmpdir()). */
  probeTmpDir?: string;
}

export interface AcceleratorAnswer extends AcceleratorVerdict {
  /** The facts the verdict was made from (host check shows them one by one). */
  facts: AccelFacts;
}

export async function acceleratorVerdict(ctx: AcceleratorContext, opts: AcceleratorOptions = {}): Promise<AcceleratorAnswer> {
  const configured = opts.configured ?? ctx.config.libvirt.domainType;
  const uri = ctx.config.libvirt.uri;
  const { facts, cacheKey } = await readAccelFacts(ctx.runner, {
    uri,
    stateDir: ctx.config.stateDir,
    // A forced qemu needs no answer from libvirt.
    domcaps: configured === 'qemu' ? 'never' : 'if-needed',
    ...(opts.paths ? { paths: opts.paths } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const verdict = decideAccelerator(facts, configured);
  if (!verdict.needsProbe || opts.probe === false) return { ...verdict, facts };
  const probe = await runAccelProbe(ctx.runner, {
    uri,
    domainType: 'kvm',
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.probeTmpDir ? { tmpDir: opts.probeTmpDir } : {}),
  });
  await writeCachedProbe(ctx.config.stateDir, cacheKey, probe);
  return { ...decideAccelerator(facts, configured, probe), facts };
}

/** How a verdict reads in a plan or a log line: "kvm (probed: a KVM test guest ran in 40 ms)". */
export function describeVerdict(v: AcceleratorVerdict): string {
  const basis =
    v.basis === 'config' ? 'as configured' : v.basis === 'probe' ? 'probed now' : v.basis === 'cached-probe' ? 'probe cached for this host boot' : v.needsProbe ? 'facts only, not probed yet' : 'host facts';
  return `${v.domainType} (${basis}: ${v.reason})`;
}
