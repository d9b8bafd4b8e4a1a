/**
 * How long libvirt takes to answer, for `host check`: `virsh version` (the driver's capabilities) and a define +
 * undefine of a domain that is never started.
 */
import { performance } from 'node:perf_hooks';
import type { CommandRunner } from '../runner.js';
import type { Hypervisor } from './hypervisor.js';

export interface VirshVersion {
  ms: number;
  /** "Running hypervisor: QEMU 7.2.0" and libvirt's own version line, as virsh prints them. */
  lines: string[];
}

export async function timeVirshVersion(runner: CommandRunner, uri: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<VirshVersion> {
  const t0 = performance.now();
  const res = await runner.run(['virsh', '--quiet', '-c', uri, 'version'], { timeoutMs: opts.timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) });
  const ms = performance.now() - t0;
  return { ms, lines: res.stdout.split('\n').map((l) => l.trim()).filter(Boolean) };
}

/** Defines `xml` (named `name`) and undefines it again, however the define ends; returns the define's time. */
export async function timeDefine(hypervisor: Hypervisor, name: string, xml: string): Promise<number> {
  const t0 = performance.now();
  try {
    await hypervisor.defineXml(xml);
    return performance.now() - t0;
  } finally {
    await hypervisor.undefine(name);
  }
}
