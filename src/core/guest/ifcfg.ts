/**
 * initscripts' /etc/sysconfig/network-scripts/ifcfg-* files (RHEL/CentOS 5-8, Fedora before 36; read by
 * NetworkManager's ifcfg-rh plugin too). The template's file is edited, not replaced: its other settings (MTU,
 * NM_CONTROLLED, IPV6INIT, ...) stay.
 */
import type { FileEdit, GuestNetConfig } from '../model/spec.js';
import { rewriteShellVars } from './text.js';

export const NETWORK_SCRIPTS = '/etc/sysconfig/network-scripts';
export const SYSCONFIG_NETWORK = '/etc/sysconfig/network';

/**
 * Pin the profile to the template's NIC (HWADDR/MACADDR: the VM's MAC differs, so the profile would never apply),
 * describe the template's addresses, or name the template (DHCP_HOSTNAME).
 */
const DROPPED = ['HWADDR', 'MACADDR', 'NETMASK', 'NETWORK', 'BROADCAST', 'IPADDR0', 'PREFIX0', 'NETMASK0', 'GATEWAY0', 'DHCP_HOSTNAME',
  ...Array.from({ length: 9 }, (_, i) => `DNS${i + 1}`), 'DOMAIN', 'IPADDR', 'PREFIX', 'GATEWAY'];

export function ifcfgFile(iface: string, net: GuestNetConfig, domain: string | undefined, uuid: string, existing: string | null): string {
  const values: [string, string][] = [
    ['DEVICE', iface],
    ['NAME', iface],
    ['TYPE', 'Ethernet'],
    ['ONBOOT', 'yes'],
    ['UUID', uuid],
  ];
  if (net.mode === 'dhcp') {
    values.push(['BOOTPROTO', 'dhcp']);
  } else {
    values.push(['BOOTPROTO', 'none'], ['IPADDR', net.address], ['PREFIX', String(net.prefix)]);
    if (net.gateway !== undefined) values.push(['GATEWAY', net.gateway]);
    net.dns.forEach((server, i) => values.push([`DNS${i + 1}`, server]));
    if (net.dns.length > 0 && domain !== undefined) values.push(['DOMAIN', domain]);
  }
  return rewriteShellVars(existing, values, DROPPED);
}

/** Ethernet names a template's other profiles may carry; with net.ifnames=0 none of them exists on the VM. */
const NIC_PROFILE_RE = /^ifcfg-(?:eth\d+|en[a-z0-9]+|em\d+|p\d+p\d+)$/;

/**
 * The template's profiles for NICs the VM does not have: RHEL 6/7's network service fails on each one, and
 * NetworkManager would try them on eth0 too when they carry no HWADDR.
 */
export function staleIfcfgDeletes(scriptsDir: readonly string[], iface: string): FileEdit[] {
  return scriptsDir.filter((n) => NIC_PROFILE_RE.test(n) && n !== `ifcfg-${iface}`).map((n): FileEdit => ({ kind: 'delete', path: `${NETWORK_SCRIPTS}/${n}` }));
}

/** Any ifcfg profile for a NIC: tells RHEL 8 templates that still use ifcfg from keyfile ones. */
export function hasNicIfcfg(scriptsDir: readonly string[]): boolean {
  return scriptsDir.some((n) => NIC_PROFILE_RE.test(n));
}

/**
 * /etc/sysconfig/network: HOSTNAME is where RHEL 6 takes its name from (7 reads /etc/hostname, but old tools still
 * look here); `fqdn` undefined leaves names alone (8+). A GATEWAY here overrides every interface's, so the
 * template's goes.
 */
export function sysconfigNetwork(existing: string | null, fqdn: string | undefined): string {
  const values: [string, string][] = fqdn === undefined ? [] : [['NETWORKING', 'yes'], ['HOSTNAME', fqdn]];
  return rewriteShellVars(existing, values, ['GATEWAY', 'GATEWAYDEV']);
}
