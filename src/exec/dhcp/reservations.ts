/**
 * DHCP reservations for a VM's MAC. Two places hold them: a libvirt network (LibvirtNetworkDhcp) or a dnsmasq
 * --dhcp-hostsdir directory (DnsmasqHostsDir). Both are idempotent: reserving twice, or releasing what is not
 * there, is success, because the build's undo and `vmforge recover` re-run them.
 */
import type { DhcpHostEntry, DhcpReservation } from '../../core/dhcp/reservation.js';

export interface ReserveResult {
  /** Entries for the same MAC, name or IP that were there before and were removed. */
  removedStale: DhcpHostEntry[];
  /** The exact reservation was already in place. */
  alreadyPresent: boolean;
}

export interface DhcpReservations {
  reserve(r: DhcpReservation, opts?: { signal?: AbortSignal }): Promise<ReserveResult>;
  /** Removes exactly this reservation (MAC, IP and name); absent is success. */
  release(r: DhcpReservation, opts?: { signal?: AbortSignal }): Promise<void>;
  list(opts?: { signal?: AbortSignal }): Promise<DhcpHostEntry[]>;
}
