/**
 * Undo records: plain JSON written to the journal BEFORE the side effect they undo, so a crashed process can
 * be undone by a fresh one. Every executor is idempotent: "already gone" is success.
 */
import type { DnsRecord } from '../core/dns/index.js';
import type { DhcpReservation } from '../core/dhcp/reservation.js';
import type { DhcpMode } from '../core/ipam/network.js';

/** Where DNS records were registered; the TSIG secret stays in its file and is never journaled. */
export interface DnsTarget {
  server: string;
  keyFile: string;
}

export type UndoRecord =
  | { kind: 'file.remove'; path: string }
  | { kind: 'dir.remove'; path: string }
  | { kind: 'loop.detach-backing'; backingFile: string }
  | { kind: 'mount.umount'; target: string }
  /** `argv` is the plan's `lvremove -y VG/LV` (a volume already gone is success). */
  | { kind: 'lv.remove'; argv: string[] }
  /**
   * A qemu-storage-daemon FUSE export of a qcow2 image. Journaled before the daemon starts, so it holds no pid:
   * the executor finds the daemon by the mountpoint in its command line.
   */
  | { kind: 'fuse.unexport'; exportPath: string; qcow2Path: string }
  /** Only the domain with this UUID: a same-named domain someone else defined is left alone. */
  | { kind: 'domain.remove'; name: string; uri: string; uuid: string }
  | { kind: 'inventory.forget'; name: string }
  | { kind: 'lease.release'; vm: string }
  | { kind: 'dhcp.release'; dhcp: DhcpMode; uri: string; reservation: DhcpReservation }
  /** Exactly these records: others at the same names are left alone. */
  | { kind: 'dns.remove'; settings: DnsTarget; records: DnsRecord[] };

export type UndoKind = UndoRecord['kind'];

export type UndoExecutor<K extends UndoKind> = (record: Extract<UndoRecord, { kind: K }>) => Promise<void>;

export type UndoRegistry = { [K in UndoKind]: UndoExecutor<K> };

export function describeUndo(r: UndoRecord): string {
  switch (r.kind) {
    case 'file.remove':
      return `remove file ${r.path}`;
    case 'dir.remove':
      return `remove directory ${r.path}`;
    case 'loop.detach-backing':
      return `detach loop devices of ${r.backingFile}`;
    case 'mount.umount':
      return `unmount ${r.target}`;
    case 'lv.remove':
      return `remove logical volume ${r.argv.at(-1) ?? '?'}`;
    case 'fuse.unexport':
      return `stop the FUSE export ${r.exportPath} of ${r.qcow2Path}`;
    case 'domain.remove':
      return `stop and undefine domain ${r.name}`;
    case 'inventory.forget':
      return `forget VM ${r.name} in the inventory`;
    case 'lease.release':
      return `release the address lease of ${r.vm}`;
    case 'dhcp.release':
      return `remove the DHCP reservation ${r.reservation.mac} ${r.reservation.ip} (${r.dhcp.mode === 'libvirt' ? `libvirt network ${r.dhcp.network}` : r.dhcp.mode === 'dnsmasq' ? r.dhcp.dir : 'none'})`;
    case 'dns.remove':
      return `remove DNS records ${r.records.map((x) => `${x.name} ${x.type}`).join(', ') || '(none)'}`;
  }
}

export async function runUndo(registry: UndoRegistry, record: UndoRecord): Promise<void> {
  const exec = registry[record.kind] as UndoExecutor<typeof record.kind>;
  await exec(record as never);
}
