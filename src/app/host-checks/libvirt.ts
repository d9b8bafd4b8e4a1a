/** libvirt: does it answer, and how fast (`virsh version`, and a define + undefine of a domain never started). */
import { randomBytes } from 'node:crypto';
import { latencyVerdict } from '../../core/host/check-report.js';
import { checkDomainName, checkDomainPid, checkDomainXml } from '../../core/host/check-domain.js';
import { formatUuid } from '../../core/ipam/mac.js';
import { VirshHypervisor } from '../../exec/libvirt/hypervisor.js';
import { timeDefine, timeVirshVersion } from '../../exec/libvirt/latency.js';
import { pidAlive } from '../../exec/pid.js';
import { findingOf, type CheckEnv, type Finding } from '../host-check.js';

/** A define can take ~50 s on a host whose /dev/kvm libvirt keeps re-probing: wait for it, to report the figure. */
const CALL_TIMEOUT_MS = 70_000;

export async function libvirtChecks(env: CheckEnv): Promise<Finding[]> {
  const { uri } = env.ctx.config.libvirt;
  const cause = env.notes.get('slow-libvirt-cause');
  const reach = await findingOf('libvirt.reachable', `libvirt at ${uri}`, async () => {
    const v = await timeVirshVersion(env.ctx.runner, uri, { timeoutMs: CALL_TIMEOUT_MS, signal: env.signal });
    const verdict = latencyVerdict(v.ms, "'virsh version'", cause);
    const hv = v.lines.find((l) => /^Running hypervisor:/i.test(l))?.replace(/^Running hypervisor:\s*/i, '');
    return { ...verdict, detail: `${hv ? `${hv}; ` : ''}${verdict.detail}` };
  });
  if (reach.status === 'fail') {
    return [{ ...reach, fix: reach.fix ?? 'start it: ./scripts/ensure-libvirt.sh, or systemctl start libvirtd (virtlogd -d; libvirtd -d without systemd)' }];
  }
  // A hypervisor of the check's own, with a bound: the build's default waits two minutes per call.
  const hv = new VirshHypervisor(env.ctx.runner, uri, { timeoutMs: CALL_TIMEOUT_MS });
  const define = await findingOf('libvirt.define', 'libvirt define + undefine', async () => {
    // A check killed between its define and undefine left its domain: gone before this one starts.
    for (const name of await hv.listAllNames()) {
      const pid = checkDomainPid(name);
      if (pid !== null && !pidAlive(pid)) await hv.undefine(name);
    }
    const name = checkDomainName(process.pid, randomBytes(4).toString('hex'));
    const ms = await timeDefine(hv, name, checkDomainXml(name, formatUuid(randomBytes(16)), 'qemu'));
    return latencyVerdict(ms, 'a define', cause);
  });
  return [reach, define];
}
