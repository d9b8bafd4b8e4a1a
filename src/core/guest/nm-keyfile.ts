/** NetworkManager keyfile profiles (/etc/NetworkManager/system-connections/*.nmconnection; RHEL 9, Fedora 36+). */
import type { FileEdit, GuestNetConfig } from '../model/spec.js';
import { dirOf, fileOf, type GuestFiles } from './current-files.js';
import { isIPv4 } from './net-validate.js';

export const NM_CONNECTIONS = '/etc/NetworkManager/system-connections';

export function keyfile(iface: string, net: GuestNetConfig, domain: string | undefined, uuid: string): string {
  // interface-name, never mac-address: the profile must follow eth0, whatever MAC the VM gets.
  const lines = ['[connection]', `id=${iface}`, `uuid=${uuid}`, 'type=ethernet', `interface-name=${iface}`, 'autoconnect=true', '', '[ethernet]', '', '[ipv4]'];
  const v4dns = net.mode === 'static' ? net.dns.filter(isIPv4) : [];
  const v6dns = net.mode === 'static' ? net.dns.filter((d) => !isIPv4(d)) : [];
  if (net.mode === 'dhcp') {
    lines.push('method=auto');
  } else {
    lines.push(`address1=${net.address}/${net.prefix}`);
    if (net.gateway !== undefined) lines.push(`gateway=${net.gateway}`);
    // ipv4.dns takes IPv4 servers only; IPv6 ones belong to the ipv6 setting.
    if (v4dns.length > 0) lines.push(`dns=${v4dns.join(';')};`);
    if (net.dns.length > 0 && domain !== undefined) lines.push(`dns-search=${domain};`);
    lines.push('method=manual');
  }
  lines.push('', '[ipv6]', 'addr-gen-mode=default');
  if (v6dns.length > 0) lines.push(`dns=${v6dns.join(';')};`);
  lines.push('method=auto');
  return `${lines.join('\n')}\n`;
}

/** The keyfile profiles whose text must be read to tell ethernet ones (the template's NIC) from VPNs, bridges etc. */
export function keyfileNames(dir: readonly string[]): string[] {
  return dir.filter((n) => n.endsWith('.nmconnection'));
}

/**
 * Ethernet profiles of the template: bound to its MAC or to a NIC name the VM does not have, or competing with
 * vmforge's profile for eth0. Other types (bridges, VPNs, Wi-Fi) stay.
 */
export function staleKeyfileDeletes(files: ReadonlyArray<readonly [string, string | null]>, ours: string): FileEdit[] {
  return files
    .filter(([name, text]) => name !== ours && text !== null && /^\s*type\s*=\s*(?:ethernet|802-3-ethernet)\s*$/m.test(text))
    .map(([name]): FileEdit => ({ kind: 'delete', path: `${NM_CONNECTIONS}/${name}` }));
}

/** 0600: NetworkManager ignores a keyfile anyone but root can read (it may hold secrets). */
export function keyfileEdits(iface: string, net: GuestNetConfig, domain: string | undefined, uuid: string): FileEdit[] {
  return [
    { kind: 'mkdir', path: NM_CONNECTIONS, mode: 0o700 },
    { kind: 'write', path: `${NM_CONNECTIONS}/${iface}.nmconnection`, content: keyfile(iface, net, domain, uuid), mode: 0o600 },
  ];
}

/** The template's profiles with their text (read in the second pass). */
export function keyfilesIn(current: GuestFiles): [string, string | null][] {
  return keyfileNames(dirOf(current, NM_CONNECTIONS)).map((n) => [n, fileOf(current, `${NM_CONNECTIONS}/${n}`)]);
}

/** Second-pass reads: every profile the first pass listed. */
export function keyfilesToRead(listed: GuestFiles | undefined): string[] {
  return listed === undefined ? [] : keyfileNames(dirOf(listed, NM_CONNECTIONS)).map((n) => `${NM_CONNECTIONS}/${n}`);
}
