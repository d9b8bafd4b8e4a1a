/**
 * DNS registration of a VM's addresses. The records come from planDnsRecords (src/core/dns); a registrar puts
 * them on the authoritative server and takes exactly them off again.
 */
import type { DnsAnswer, DnsConflict, DnsRecord, DnsRrType } from '../../core/dns/index.js';

export interface DnsRegisterResult {
  /** Records this call added (absent before, or replaced with force). */
  added: DnsRecord[];
  /** Records that were already there with exactly this value (left as they were). */
  present: DnsRecord[];
  /** With force: what was there before and is gone now. */
  replaced: DnsConflict[];
}

export interface DnsRegistrar {
  /**
   * Adds the records. A name (or reverse name) that holds another value is a CONFLICT naming the record that
   * exists, and nothing is changed, unless `force` (then that RRset of the same type is replaced). If a later
   * zone's update fails, the records already added in earlier zones are removed again before the error is thrown.
   */
  register(records: readonly DnsRecord[], opts?: { force?: boolean; signal?: AbortSignal }): Promise<DnsRegisterResult>;
  /** Deletes exactly these RRs (name, type, value); absent ones are fine. Other records at the names stay. */
  unregister(records: readonly DnsRecord[], opts?: { signal?: AbortSignal }): Promise<void>;
  /** What the server holds at `name` for these types (default A, AAAA, PTR and CNAME). */
  lookup(name: string, types?: readonly (DnsRrType | 'CNAME' | 'TXT' | 'SOA')[], opts?: { signal?: AbortSignal }): Promise<DnsAnswer[]>;
}
