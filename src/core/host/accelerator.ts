/**
 * Which accelerator a KVM/QEMU domain gets: KVM only when a KVM guest really runs for the user libvirt starts
 * QEMU as. A root-openable /dev/kvm proves nothing: QEMU runs as qemu.conf's user (Debian: libvirt-qemu), and
 * a /dev/kvm without hardware virtualisation behind it (kvm_pvm, no vmx/svm flag) opens fine and then fails to
 * run an ordinary guest. So: cheap facts first, then (when they all say yes) a real probe guest, cached.
 */

export type ConfiguredDomainType = 'auto' | 'kvm' | 'qemu';

export interface KvmDeviceFacts {
  path: string;
  present: boolean;
  charDevice: boolean;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Names from /etc/passwd and /etc/group, for the messages; the numbers when unknown. */
  owner?: string;
  group?: string;
}

export interface QemuUserFacts {
  /** As written in qemu.conf (or libvirt's built-in default): a name, or "+N" for a uid/gid. */
  user: string;
  group: string;
  /** null: the name is not in /etc/passwd (/etc/group). */
  uid: number | null;
  gid: number | null;
  /** Every group the QEMU process has: its group plus the user's supplementary groups (libvirt calls initgroups). */
  groups: number[];
  /** Names of `groups`, same order, for the fix ("chgrp kvm ..."). */
  groupNames: string[];
  source: 'qemu.conf' | 'default';
}

export interface DomcapsFacts {
  /** Whether `virsh domcapabilities --virttype kvm` answered; a failure counts as "no kvm". */
  kvm: boolean;
  /** The emulator libvirt would run (its <path>). */
  emulator?: string;
  /** virsh's message when it failed. */
  error?: string;
}

export interface ProbeResult {
  /** The domain type the probe guest ran with (tests run the same probe with 'qemu'). */
  domainType: 'kvm' | 'qemu';
  /** The CPU mode the probe guest had: the one a build gives a domain of that type. */
  cpuMode: string;
  outcome: 'passed' | 'failed' | 'timeout';
  /** From `virsh create` to the marker (or to the failure). */
  ms: number;
  /** Of `ms`, the time `virsh create` took (QEMU's start-up); the rest is the guest's boot to the marker. */
  createMs?: number;
  /** One line: what happened (QEMU's error, or "no marker within 5000 ms"). */
  detail: string;
}

export interface AccelFacts {
  kvmDevice: KvmDeviceFacts;
  /** null: /proc/cpuinfo could not be read (no verdict from it). */
  cpuFlags: { vmx: boolean; svm: boolean } | null;
  /** Loaded modules whose name starts with "kvm" (kvm, kvm_intel, kvm_amd, kvm_pvm...); null: /proc/modules unreadable. */
  kvmModules: string[] | null;
  qemuUser: QemuUserFacts;
  /** null: not asked (the cheap facts already said no, or the caller skipped it). */
  domcaps: DomcapsFacts | null;
  /** A probe result still valid for this host boot, libvirt URI, device and QEMU binary; null: none. */
  cachedProbe: ProbeResult | null;
}

export interface AcceleratorVerdict {
  domainType: 'kvm' | 'qemu';
  /** kvm: KVM used; tcg: KVM not expected here (or not wanted); tcg-fallback: KVM could be expected but does not work. */
  status: 'kvm' | 'tcg' | 'tcg-fallback';
  /** One line: why. */
  reason: string;
  /** What to do to get KVM. */
  fix?: string;
  /** The facts all say yes and no probe result is at hand: the caller should run the probe and decide again. */
  needsProbe: boolean;
  probe?: ProbeResult;
  /** Where the answer came from: facts only, a probe run now, or the cached probe of this host boot. */
  basis: 'config' | 'facts' | 'probe' | 'cached-probe';
  /** Set when libvirt.domainType is 'kvm' and KVM cannot work: the build must refuse before any disk work. */
  error?: { message: string; hint: string };
}

