/** /etc/hosts in the layout each family's installer writes, keeping the template's other lines. */
import type { GuestNetConfig } from '../model/spec.js';
import { splitLines, trimBlankLines } from './text.js';

/** Addresses whose lines vmforge writes; existing lines for them are replaced, all other lines are kept. */
const MANAGED_HOSTS_ADDRESSES = new Set(['127.0.0.1', '127.0.1.1', '::1', 'ff02::1', 'ff02::2']);
const IPV6_COMMENT = '# The following lines are desirable for IPv6 capable hosts';

function keptLines(existing: string | null, managed: ReadonlySet<string>): string[] {
  return trimBlankLines(
    splitLines(existing ?? '').filter((line) => {
      const trimmed = line.trim();
      if (trimmed === IPV6_COMMENT) return false;
      const address = trimmed.startsWith('#') ? undefined : trimmed.split(/\s+/)[0];
      return address === undefined || !managed.has(address.toLowerCase());
    }),
  );
}

function namesOf(hostname: string, domain: string | undefined): string {
  return domain === undefined ? hostname : `${hostname}.${domain}\t${hostname}`;
}

/** The layout Debian's installer (netcfg) writes, followed by whatever else the template had. */
export function hostsFile(hostname: string, domain: string | undefined, existing: string | null): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    `127.0.1.1\t${namesOf(hostname, domain)}`,
    '',
    IPV6_COMMENT,
    '::1     localhost ip6-localhost ip6-loopback',
    'ff02::1 ip6-allnodes',
    'ff02::2 ip6-allrouters',
  ];
  const kept = keptLines(existing, MANAGED_HOSTS_ADDRESSES);
  if (kept.length > 0) lines.push('', ...kept);
  return `${lines.join('\n')}\n`;
}

/**
 * The layout anaconda writes (setup package's two localhost lines). The host's own name goes on its static
 * address, the RHEL convention; with DHCP there is no fixed address, so it goes on 127.0.1.1 as on Debian:
 * RHEL 6 has no nss-myhostname, and an unresolvable host name stalls sendmail and sudo.
 */
export function rhelHostsFile(hostname: string, domain: string | undefined, net: GuestNetConfig, existing: string | null): string {
  const managed = new Set(MANAGED_HOSTS_ADDRESSES);
  if (net.mode === 'static') managed.add(net.address);
  const lines = [
    '127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4',
    '::1         localhost localhost.localdomain localhost6 localhost6.localdomain6',
    `${net.mode === 'static' ? net.address : '127.0.1.1'}\t${namesOf(hostname, domain)}`,
  ];
  const kept = keptLines(existing, managed);
  if (kept.length > 0) lines.push('', ...kept);
  return `${lines.join('\n')}\n`;
}
