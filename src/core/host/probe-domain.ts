/**
 * The accelerator probe's throwaway domain: the domain a build makes (same policy code, so the same CPU mode for
 * the type), shrunk to one vCPU, 16 MiB, no NIC, and the probe's boot sector as its disk. Its name carries the
 * owner's pid, so a probe whose process was killed can be told from a running one and removed.
 */
import { buildDomainXml, domainModelFor } from '../domain-xml/index.js';

export const PROBE_PREFIX = 'vmforge-probe-';

export function probeName(pid: number, suffix: string): string {
  return `${PROBE_PREFIX}${pid}-${suffix}`;
}

/** The owner pid of a probe domain or directory name; null for any other name. */
export function probeOwnerPid(name: string): number | null {
  const m = /^vmforge-probe-(\d+)-[A-Za-z0-9]+$/.exec(name);
  return m ? Number(m[1]) : null;
}

export function probeDomainXml(p: { name: string; uuid: string; domainType: 'kvm' | 'qemu'; diskPath: string; serialLogPath: string; ownerPid: number }): string {
  const model = domainModelFor({
    name: p.name,
    uuid: p.uuid,
    hypervisor: p.domainType,
    cpus: 1,
    memoryMiB: 16,
    diskPath: p.diskPath,
    diskFormat: 'raw',
    nic: { type: 'none' },
    serialLogPath: p.serialLogPath,
    description: `vmforge accelerator probe of pid ${p.ownerPid}: transient, removed by the next probe or 'vmforge recover' once that process is gone`,
  });
  // No balloon, no RNG: nothing in a boot sector uses them, and fewer devices start faster.
  return buildDomainXml({ ...model, memballoon: { model: 'none' }, rng: null });
}