/** The CPU mode a build gives a domain of each type (src/core/domain-xml/defaults.ts); the probe uses the same. */
export function buildCpuMode(domainType: 'kvm' | 'qemu'): string {
  return domainType === 'kvm' ? 'host-passthrough' : 'default';
}

/** Hardware KVM modules; any other kvm_* provider (kvm_pvm) does not run an ordinary guest. */
const HW_KVM_MODULES = ['kvm_intel', 'kvm_amd'];

interface Blocker {
  reason: string;
  fix: string;
  /** Fundamental: no fix on this host can make KVM work (no hardware virtualisation). */
  hard?: boolean;
}

/** The first fact that rules KVM out, or null when the cheap facts all allow it (domcaps when given). */
export function kvmBlocker(facts: Omit<AccelFacts, 'cachedProbe'>): Blocker | null {
  const dev = facts.kvmDevice;
  const flags = facts.cpuFlags;
  const hasFlag = flags !== null && (flags.vmx || flags.svm);
  const hwModule = facts.kvmModules?.find((m) => HW_KVM_MODULES.includes(m));
  const otherModules = (facts.kvmModules ?? []).filter((m) => m !== 'kvm' && !HW_KVM_MODULES.includes(m));
  if (!dev.present) {
    if (hasFlag) {
      const mod = flags.vmx ? 'kvm_intel' : 'kvm_amd';
      return { reason: `no ${dev.path}, though the CPU has ${flags.vmx ? 'vmx' : 'svm'}: the ${mod} module is not loaded`, fix: `modprobe ${mod} (and enable virtualisation in the firmware if it fails)` };
    }
    return { reason: `no ${dev.path} on this host`, fix: 'run on a host with hardware virtualisation (vmx/svm) and the kvm_intel or kvm_amd module', hard: true };
  }
  if (!dev.charDevice) {
    return { reason: `${dev.path} is not a character device`, fix: `remove ${dev.path} and load kvm_intel or kvm_amd, which create the real device` };
  }
  if (flags !== null && !hasFlag) {
    const served = otherModules.length ? ` (${dev.path} is served by ${otherModules.join(', ')})` : '';
    return {
      reason: `no vmx or svm flag in /proc/cpuinfo${served}: an ordinary KVM guest does not run here`,
      fix: 'run on a host (or a VM with nested virtualisation) whose CPU shows vmx or svm; set libvirt.domainType: qemu to use TCG without this note',
      hard: true,
    };
  }
  if (facts.kvmModules !== null && !hwModule && otherModules.length) {
    return {
      reason: `${dev.path} is served by ${otherModules.join(', ')}, not kvm_intel or kvm_amd: an ordinary KVM guest does not run here`,
      fix: 'load kvm_intel or kvm_amd instead; set libvirt.domainType: qemu to use TCG without this note',
      hard: true,
    };
  }
  const access = qemuCanOpen(dev, facts.qemuUser);
  if (access === false) {
    const q = facts.qemuUser;
    const groups = q.groupNames.filter((g) => g !== q.group);
    const runsAs = `${q.user}:${q.group}${groups.length ? ` (groups ${groups.join(',')})` : ''}`;
    const fixGroup = q.groupNames.includes('kvm') ? 'kvm' : q.group.replace(/^\+/, '');
    return {
      reason: `${dev.path} is ${octal(dev.mode)} ${dev.owner ?? dev.uid}:${dev.group ?? dev.gid}: libvirt's QEMU runs as ${runsAs}`,
      fix: `chgrp ${fixGroup} ${dev.path} && chmod 660 ${dev.path}, or install udev (its rules make it root:kvm 0660)`,
    };
  }
  if (facts.domcaps && !facts.domcaps.kvm) {
    const detail = facts.domcaps.error ? `: ${firstLine(facts.domcaps.error)}` : '';
    return {
      reason: `libvirt does not offer kvm domains (virsh domcapabilities --virttype kvm${detail})`,
      fix: 'restart libvirtd after fixing /dev/kvm (it caches what QEMU can do); see /var/log/libvirt/libvirtd.log',
    };
  }
  return null;
}

