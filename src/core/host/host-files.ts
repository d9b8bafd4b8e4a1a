/**
 * Parsers for the host files the accelerator decision reads (/proc/cpuinfo, /proc/modules, libvirt's qemu.conf,
 * /etc/passwd, /etc/group), and the resolution of the user and groups libvirt starts QEMU as.
 */
import type { QemuUserFacts } from './accelerator.js';

export function parseCpuFlags(cpuinfo: string): { vmx: boolean; svm: boolean } {
  let vmx = false;
  let svm = false;
  for (const line of cpuinfo.split('\n')) {
    const m = /^flags\s*:(.*)$/.exec(line);
    if (!m?.[1]) continue;
    const flags = m[1].trim().split(/\s+/);
    vmx ||= flags.includes('vmx');
    svm ||= flags.includes('svm');
  }
  return { vmx, svm };
}

/** Loaded modules named kvm or kvm_* (first column of /proc/modules). */
export function parseKvmModules(modules: string): string[] {
  return modules
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n === 'kvm' || n.startsWith('kvm_'));
}

/**
 * `user = "..."` / `group = "..."` of qemu.conf. libvirt's packaging fills the commented examples
 * (`#user = "libvirt-qemu"`) with its built-in defaults, so those are read as the defaults.
 */
export function parseQemuConf(text: string): { user?: string; group?: string; defaultUser?: string; defaultGroup?: string } {
  const out: { user?: string; group?: string; defaultUser?: string; defaultGroup?: string } = {};
  for (const line of text.split('\n')) {
    const set = /^\s*(user|group)\s*=\s*"([^"]*)"/.exec(line);
    if (set?.[1] && set[2] !== undefined) {
      out[set[1] as 'user' | 'group'] = set[2];
      continue;
    }
    const def = /^#(user|group)\s*=\s*"([^"]+)"\s*$/.exec(line);
    if (def?.[1] && def[2] !== undefined) out[def[1] === 'user' ? 'defaultUser' : 'defaultGroup'] = def[2];
  }
  return out;
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export function parsePasswd(text: string): PasswdEntry[] {
  return text
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 4 && f[0] && /^\d+$/.test(f[2] ?? '') && /^\d+$/.test(f[3] ?? ''))
    .map((f) => ({ name: f[0] as string, uid: Number(f[2]), gid: Number(f[3]) }));
}

export function parseGroup(text: string): GroupEntry[] {
  return text
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 3 && f[0] && /^\d+$/.test(f[2] ?? ''))
    .map((f) => ({ name: f[0] as string, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }));
}

/** Debian's libvirt (qemu_user/qemu_group of its build) when qemu.conf says nothing. */
export const DEBIAN_QEMU_USER = 'libvirt-qemu';
export const DEBIAN_QEMU_GROUP = 'libvirt-qemu';

/**
 * The uid, gid and every group QEMU gets, as libvirt resolves qemu.conf: "+N" is a number, a name is looked
 * up, a number that is no name is the number. The groups are the gid plus the user's supplementary groups.
 */
export function resolveQemuUser(conf: ReturnType<typeof parseQemuConf>, passwd: PasswdEntry[], groups: GroupEntry[]): QemuUserFacts {
  const user = conf.user ?? conf.defaultUser ?? DEBIAN_QEMU_USER;
  const group = conf.group ?? conf.defaultGroup ?? DEBIAN_QEMU_GROUP;
  const pw = lookup(user, passwd, (p) => p.uid);
  const uid = pw ? pw.uid : numeric(user);
  const gr = lookup(group, groups, (g) => g.gid);
  const gid = gr ? gr.gid : numeric(group);
  const userName = pw?.name ?? user;
  const all = new Set<number>();
  if (gid !== null) all.add(gid);
  for (const g of groups) if (g.members.includes(userName)) all.add(g.gid);
  const ids = [...all];
  const nameOf = (id: number) => groups.find((g) => g.gid === id)?.name ?? String(id);
  return {
    user,
    group,
    uid,
    gid,
    groups: ids,
    groupNames: ids.map(nameOf),
    source: conf.user !== undefined || conf.group !== undefined ? 'qemu.conf' : 'default',
  };
}

function lookup<T extends { name: string }>(spec: string, entries: T[], id: (e: T) => number): T | undefined {
  if (spec.startsWith('+')) return entries.find((e) => id(e) === Number(spec.slice(1)));
  return entries.find((e) => e.name === spec) ?? (/^\d+$/.test(spec) ? entries.find((e) => id(e) === Number(spec)) : undefined);
}

function numeric(spec: string): number | null {
  const m = /^\+?(\d+)$/.exec(spec);
  return m ? Number(m[1]) : null;
}
