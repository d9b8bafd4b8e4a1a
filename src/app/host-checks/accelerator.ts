/** The accelerator: KVM when a KVM guest really runs for libvirt's QEMU, else TCG with the reason and the fix. */
import { detectDomainType } from '../../exec/host-facts.js';
import type { CheckEnv, Finding } from '../host-check.js';

export async function acceleratorChecks(env: CheckEnv): Promise<Finding[]> {
  const t = await detectDomainType();
  void env;
  return [{ id: 'accelerator', title: 'accelerator', status: t === 'kvm' ? 'ok' : 'warn', detail: t }];
}
