/**
 * The three files of a cloud-init NoCloud seed (`--cloud-init`): meta-data, user-data and network-config. The
 * image with volume label 'cidata' that carries them is made in exec/tools/cloud-init-seed.ts.
 *
 * Every string value is written as a YAML double-quoted scalar (JSON.stringify's output, which YAML 1.1 and
 * 1.2 both read): a host name like 'true' or '1e3', or an IPv6 address, would otherwise change type.
 */
import { invalidInput } from '../../errors.js';
import { assertUuid } from '../disk/uuid.js';
import { normalizeMac } from '../ipam/mac.js';
import type { GuestNetConfig } from '../model/spec.js';
import { validateDomainName, validateHostname } from '../names.js';
import { validateAuthorizedKey } from './accounts.js';
import { isIPv6, validateNet } from './net-validate.js';

export const CIDATA_LABEL = 'cidata';

export interface CloudInitSeedInput {
  /** The domain UUID: cloud-init runs its once-per-instance modules when this changes. */
  instanceId: string;
  hostname: string;
  domain?: string;
  /** OpenSSH public key lines; cloud-init gives them to the image's default user and root. */
  sshAuthorizedKeys?: readonly string[];
  /**
   * true when vmforge installed the VM's own host keys (withHostKeys said `installed`): cloud-init must not
   * replace them (its ssh module deletes host keys on a new instance by default), or the stored fingerprints
   * would be wrong.
   */
  keepHostKeys: boolean;
  /** Without it there is no network-config file, and cloud-init falls back to DHCP on the first NIC. */
  network?: CloudInitNetwork;
}

export interface CloudInitNetwork {
  /** The NIC's MAC (the lease's): cloud-init matches the interface by it, whatever the kernel named it. */
  mac: string;
  net: GuestNetConfig;
  /** Default 'eth0' (vmforge guests boot with net.ifnames=0). */
  iface?: string;
  /** A static IPv6 address from the lease; the route comes from router advertisements. */
  ipv6?: { address: string; prefix: number };
}

export interface CloudInitSeedFiles {
  'meta-data': string;
  'user-data': string;
  'network-config'?: string;
}

const q = (s: string) => JSON.stringify(s);

export function cloudInitSeedFiles(input: CloudInitSeedInput): CloudInitSeedFiles {
  const network = input.network === undefined ? undefined : cloudInitNetworkConfig(input.network, input.domain);
  return {
    'meta-data': cloudInitMetaData(input),
    'user-data': cloudInitUserData(input),
    ...(network === undefined ? {} : { 'network-config': network }),
  };
}

export function cloudInitMetaData(input: Pick<CloudInitSeedInput, 'instanceId' | 'hostname'>): string {
  assertUuid(input.instanceId, 'cloud-init instance id');
  const hostname = validateHostname(input.hostname);
  return `instance-id: ${q(input.instanceId)}\nlocal-hostname: ${q(hostname)}\n`;
}

export function cloudInitUserData(input: Omit<CloudInitSeedInput, 'instanceId' | 'network'>): string {
  const hostname = validateHostname(input.hostname);
  const domain = input.domain === undefined || input.domain === '' ? undefined : validateDomainName(input.domain);
  const keys = (input.sshAuthorizedKeys ?? []).map(validateAuthorizedKey);
  const lines = ['#cloud-config', '# Written by vmforge.', `hostname: ${q(hostname)}`];
  if (domain !== undefined) lines.push(`fqdn: ${q(`${hostname}.${domain}`)}`);
  if (keys.length > 0) lines.push('ssh_authorized_keys:', ...keys.map((k) => `  - ${q(k)}`));
  // By default cloud-init rewrites root's keys to print "log in as <user>" and disconnect; vmforge's VMs are
  // reached as root (the same keys are in root's authorized_keys already).
  lines.push('disable_root: false');
  if (input.keepHostKeys) lines.push('ssh_deletekeys: false');
  return `${lines.join('\n')}\n`;
}

/**
 * Network configuration version 2 (netplan's schema, which cloud-init reads on every distribution). The
 * default route is written as a route to 0.0.0.0/0, which old cloud-init and every netplan read; gateway4 is
 * deprecated and 'to: default' is new.
 */
export function cloudInitNetworkConfig(network: CloudInitNetwork, domain?: string): string {
  const mac = normalizeMac(network.mac);
  const iface = network.iface ?? 'eth0';
  if (!/^[a-z][a-z0-9]{0,14}$/.test(iface)) throw invalidInput(`'${iface}' is not an interface name`);
  validateNet(network.net);
  const ipv6 = network.ipv6;
  if (ipv6 !== undefined && (!isIPv6(ipv6.address) || !Number.isInteger(ipv6.prefix) || ipv6.prefix < 1 || ipv6.prefix > 128)) {
    throw invalidInput(`'${ipv6.address}/${ipv6.prefix}' is not an IPv6 address with a prefix length`);
  }
  const dom = domain === undefined || domain === '' ? undefined : validateDomainName(domain);
  const lines = ['# Written by vmforge.', 'version: 2', 'ethernets:', `  ${iface}:`, '    match:', `      macaddress: ${q(mac)}`, `    set-name: ${q(iface)}`];
  const net = network.net;
  if (net.mode === 'dhcp') {
    lines.push('    dhcp4: true');
    if (ipv6 !== undefined) lines.push('    addresses:', `      - ${q(`${ipv6.address}/${ipv6.prefix}`)}`);
  } else {
    lines.push('    dhcp4: false', '    addresses:', `      - ${q(`${net.address}/${net.prefix}`)}`);
    if (ipv6 !== undefined) lines.push(`      - ${q(`${ipv6.address}/${ipv6.prefix}`)}`);
    if (net.gateway !== undefined) lines.push('    routes:', `      - to: ${q('0.0.0.0/0')}`, `        via: ${q(net.gateway)}`);
    if (net.dns.length > 0) {
      lines.push('    nameservers:', `      addresses: [${net.dns.map(q).join(', ')}]`);
      if (dom !== undefined) lines.push(`      search: [${q(dom)}]`);
    }
  }
  return `${lines.join('\n')}\n`;
}
