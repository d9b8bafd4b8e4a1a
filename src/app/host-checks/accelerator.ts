/** The accelerator: KVM when a KVM guest really runs for libvirt's QEMU, else TCG with the reason and the fix. */
import type { AccelFacts } from '../../core/host/accelerator.js';
import { acceleratorVerdict } from '../accelerator.js';
import type { CheckEnv, Finding } from '../host-check.js';

export async function acceleratorChecks(env: CheckEnv): Promise<Finding[]> {
  const v = await acceleratorVerdict(env.ctx, { probe: env.probe, signal: env.signal });
  const title = `accelerator (libvirt.domainType: ${env.ctx.config.libvirt.domainType})`;
  const facts = describeFacts(v.facts);
  if (v.facts.kvmDevice.present && v.domainType !== 'kvm') {
    // libvirtd probes QEMU again on every call while a /dev/kvm it cannot use is there: the libvirt lines say so.
    env.notes.set('slow-libvirt-cause', `libvirtd re-probes QEMU on every call while ${v.facts.kvmDevice.path} is present but unusable (${v.reason}); fix that, or move the device out of the way and restart libvirtd`);
  }
  if (v.error) return [{ id: 'accelerator', title, status: 'fail', detail: `${v.error.message} [${facts}]`, fix: v.error.hint }];
  if (v.domainType === 'kvm') {
    const probed = v.needsProbe ? '; not probed (--no-probe): the first build probes' : '';
    return [{ id: 'accelerator', title, status: 'ok', detail: `KVM: ${v.reason}${probed} [${facts}]` }];
  }
  if (v.basis === 'config') return [{ id: 'accelerator', title, status: 'ok', detail: `TCG: ${v.reason}` }];
  return [{ id: 'accelerator', title, status: 'warn', detail: `TCG (emulation, 5-20x slower than KVM): ${v.reason} [${facts}]`, ...(v.fix ? { fix: v.fix } : {}) }];
}

function describeFacts(f: AccelFacts): string {
  const dev = f.kvmDevice;
  const device = !dev.present ? `no ${dev.path}` : `${dev.path} ${dev.mode.toString(8).padStart(4, '0')} ${dev.owner ?? dev.uid}:${dev.group ?? dev.gid}`;
  const cpu = f.cpuFlags === null ? 'cpu flags unknown' : f.cpuFlags.vmx ? 'vmx' : f.cpuFlags.svm ? 'svm' : 'no vmx/svm';
  const modules = f.kvmModules === null ? 'modules unknown' : f.kvmModules.length ? `modules ${f.kvmModules.join(',')}` : 'no kvm module';
  const qemu = `QEMU runs as ${f.qemuUser.user}:${f.qemuUser.group}`;
  const probe = f.cachedProbe ? `; cached probe: ${f.cachedProbe.outcome} in ${f.cachedProbe.ms} ms` : '';
  return `${device}; ${cpu}; ${modules}; ${qemu}${probe}`;
}
