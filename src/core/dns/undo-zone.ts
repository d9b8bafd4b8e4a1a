/**
 * The zone an undo sends each record's removal to. An undo record keeps the zone computed at build time, so a
 * wrong `dns.reverseZone` (a zone the server does not hold) would make the removal fail for ever, whatever the
 * admin fixes. The zone is therefore taken again from the current settings wherever they name a zone that holds
 * the record's owner name; only where they do not (the settings moved on to other zones) does the stored one stay.
 */
import { inZone, normalizeZone } from './names.js';
import type { DnsRecord } from './records.js';
import type { DnsSettings } from './settings.js';

export function zonesForUndo(records: readonly DnsRecord[], current: Pick<DnsSettings, 'zone' | 'reverseZone' | 'reverseZone6'> | undefined): DnsRecord[] {
  if (!current) return [...records];
  const candidates = (r: DnsRecord): (string | undefined)[] =>
    r.type === 'PTR' ? (r.name.endsWith('.ip6.arpa.') ? [current.reverseZone6] : [current.reverseZone]) : [current.zone];
  return records.map((r) => {
    for (const c of candidates(r)) {
      if (!c) continue;
      let zone: string;
      try {
        zone = normalizeZone(c);
      } catch {
        continue;
      }
      if (inZone(r.name, zone) && r.name !== zone) return { ...r, zone };
    }
    return r;
  });
}
