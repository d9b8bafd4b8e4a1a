/**
 * Facts about the host that shape what vmforge generates.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import type { HypervisorType } from '../core/model/spec.js';

/**
 * 'kvm' when hardware acceleration is usable (a /dev/kvm character device we can open read-write),
 * otherwise 'qemu' (TCG emulation: works everywhere, roughly 5-20x slower).
 */
export async function detectDomainType(opts: { kvmDevice?: string } = {}): Promise<HypervisorType> {
  const dev = opts.kvmDevice ?? '/dev/kvm';
  try {
    if (!(await stat(dev)).isCharacterDevice()) return 'qemu';
    await access(dev, constants.R_OK | constants.W_OK);
    return 'kvm';
  } catch {
    return 'qemu';
  }
}
