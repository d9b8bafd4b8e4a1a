/** netplan YAML for the first NIC (Ubuntu 18.04+), rendered by systemd-networkd. */
import type { GuestNetConfig } from '../model/spec.js';

/**
 * `routes: - to: default` replaced gateway4 in netplan 0.103 (Ubuntu 22.04), which warns about gateway4;
 * 18.04 and 20.04 only know gateway4.
 */
export function netplanYaml(iface: string, net: GuestNetConfig, domain: string | undefined, opts: { defaultRoute: boolean }): string {
  const lines = ['# Written by vmforge.', 'network:', '  version: 2', '  renderer: networkd', '  ethernets:', `    ${iface}:`];
  if (net.mode === 'dhcp') {
    lines.push('      dhcp4: true');
  } else {
    lines.push('      dhcp4: false', '      addresses:', `        - ${net.address}/${net.prefix}`);
    if (net.gateway !== undefined) {
      if (opts.defaultRoute) lines.push('      routes:', '        - to: default', `          via: ${net.gateway}`);
      else lines.push(`      gateway4: ${net.gateway}`);
    }
    if (net.dns.length > 0) {
      // Quoted: an IPv6 address is not a plain YAML scalar everywhere ('::1' would parse as a mapping key).
      lines.push('      nameservers:', `        addresses: [${net.dns.map((d) => `"${d}"`).join(', ')}]`);
      if (domain !== undefined) lines.push(`        search: [${domain}]`);
    }
  }
  return `${lines.join('\n')}\n`;
}