/**
 * Whether libvirt's QEMU user can open the device read-write: the same owner/group/other choice the kernel
 * makes. null when that user or group is not known here (the probe decides then).
 */
export function qemuCanOpen(dev: KvmDeviceFacts, q: QemuUserFacts): boolean | null {
  if (q.uid === null) return null;
  const rw = (bits: number) => (bits & 0o6) === 0o6;
  if (q.uid === dev.uid) return rw(dev.mode >> 6);
  const groups = q.gid === null ? q.groups : [q.gid, ...q.groups];
  if (groups.includes(dev.gid)) return rw(dev.mode >> 3);
  return rw(dev.mode);
}

export function decideAccelerator(facts: AccelFacts, configured: ConfiguredDomainType, probe?: ProbeResult): AcceleratorVerdict {
  if (configured === 'qemu') {
    return { domainType: 'qemu', status: 'tcg', reason: 'libvirt.domainType is qemu: TCG emulation, as configured', needsProbe: false, basis: 'config' };
  }
  const auto = autoVerdict(facts, probe);
  if (configured === 'auto' || auto.domainType === 'kvm') return auto;
  return {
    ...auto,
    error: {
      message: `libvirt.domainType is kvm, but a KVM guest cannot run on this host: ${auto.reason}`,
      hint: `${auto.fix ? `${auto.fix}; or ` : ''}set libvirt.domainType: auto (or qemu) to build with TCG emulation`,
    },
  };
}

function autoVerdict(facts: AccelFacts, probe: ProbeResult | undefined): AcceleratorVerdict {
  const blocker = kvmBlocker(facts);
  if (blocker) {
    // Nothing to expect without a device and without CPU support: TCG is simply what this host has.
    const expected = facts.kvmDevice.present || !blocker.hard;
    return { domainType: 'qemu', status: expected ? 'tcg-fallback' : 'tcg', reason: blocker.reason, fix: blocker.fix, needsProbe: false, basis: 'facts' };
  }
  const want = buildCpuMode('kvm');
  const fresh = probe?.domainType === 'kvm' && probe.cpuMode === want ? probe : undefined;
  const cached = facts.cachedProbe?.domainType === 'kvm' && facts.cachedProbe.cpuMode === want ? facts.cachedProbe : undefined;
  const p = fresh ?? cached;
  const basis = fresh ? 'probe' : 'cached-probe';
  if (!p) {
    return { domainType: 'kvm', status: 'kvm', reason: `${facts.kvmDevice.path} is usable by libvirt's QEMU user (not probed yet)`, needsProbe: true, basis: 'facts' };
  }
  if (p.outcome === 'passed') {
    return { domainType: 'kvm', status: 'kvm', reason: `a KVM test guest (${p.cpuMode}) ran in ${p.ms} ms`, needsProbe: false, probe: p, basis };
  }
  const what = p.outcome === 'timeout' ? `did not print on its serial console in time (${firstLine(p.detail)})` : `failed: ${firstLine(p.detail)}`;
  return {
    domainType: 'qemu',
    status: 'tcg-fallback',
    reason: `a KVM test guest (${p.cpuMode}) ${what}`,
    fix: 'check that the CPU virtualisation and kvm module work for ordinary guests (dmesg, /var/log/libvirt/qemu/); set libvirt.domainType: qemu to use TCG without this note',
    needsProbe: false,
    probe: p,
    basis,
  };
}

/** The one line a build prints when it uses TCG although KVM could be expected; null when there is nothing to say. */
export function acceleratorNote(v: AcceleratorVerdict): string | null {
  if (v.status !== 'tcg-fallback') return null;
  return `using TCG (slow emulation), not KVM: ${v.reason}${v.fix ? `; fix: ${v.fix}` : ''}`;
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0] ?? '';
}
