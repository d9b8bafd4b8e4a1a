/**
 * Debian guest adaptation: turns a template root (a debootstrapped Debian, bookworm-shaped) into one particular
 * VM. Pure: the caller reads what debianFilesToRead() names (GuestRoot.snapshot) and applies the returned edits.
 *
 * Besides naming and networking, this removes what must not be shared between clones of one template: the
 * machine id, persistent NIC naming rules and the SSH host keys (regenerated at first boot by a small unit).
 */
import { invalidInput } from '../../errors.js';
import type { FileEdit, GuestNetConfig } from '../model/spec.js';
import { validateDomainName, validateHostname } from '../names.js';
import { shadowWithRootHash } from './accounts.js';
import { dirOf, fileOf, linkOf, type GuestFiles, type GuestFilesNeeded } from './current-files.js';
import { hostsFile } from './hosts.js';
import { grubDefaults } from './kernel-args.js';
import { validateNet } from './net-validate.js';
import { debianHostKeyEdits, SSH_DIR } from './ssh-host-keys.js';
import { withNewline } from './text.js';

// Re-exported: they were first written here and callers import them from this module.
export { hostsFile } from './hosts.js';
export { grubDefaults } from './kernel-args.js';

export interface DebianGuestInput {
  /** Short host name (one label); also the VM name in practice. */
  hostname: string;
  domain?: string;
  /** Complete /etc/fstab, made by core/disk. */
  fstabText: string;
  net: GuestNetConfig;
  /** With net.ifnames=0 on the kernel command line the first NIC is always eth0. */
  iface: 'eth0';
  /** A crypt(3) hash ('$y$...', '$6$...'); the plain password never reaches vmforge. */
  rootPasswordHash?: string;
}

const HOSTS = '/etc/hosts';
const SHADOW = '/etc/shadow';
const GRUB_DEFAULTS = '/etc/default/grub';
const RESOLV_CONF = '/etc/resolv.conf';

const SERIAL_GETTY_WANTS = '/etc/systemd/system/getty.target.wants';
const SERIAL_GETTY_LINK = `${SERIAL_GETTY_WANTS}/serial-getty@ttyS0.service`;
const SERIAL_GETTY_UNIT = '/lib/systemd/system/serial-getty@.service';

/** What debianEdits needs to see in `current`. */
export function debianFilesToRead(): GuestFilesNeeded {
  return { files: [HOSTS, SHADOW, GRUB_DEFAULTS], dirs: [SSH_DIR], links: [RESOLV_CONF] };
}

export function debianEdits(input: DebianGuestInput, current: GuestFiles): FileEdit[] {
  const hostname = validateHostname(input.hostname);
  // validateDomainName leaves room for a 63-character label, so hostname.domain always fits in 253.
  const domain = input.domain === undefined || input.domain === '' ? undefined : validateDomainName(input.domain);
  validateNet(input.net);
  if (input.fstabText.includes('\0')) throw invalidInput('fstab text contains a NUL byte');

  const edits: FileEdit[] = [
    { kind: 'write', path: '/etc/hostname', content: `${hostname}\n` },
    { kind: 'write', path: HOSTS, content: hostsFile(hostname, domain, fileOf(current, HOSTS)) },
    { kind: 'write', path: '/etc/fstab', content: withNewline(input.fstabText) },
    { kind: 'mkdir', path: '/etc/network' },
    { kind: 'write', path: '/etc/network/interfaces', content: interfacesFile(input.iface, input.net, domain) },
  ];

  // Without resolvconf, ifupdown ignores dns-nameservers and the template's resolv.conf (debootstrap copies the
  // build host's) would stay. A symlink means resolvconf or systemd-resolved owns it: leave it to them.
  if (input.net.mode === 'static' && input.net.dns.length > 0 && linkOf(current, RESOLV_CONF) === null) {
    edits.push({ kind: 'write', path: RESOLV_CONF, content: resolvConf(input.net.dns, domain) });
  }

  edits.push(
    // Empty (not missing): systemd fills it at first boot. The D-Bus copy goes, or systemd would reuse it.
    { kind: 'write', path: '/etc/machine-id', content: '' },
    { kind: 'delete', path: '/var/lib/dbus/machine-id' },
    { kind: 'delete', path: '/etc/udev/rules.d/70-persistent-net.rules' },
    { kind: 'delete', path: '/etc/udev/rules.d/75-persistent-net-generator.rules' },
    { kind: 'mkdir', path: SERIAL_GETTY_WANTS },
    { kind: 'symlink', path: SERIAL_GETTY_LINK, target: SERIAL_GETTY_UNIT },
    { kind: 'mkdir', path: '/etc/default' },
    { kind: 'write', path: GRUB_DEFAULTS, content: grubDefaults(fileOf(current, GRUB_DEFAULTS)) },
  );

  if (input.rootPasswordHash !== undefined) {
    edits.push({ kind: 'write', path: SHADOW, content: shadowWithRootHash(fileOf(current, SHADOW), input.rootPasswordHash) });
  }

  edits.push(...debianHostKeyEdits(dirOf(current, SSH_DIR)));
  return edits;
}

// ---- networking -------------------------------------------------------------------------------------------

export function interfacesFile(iface: string, net: GuestNetConfig, domain: string | undefined): string {
  const lines = [
    '# interfaces(5) file used by ifup(8) and ifdown(8)',
    '# Include files from /etc/network/interfaces.d:',
    'source /etc/network/interfaces.d/*',
    '',
    '# The loopback network interface',
    'auto lo',
    'iface lo inet loopback',
    '',
    '# The primary network interface',
    // 'auto', not the installer's 'allow-hotplug': networking.service then waits for it, so
    // network-online.target means the address is really there.
    `auto ${iface}`,
  ];
  switch (net.mode) {
    case 'dhcp':
      lines.push(`iface ${iface} inet dhcp`);
      break;
    case 'static':
      lines.push(`iface ${iface} inet static`, `\taddress ${net.address}/${net.prefix}`);
      if (net.gateway !== undefined) lines.push(`\tgateway ${net.gateway}`);
      if (net.dns.length > 0) lines.push(`\tdns-nameservers ${net.dns.join(' ')}`);
      if (net.dns.length > 0 && domain !== undefined) lines.push(`\tdns-search ${domain}`);
      break;
  }
  return `${lines.join('\n')}\n`;
}

export function resolvConf(dns: readonly string[], domain: string | undefined): string {
  const lines = ['# Written by vmforge from the static network configuration.'];
  if (domain !== undefined) lines.push(`search ${domain}`);
  for (const server of dns) lines.push(`nameserver ${server}`);
  return `${lines.join('\n')}\n`;
}
