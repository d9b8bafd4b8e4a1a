/**
 * DHCP reservations (MAC -> IPv4 + host name) in the two forms vmforge writes: a libvirt network's
 * `<ip><dhcp><host mac= name= ip=/>` entries (through `virsh net-update`), and dnsmasq `--dhcp-hostsdir` lines
 * `MAC,IP,NAME`. Pure: rendering, parsing and deciding which existing entries are stale.
 */
import { invalidInput } from '../../errors.js';
import { formatIpv4, parseIpv4 } from '../ipam/ipv4.js';
import { normalizeMac } from '../ipam/mac.js';
import { validateHostname } from '../names.js';

export interface DhcpReservation {
  mac: string;
  ip: string;
  /** One host-name label (what the guest is told and what dnsmasq puts in its DNS). */
  name: string;
}

/** An entry found in a network or hosts dir; any attribute may be missing in hand-written ones. */
export interface DhcpHostEntry {
  mac?: string;
  ip?: string;
  name?: string;
}

export function validateReservation(r: DhcpReservation): DhcpReservation {
  return { mac: normalizeMac(r.mac), ip: formatIpv4(parseIpv4(r.ip, 'DHCP reservation address')), name: validateHostname(r.name, 'DHCP host name') };
}

/** `<host mac='..' name='..' ip='..'/>` with only the attributes present (libvirt matches on all given). */
export function hostElementXml(e: DhcpHostEntry): string {
  const attrs = (['mac', 'name', 'ip'] as const).filter((k) => e[k] !== undefined).map((k) => `${k}='${xmlAttr(e[k] as string)}'`);
  return `<host ${attrs.join(' ')}/>`;
}

/**
 * The IPv4 DHCP host entries of a libvirt network XML (`virsh net-dumpxml`). DNS `<host>` elements and IPv6
 * `<ip family='ipv6'>` blocks are not reservations of this kind and are skipped.
 */
export function parseNetworkDhcpHosts(xml: string): DhcpHostEntry[] {
  const out: DhcpHostEntry[] = [];
  for (const ip of xml.matchAll(/<ip\b([^>]*)>([\s\S]*?)<\/ip>/g)) {
    if (/family\s*=\s*['"]ipv6['"]/.test(ip[1] as string)) continue;
    for (const dhcp of (ip[2] as string).matchAll(/<dhcp\b[^>]*>([\s\S]*?)<\/dhcp>/g)) {
      for (const host of (dhcp[1] as string).matchAll(/<host\b([^>]*?)\/?>/g)) {
        const attrs = Object.fromEntries([...(host[1] as string).matchAll(/(\w+)\s*=\s*(['"])(.*?)\2/g)].map((a) => [a[1] as string, xmlUnescape(a[3] as string)]));
        const e: DhcpHostEntry = {};
        if (attrs.mac !== undefined) e.mac = attrs.mac.toLowerCase();
        if (attrs.name !== undefined) e.name = attrs.name;
        if (attrs.ip !== undefined) e.ip = attrs.ip;
        out.push(e);
      }
    }
  }
  return out;
}

/** True when the entry is exactly this reservation. */
export function sameReservation(e: DhcpHostEntry, r: DhcpReservation): boolean {
  return e.mac === r.mac && e.ip === r.ip && e.name === r.name;
}

/** Entries that share the MAC, the name or the IP with `r` but are not `r` itself: they must go first. */
export function staleEntries(entries: readonly DhcpHostEntry[], r: DhcpReservation): DhcpHostEntry[] {
  return entries.filter((e) => !sameReservation(e, r) && (e.mac === r.mac || e.name === r.name || e.ip === r.ip));
}

export function describeEntry(e: DhcpHostEntry): string {
  return [e.mac ?? '-', e.ip ?? '-', e.name ?? '-'].join(' ');
}

/** The line in a --dhcp-hostsdir file (dhcp-host syntax). */
export function dnsmasqHostLine(r: DhcpReservation): string {
  return `${r.mac},${r.ip},${r.name}\n`;
}

/** Lines of a --dhcp-hostsdir file: 'MAC,IP,NAME' in any order (dnsmasq tells them apart by form). */
export function parseDnsmasqHosts(text: string): DhcpHostEntry[] {
  const out: DhcpHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const e: DhcpHostEntry = {};
    for (const f of line.split(',').map((x) => x.trim())) {
      if (/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(f)) e.mac = f.toLowerCase().replace(/-/g, ':');
      else if (/^\d{1,3}(\.\d{1,3}){3}$/.test(f)) e.ip = f;
      else if (/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(f) && !/^\d+[hmsd]?$/.test(f) && f !== 'infinite') e.name = f;
    }
    out.push(e);
  }
  return out;
}

/** File name for a host's reservation in a --dhcp-hostsdir (dnsmasq ignores dot files: used for temp files). */
export function dnsmasqHostFileName(name: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) throw invalidInput(`'${name}' cannot name a DHCP hosts file`);
  return `${name}.conf`;
}

function xmlAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

function xmlUnescape(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&');
}
