/** A systemd-networkd .network file for the first NIC. */
import type { GuestNetConfig } from '../model/spec.js';

export function networkdFile(iface: string, net: GuestNetConfig, domain: string | undefined): string {
  const lines = ['# Written by vmforge.', '[Match]', `Name=${iface}`, '', '[Network]'];
  if (net.mode === 'dhcp') {
    lines.push('DHCP=yes');
  } else {
    lines.push(`Address=${net.address}/${net.prefix}`);
    if (net.gateway !== undefined) lines.push(`Gateway=${net.gateway}`);
    for (const server of net.dns) lines.push(`DNS=${server}`);
    if (net.dns.length > 0 && domain !== undefined) lines.push(`Domains=${domain}`);
  }
  return `${lines.join('\n')}\n`;
}
