/**
 * Change sets: from the records to register (or remove) and what the server holds now, the per-zone RFC 2136
 * updates and the nsupdate script text for each. Registration never silently replaces: a name or reverse name
 * that already holds another value is a conflict unless forced. Prerequisites make each zone's update atomic
 * against what was looked up (a concurrent change makes it fail with YXRRSET/NXRRSET instead of clobbering).
 */
import { VmforgeError } from '../../errors.js';
import { byZone, formatRecord, normalizeValue, type DnsRecord } from './records.js';

/** One record the server holds (as parsed from dig). */
export interface DnsAnswer {
  name: string;
  type: string;
  ttl: number;
  value: string;
}

export interface DnsConflict {
  record: DnsRecord;
  /** What is there instead (same name, same type, or a CNAME). */
  existing: DnsAnswer[];
}

export interface ZoneUpdate {
  zone: string;
  /** nsupdate 'prereq ...' lines. */
  prereqs: string[];
  /** nsupdate 'update ...' lines. */
  updates: string[];
  /** The records this update adds (for rollback: remove exactly these). */
  records: DnsRecord[];
}

export interface RegistrationPlan {
  conflicts: DnsConflict[];
  /** Records already present with exactly this value (re-registration is a no-op for them). */
  present: DnsRecord[];
  updates: ZoneUpdate[];
}

/** 'web1.example.com. A 10.20.0.9 exists' for each conflicting value. */
export function describeConflict(c: DnsConflict): string {
  return c.existing.map((a) => `${formatRecord(a)} exists`).join(', ');
}

/**
 * Plans registering `records` given `observed` (everything looked up at their owner names). With `force`,
 * conflicting RRsets of the same type are deleted and replaced; other types at the name (TXT, MX...) are never
 * touched. A CNAME at the name is a conflict even when forced: deleting it is beyond what the VM owns.
 */
export function planRegistration(records: readonly DnsRecord[], observed: readonly DnsAnswer[], opts: { force?: boolean } = {}): RegistrationPlan {
  const conflicts: DnsConflict[] = [];
  const present: DnsRecord[] = [];
  const updates: ZoneUpdate[] = [];
  records.forEach(checkRecord);
  for (const [zone, recs] of byZone(records)) {
    const zu: ZoneUpdate = { zone, prereqs: [], updates: [], records: [] };
    for (const r of recs) {
      const atName = observed.filter((a) => a.name.toLowerCase() === r.name);
      const cname = atName.filter((a) => a.type === 'CNAME');
      const same = atName.filter((a) => a.type === r.type);
      const want = normalizeValue(r.type, r.value);
      const others = same.filter((a) => normalizeValue(a.type, a.value) !== want);
      if (cname.length) {
        conflicts.push({ record: r, existing: cname });
        continue;
      }
      if (same.length === 1 && !others.length) {
        present.push(r);
        // Value-dependent prerequisite: the RRset is exactly this record; the add refreshes its TTL.
        zu.prereqs.push(`prereq yxrrset ${r.name} IN ${r.type} ${r.value}`);
        zu.updates.push(addLine(r));
        continue;
      }
      if (same.length) {
        if (!opts.force) {
          conflicts.push({ record: r, existing: others });
          continue;
        }
        zu.updates.push(`update delete ${r.name} IN ${r.type}`);
      } else {
        zu.prereqs.push(`prereq nxrrset ${r.name} IN ${r.type}`);
      }
      zu.updates.push(addLine(r));
      zu.records.push(r);
    }
    if (zu.updates.length) updates.push(zu);
  }
  return { conflicts, present, updates };
}

/** Removing: delete exactly these RRs (name, type and value), nothing else at the names. Idempotent in DNS. */
export function planRemoval(records: readonly DnsRecord[]): ZoneUpdate[] {
  records.forEach(checkRecord);
  return [...byZone(records)].map(([zone, recs]) => ({
    zone,
    prereqs: [],
    updates: recs.map((r) => `update delete ${r.name} IN ${r.type} ${r.value}`),
    records: recs,
  }));
}

/** The nsupdate script for one zone update (one message, one `send`). */
export function nsupdateScript(server: { host: string; port: number }, zu: ZoneUpdate): string {
  return [`server ${server.host} ${server.port}`, `zone ${zu.zone}`, ...zu.prereqs, ...zu.updates, 'send', ''].join('\n');
}

function addLine(r: DnsRecord): string {
  return `update add ${r.name} ${r.ttl} IN ${r.type} ${r.value}`;
}

const NAME_RE = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.$/;
const VALUE_RE: Record<DnsRecord['type'], RegExp> = { A: /^\d{1,3}(\.\d{1,3}){3}$/, AAAA: /^[0-9a-f:]+$/, PTR: NAME_RE };

/**
 * Records may come back from the journal rather than from planDnsRecords: whatever goes into a script line must
 * still be one token, so nothing can add lines to the update.
 */
function checkRecord(r: DnsRecord): void {
  const ok = NAME_RE.test(r.zone) && NAME_RE.test(r.name) && VALUE_RE[r.type]?.test(r.value) && Number.isInteger(r.ttl) && r.ttl >= 0;
  if (!ok) throw new VmforgeError('INTERNAL', `not a well-formed DNS record: ${JSON.stringify(r)}`);
}
