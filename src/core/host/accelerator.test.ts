import { describe, expect, it } from 'vitest';
import { acceleratorNote, decideAccelerator, qemuCanOpen, type AccelFacts, type ProbeResult } from './accelerator.js';

/** A host where KVM works: Intel CPU, kvm_intel, /dev/kvm root:kvm 0660, Debian's libvirt-qemu in group kvm. */
function goodHost(over: Partial<AccelFacts> = {}): AccelFacts {
  return {
    kvmDevice: { path: '/dev/kvm', present: true, charDevice: true, mode: 0o660, uid: 0, gid: 108, owner: 'root', group: 'kvm' },
    cpuFlags: { vmx: true, svm: false },
    kvmModules: ['kvm_intel', 'kvm'],
    qemuUser: { user: 'libvirt-qemu', group: 'libvirt-qemu', uid: 64055, gid: 64055, groups: [108, 64055], groupNames: ['kvm', 'libvirt-qemu'], source: 'default' },
    domcaps: { kvm: true, emulator: '/usr/bin/qemu-system-x86_64' },
    cachedProbe: null,
    ...over,
  };
}

const passed: ProbeResult = { domainType: 'kvm', cpuMode: 'host-passthrough', outcome: 'passed', ms: 412, detail: 'marker seen' };
const failed: ProbeResult = { domainType: 'kvm', cpuMode: 'host-passthrough', outcome: 'failed', ms: 300, detail: 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0\nmore' };
const timedOut: ProbeResult = { domainType: 'kvm', cpuMode: 'host-passthrough', outcome: 'timeout', ms: 5000, detail: 'no marker within 5000 ms' };

describe('decideAccelerator (auto)', () => {
  it('no /dev/kvm and no CPU flags: plain TCG, no note, no probe', () => {
    const v = decideAccelerator(goodHost({ kvmDevice: { path: '/dev/kvm', present: false, charDevice: false, mode: 0, uid: 0, gid: 0 }, cpuFlags: { vmx: false, svm: false }, kvmModules: [] }), 'auto');
    expect(v).toMatchObject({ domainType: 'qemu', status: 'tcg', needsProbe: false, reason: 'no /dev/kvm on this host' });
    expect(acceleratorNote(v)).toBeNull();
    expect(v.error).toBeUndefined();
  });

  it('no /dev/kvm though the CPU has vmx: fallback that names the module to load', () => {
    const v = decideAccelerator(goodHost({ kvmDevice: { path: '/dev/kvm', present: false, charDevice: false, mode: 0, uid: 0, gid: 0 }, kvmModules: [] }), 'auto');
    expect(v.status).toBe('tcg-fallback');
    expect(v.fix).toContain('modprobe kvm_intel');
    expect(acceleratorNote(v)).toMatch(/^using TCG .*no \/dev\/kvm, though the CPU has vmx.*fix: modprobe kvm_intel/);
  });

  it('/dev/kvm that is not a character device', () => {
    const v = decideAccelerator(goodHost({ kvmDevice: { path: '/dev/kvm', present: true, charDevice: false, mode: 0o644, uid: 0, gid: 0 } }), 'auto');
    expect(v).toMatchObject({ domainType: 'qemu', status: 'tcg-fallback', reason: '/dev/kvm is not a character device', needsProbe: false });
  });

  it('0600 root:root with QEMU as libvirt-qemu: the reason and fix of the issue', () => {
    const v = decideAccelerator(goodHost({ kvmDevice: { path: '/dev/kvm', present: true, charDevice: true, mode: 0o600, uid: 0, gid: 0, owner: 'root', group: 'root' } }), 'auto');
    expect(v.domainType).toBe('qemu');
    expect(v.status).toBe('tcg-fallback');
    expect(v.reason).toBe("/dev/kvm is 0600 root:root: libvirt's QEMU runs as libvirt-qemu:libvirt-qemu (groups kvm)");
    expect(v.fix).toBe('chgrp kvm /dev/kvm && chmod 660 /dev/kvm, or install udev (its rules make it root:kvm 0660)');
    expect(v.needsProbe).toBe(false);
  });

  it('right mode but a group the QEMU user is not in', () => {
    const v = decideAccelerator(goodHost({ kvmDevice: { path: '/dev/kvm', present: true, charDevice: true, mode: 0o660, uid: 0, gid: 999, owner: 'root', group: 'other' } }), 'auto');
    expect(v.status).toBe('tcg-fallback');
    expect(v.reason).toMatch(/^\/dev\/kvm is 0660 root:other: libvirt's QEMU runs as/);
  });

  it('QEMU as root (qemu.conf user = "root") opens a 0600 root:root device: goes on to the probe', () => {
    const v = decideAccelerator(
      goodHost({
        kvmDevice: { path: '/dev/kvm', present: true, charDevice: true, mode: 0o600, uid: 0, gid: 0 },
        qemuUser: { user: 'root', group: 'root', uid: 0, gid: 0, groups: [0], groupNames: ['root'], source: 'qemu.conf' },
      }),
      'auto',
    );
    expect(v).toMatchObject({ domainType: 'kvm', needsProbe: true, basis: 'facts' });
  });

  it('no vmx/svm flag with /dev/kvm served by kvm_pvm: fallback before the permission question', () => {
    const v = decideAccelerator(
      goodHost({ cpuFlags: { vmx: false, svm: false }, kvmModules: ['kvm_pvm', 'kvm'], kvmDevice: { path: '/dev/kvm', present: true, charDevice: true, mode: 0o600, uid: 0, gid: 0 } }),
      'auto',
    );
    expect(v.status).toBe('tcg-fallback');
    expect(v.reason).toBe('no vmx or svm flag in /proc/cpuinfo (/dev/kvm is served by kvm_pvm): an ordinary KVM guest does not run here');
    expect(v.needsProbe).toBe(false);
  });

  it('CPU flags unreadable but only kvm_pvm loaded: still no hardware KVM', () => {
    const v = decideAccelerator(goodHost({ cpuFlags: null, kvmModules: ['kvm_pvm', 'kvm'] }), 'auto');
    expect(v.status).toBe('tcg-fallback');
    expect(v.reason).toMatch(/served by kvm_pvm, not kvm_intel or kvm_amd/);
  });

  it('modules unreadable (no /proc/modules): decided by the other facts', () => {
    expect(decideAccelerator(goodHost({ kvmModules: null }), 'auto')).toMatchObject({ domainType: 'kvm', needsProbe: true });
  });

  it('domcapabilities without kvm', () => {
    const v = decideAccelerator(goodHost({ domcaps: { kvm: false, error: "error: invalid argument: KVM is not supported by '/usr/bin/qemu-system-x86_64' on this host\n" } }), 'auto');
    expect(v.status).toBe('tcg-fallback');
    expect(v.reason).toBe("libvirt does not offer kvm domains (virsh domcapabilities --virttype kvm: error: invalid argument: KVM is not supported by '/usr/bin/qemu-system-x86_64' on this host)");
  });

  it('all facts good, no probe yet: kvm but needsProbe', () => {
    const v = decideAccelerator(goodHost(), 'auto');
    expect(v).toMatchObject({ domainType: 'kvm', status: 'kvm', needsProbe: true, basis: 'facts' });
    expect(acceleratorNote(v)).toBeNull();
  });

  it('probe passes: kvm', () => {
    const v = decideAccelerator(goodHost(), 'auto', passed);
    expect(v).toMatchObject({ domainType: 'kvm', status: 'kvm', needsProbe: false, basis: 'probe', probe: passed, reason: 'a KVM test guest (host-passthrough) ran in 412 ms' });
  });

  it('probe fails: TCG with the first line of QEMU\'s error', () => {
    const v = decideAccelerator(goodHost(), 'auto', failed);
    expect(v).toMatchObject({ domainType: 'qemu', status: 'tcg-fallback', needsProbe: false, basis: 'probe' });
    expect(v.reason).toBe('a KVM test guest (host-passthrough) failed: qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0');
    expect(acceleratorNote(v)).toContain('fix: ');
  });

  it('probe times out: TCG', () => {
    const v = decideAccelerator(goodHost(), 'auto', timedOut);
    expect(v).toMatchObject({ domainType: 'qemu', status: 'tcg-fallback' });
    expect(v.reason).toMatch(/did not print on its serial console in time \(no marker within 5000 ms\)/);
  });

  it('a cached probe counts as a probe; a fresh one wins over it', () => {
    expect(decideAccelerator(goodHost({ cachedProbe: failed }), 'auto')).toMatchObject({ domainType: 'qemu', basis: 'cached-probe' });
    expect(decideAccelerator(goodHost({ cachedProbe: failed }), 'auto', passed)).toMatchObject({ domainType: 'kvm', basis: 'probe' });
  });

  it('a probe of another type or CPU mode says nothing about KVM', () => {
    const tcgProbe: ProbeResult = { ...passed, domainType: 'qemu', cpuMode: 'default' };
    expect(decideAccelerator(goodHost(), 'auto', tcgProbe)).toMatchObject({ domainType: 'kvm', needsProbe: true });
    expect(decideAccelerator(goodHost({ cachedProbe: { ...failed, cpuMode: 'qemu64' } }), 'auto')).toMatchObject({ needsProbe: true });
  });
});

describe('decideAccelerator (forced)', () => {
  it("'qemu': TCG whatever the host, nothing to probe, no note", () => {
    const v = decideAccelerator(goodHost(), 'qemu');
    expect(v).toMatchObject({ domainType: 'qemu', status: 'tcg', needsProbe: false, basis: 'config' });
    expect(acceleratorNote(v)).toBeNull();
  });

  it("'kvm' on a good host: kvm, probed like auto", () => {
    expect(decideAccelerator(goodHost(), 'kvm')).toMatchObject({ domainType: 'kvm', needsProbe: true });
    expect(decideAccelerator(goodHost(), 'kvm', passed).error).toBeUndefined();
  });

  it("'kvm' on a bad host: an error with the reason and the fix", () => {
    const v = decideAccelerator(goodHost({ kvmDevice: { path: '/dev/kvm', present: true, charDevice: true, mode: 0o600, uid: 0, gid: 0, owner: 'root', group: 'root' } }), 'kvm');
    expect(v.error?.message).toBe("libvirt.domainType is kvm, but a KVM guest cannot run on this host: /dev/kvm is 0600 root:root: libvirt's QEMU runs as libvirt-qemu:libvirt-qemu (groups kvm)");
    expect(v.error?.hint).toMatch(/^chgrp kvm \/dev\/kvm && chmod 660 \/dev\/kvm.*; or set libvirt.domainType: auto \(or qemu\)/);
  });

  it("'kvm' with no device, and with a failed probe: errors too", () => {
    const none = goodHost({ kvmDevice: { path: '/dev/kvm', present: false, charDevice: false, mode: 0, uid: 0, gid: 0 }, cpuFlags: { vmx: false, svm: false } });
    expect(decideAccelerator(none, 'kvm').error?.message).toMatch(/no \/dev\/kvm on this host$/);
    expect(decideAccelerator(goodHost(), 'kvm', timedOut).error?.message).toMatch(/did not print on its serial console/);
  });
});

describe('qemuCanOpen', () => {
  const dev = { path: '/dev/kvm', present: true, charDevice: true, mode: 0o660, uid: 0, gid: 108 };
  const q = { user: 'u', group: 'g', uid: 1000, gid: 1000, groups: [], groupNames: [], source: 'qemu.conf' as const };
  it('owner, group (primary or supplementary), other; unknown user: null', () => {
    expect(qemuCanOpen({ ...dev, uid: 1000, mode: 0o600 }, q)).toBe(true);
    expect(qemuCanOpen({ ...dev, uid: 1000, mode: 0o066 }, q)).toBe(false);
    expect(qemuCanOpen(dev, { ...q, gid: 108 })).toBe(true);
    expect(qemuCanOpen(dev, { ...q, groups: [108] })).toBe(true);
    expect(qemuCanOpen({ ...dev, mode: 0o640 }, { ...q, groups: [108] })).toBe(false);
    expect(qemuCanOpen(dev, q)).toBe(false);
    expect(qemuCanOpen({ ...dev, mode: 0o666 }, q)).toBe(true);
    expect(qemuCanOpen(dev, { ...q, uid: null })).toBeNull();
  });
});
