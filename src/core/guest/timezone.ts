/** The guest's time zone: /etc/localtime links into the guest's own zoneinfo, as timedatectl makes it. */
import { VmforgeError, invalidInput } from '../../errors.js';
import type { FileEdit } from '../model/spec.js';
import { quoteForMessage } from '../names.js';

const ZONEINFO = '/usr/share/zoneinfo';
const ZONE_RE = /^[A-Za-z0-9_+-]+(?:\/[A-Za-z0-9_+-]+)*$/;

export function validateTimezone(zone: string): string {
  if (!ZONE_RE.test(zone) || zone.split('/').some((p) => p.startsWith('.') || p.startsWith('-'))) {
    throw invalidInput(`time zone ${quoteForMessage(zone)} is not a zoneinfo name`, "give an IANA name like 'Europe/Berlin' or 'UTC'");
  }
  return zone;
}

/**
 * Refuses, before any disk work, a name that is no time zone at all ('Europe/Nowhere'). Checked against the IANA
 * database compiled into Node (ICU): the same answer on every host, unlike the host's /usr/share/zoneinfo (which
 * need not match the guest's, or exist), and the bundle manifest does not list zoneinfo. The guest's own zoneinfo
 * is still checked when the disk is edited (timezoneEdits), for a template without tzdata.
 */
export function requireKnownTimezone(zone: string): string {
  validateTimezone(zone);
  // zoneinfo's posix/ and right/ trees hold the same names.
  const name = zone.replace(/^(posix|right)\//, '');
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    throw invalidInput(`time zone ${quoteForMessage(zone)} is not a known zone`, "give an IANA name like 'Europe/Berlin' or 'UTC'; list them with 'timedatectl list-timezones' (or look under /usr/share/zoneinfo)");
  }
  // ICU matches names in any case; zoneinfo file names are case-sensitive.
  if (resolved !== name && resolved.toLowerCase() === name.toLowerCase()) {
    throw invalidInput(`time zone ${quoteForMessage(zone)} is not spelt as zoneinfo spells it`, `use '${resolved}'`);
  }
  return zone;
}

/** The directory whose listing shows whether the zone exists in the guest ('/usr/share/zoneinfo/Europe'). */
export function zoneDirOf(zone: string): string {
  const parts = zone.split('/');
  return [ZONEINFO, ...parts.slice(0, -1)].join('/');
}

/**
 * `zoneDirEntries` is the listing of zoneDirOf(zone): a zone the guest lacks would leave /etc/localtime dangling and
 * the guest silently on UTC. Debian-family guests also keep the name in /etc/timezone (tzdata's debconf reads it).
 */
export function timezoneEdits(zone: string, zoneDirEntries: readonly string[], opts: { etcTimezone: boolean; sysconfigClock?: string | null }): FileEdit[] {
  validateTimezone(zone);
  const base = zone.split('/').pop()!;
  if (!zoneDirEntries.includes(base)) {
    throw new VmforgeError('NOT_FOUND', `time zone ${quoteForMessage(zone)} is not in the guest's ${ZONEINFO}`, {
      hint: 'check the name, or install tzdata in the template',
    });
  }
  const edits: FileEdit[] = [{ kind: 'symlink', path: '/etc/localtime', target: `${ZONEINFO}/${zone}` }];
  if (opts.etcTimezone) edits.push({ kind: 'write', path: '/etc/timezone', content: `${zone}\n` });
  // RHEL 6's tzdata-update copies ZONE from here over /etc/localtime at every tzdata update.
  if (opts.sysconfigClock !== undefined && opts.sysconfigClock !== null) {
    const lines = opts.sysconfigClock.split('\n').filter((l) => !/^\s*ZONE=/.test(l) && l !== '');
    edits.push({ kind: 'write', path: '/etc/sysconfig/clock', content: `${[`ZONE="${zone}"`, ...lines].join('\n')}\n` });
  }
  return edits;
}
