/**
 * Debian guest adaptation: turns a template root (a debootstrapped Debian, bookworm-shaped) into one particular
 * VM. Pure: the caller reads what debianFilesToRead() names (GuestRoot.snapshot) and applies the returned edits.
 *
 * Besides naming and networking, this removes what must not be shared between clones of one template: the
 * machine id, persistent NIC naming rules and the SSH host keys (regenerated at first boot by a small unit).
 */
import { VmforgeError, invalidInput } from '../../errors.js';
import type { FileEdit, GuestNetConfig } from '../model/spec.js';
import { quoteForMessage, validateDomainName, validateHostname } from '../names.js';
import type { GuestFiles, GuestFilesNeeded } from './current-files.js';

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
const SSH_DIR = '/etc/ssh';

const SERIAL_GETTY_WANTS = '/etc/systemd/system/getty.target.wants';
const SERIAL_GETTY_LINK = `${SERIAL_GETTY_WANTS}/serial-getty@ttyS0.service`;
const SERIAL_GETTY_UNIT = '/lib/systemd/system/serial-getty@.service';

const HOSTKEYS_UNIT_NAME = 'vmforge-ssh-hostkeys.service';
const HOSTKEYS_UNIT = `/etc/systemd/system/${HOSTKEYS_UNIT_NAME}`;
const SSH_WANTS = '/etc/systemd/system/ssh.service.wants';

/** Kernel arguments vmforge owns; any earlier value of these keys is dropped. */
const KERNEL_ARGS = ['console=tty0', 'console=ttyS0,115200n8', 'net.ifnames=0'];
const OWNED_KERNEL_KEYS = ['console', 'net.ifnames'];
const GRUB_TERMINAL = 'console serial';
const GRUB_SERIAL_COMMAND = 'serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1';

/** glibc reads at most three nameservers (MAXNS). */
const MAX_NAMESERVERS = 3;

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

  edits.push(...sshHostKeyEdits(dirOf(current, SSH_DIR)));
  return edits;
}

// ---- /etc/hosts -------------------------------------------------------------------------------------------

/** Addresses whose lines vmforge writes; existing lines for them are replaced, all other lines are kept. */
const MANAGED_HOSTS_ADDRESSES = new Set(['127.0.0.1', '127.0.1.1', '::1', 'ff02::1', 'ff02::2']);
const IPV6_COMMENT = '# The following lines are desirable for IPv6 capable hosts';

/** The layout Debian's installer (netcfg) writes, followed by whatever else the template had. */
export function hostsFile(hostname: string, domain: string | undefined, existing: string | null): string {
  const names = domain === undefined ? hostname : `${hostname}.${domain}\t${hostname}`;
  const lines = [
    '127.0.0.1\tlocalhost',
    `127.0.1.1\t${names}`,
    '',
    IPV6_COMMENT,
    '::1     localhost ip6-localhost ip6-loopback',
    'ff02::1 ip6-allnodes',
    'ff02::2 ip6-allrouters',
  ];
  const kept = trimBlankLines(
    splitLines(existing ?? '').filter((line) => {
      const trimmed = line.trim();
      if (trimmed === IPV6_COMMENT) return false;
      const address = trimmed.startsWith('#') ? undefined : trimmed.split(/\s+/)[0];
      return address === undefined || !MANAGED_HOSTS_ADDRESSES.has(address.toLowerCase());
    }),
  );
  if (kept.length > 0) lines.push('', ...kept);
  return `${lines.join('\n')}\n`;
}

// ---- networking -------------------------------------------------------------------------------------------

function interfacesFile(iface: string, net: GuestNetConfig, domain: string | undefined): string {
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

function resolvConf(dns: readonly string[], domain: string | undefined): string {
  const lines = ['# Written by vmforge from the static network configuration.'];
  if (domain !== undefined) lines.push(`search ${domain}`);
  for (const server of dns) lines.push(`nameserver ${server}`);
  return `${lines.join('\n')}\n`;
}

function validateNet(net: GuestNetConfig): void {
  if (net.mode === 'dhcp') return;
  const address = parseIPv4(net.address, 'IPv4 address');
  if (!Number.isInteger(net.prefix) || net.prefix < 1 || net.prefix > 32) {
    throw invalidInput(`network prefix ${quoteForMessage(String(net.prefix))} is not an integer from 1 to 32`, 'give the prefix length, like 24 for 255.255.255.0');
  }
  const first = address >>> 24;
  if (first === 0 || first === 127 || first >= 224) {
    throw invalidInput(`IPv4 address ${net.address} is not a usable host address`, 'give a unicast address outside 0/8 and 127/8');
  }
  const mask = net.prefix === 32 ? 0xffffffff : ~(0xffffffff >>> net.prefix) >>> 0;
  const network = (address & mask) >>> 0;
  const broadcast = (network | ~mask) >>> 0;
  if (net.prefix <= 30 && (address === network || address === broadcast)) {
    throw invalidInput(`IPv4 address ${net.address} is the ${address === network ? 'network' : 'broadcast'} address of ${formatIPv4(network)}/${net.prefix}`);
  }
  if (net.gateway !== undefined) {
    const gateway = parseIPv4(net.gateway, 'gateway');
    if (gateway === address) throw invalidInput(`gateway ${net.gateway} is the VM's own address`);
    if (((gateway & mask) >>> 0) !== network || net.prefix === 32) {
      throw invalidInput(
        `gateway ${net.gateway} is not inside ${formatIPv4(network)}/${net.prefix}`,
        'ifupdown cannot add a route through a gateway outside the subnet; check the address and prefix',
      );
    }
  }
  if (net.dns.length > MAX_NAMESERVERS) {
    throw invalidInput(`${net.dns.length} DNS servers given; the guest's resolver uses at most ${MAX_NAMESERVERS}`, 'give at most three');
  }
  for (const server of net.dns) {
    if (!isIPv4(server) && !isIPv6(server)) throw invalidInput(`DNS server ${quoteForMessage(server)} is not an IP address`);
  }
}

/** Dotted quad only. Leading zeros are refused: inet_aton() reads '010' as octal 8. */
function parseIPv4(text: string, what: string): number {
  if (!isIPv4(text)) throw invalidInput(`${what} ${quoteForMessage(text)} is not an IPv4 address`, 'write it as four decimal numbers, like 192.0.2.10');
  return text.split('.').reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0);
}

function isIPv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => /^(?:0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

function formatIPv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 0xff).join('.');
}

function isIPv6(text: string): boolean {
  let rest = text.toLowerCase();
  let groups = 8;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon >= 0 && rest.slice(lastColon + 1).includes('.')) {
    if (!isIPv4(rest.slice(lastColon + 1))) return false;
    rest = `${rest.slice(0, lastColon + 1)}0:0`;
  }
  const halves = rest.split('::');
  if (halves.length > 2) return false;
  const parse = (s: string) => (s === '' ? [] : s.split(':'));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (![...head, ...tail].every((g) => /^[0-9a-f]{1,4}$/.test(g))) return false;
  groups -= head.length + tail.length;
  return halves.length === 2 ? groups >= 1 : groups === 0;
}

// ---- GRUB -------------------------------------------------------------------------------------------------

/** Debian's shipped file, trimmed to its settings; used when the template has no GRUB installed yet. */
const GRUB_DEFAULTS_BASE = `# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.
# For full documentation of the options in this file, see:
#   info -f grub -n 'Simple configuration'

GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=\`lsb_release -i -s 2> /dev/null || echo Debian\`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX=""
`;

/**
 * Puts the serial console and classic NIC names on the kernel command line and GRUB's menu on both consoles.
 * Only the last assignment of each variable is edited (the one the shell keeps); everything else stays.
 */
export function grubDefaults(existing: string | null): string {
  const lines = splitLines(existing ?? GRUB_DEFAULTS_BASE);
  const cmdline = lastAssignment(lines, 'GRUB_CMDLINE_LINUX');
  if (cmdline === -1) {
    lines.push(`GRUB_CMDLINE_LINUX="${KERNEL_ARGS.join(' ')}"`);
  } else {
    const line = lines[cmdline]!;
    const eq = line.indexOf('=');
    const parsed = parseShellValue(line.slice(eq + 1));
    if (parsed === null) {
      throw new VmforgeError('INVALID_INPUT', `${GRUB_DEFAULTS} line ${cmdline + 1}: cannot parse GRUB_CMDLINE_LINUX`, {
        hint: "fix the template's /etc/default/grub (one quoted value on one line)",
      });
    }
    const kept = parsed.value.split(/\s+/).filter((t) => t !== '' && !OWNED_KERNEL_KEYS.includes(t.split('=')[0]!));
    const quote = parsed.quote === "'" ? "'" : '"';
    lines[cmdline] = `${line.slice(0, eq + 1)}${quote}${[...kept, ...KERNEL_ARGS].join(' ')}${quote}${parsed.tail}`;
  }
  setAssignment(lines, 'GRUB_TERMINAL', `"${GRUB_TERMINAL}"`);
  setAssignment(lines, 'GRUB_SERIAL_COMMAND', `"${GRUB_SERIAL_COMMAND}"`);
  return `${lines.join('\n')}\n`;
}

function lastAssignment(lines: readonly string[], name: string): number {
  const re = new RegExp(`^\\s*(?:export\\s+)?${name}=`);
  for (let i = lines.length - 1; i >= 0; i--) if (re.test(lines[i]!)) return i;
  return -1;
}

function setAssignment(lines: string[], name: string, value: string): void {
  const i = lastAssignment(lines, name);
  if (i === -1) lines.push(`${name}=${value}`);
  else lines[i] = `${name}=${value}`;
}

/** Splits `"a b" # c` into quote, value and tail. Null when the quote does not close on this line. */
function parseShellValue(text: string): { quote: string; value: string; tail: string } | null {
  const quote = text[0];
  if (quote === '"') {
    for (let i = 1; i < text.length; i++) {
      if (text[i] === '\\') i++;
      else if (text[i] === '"') return { quote, value: text.slice(1, i), tail: text.slice(i + 1) };
    }
    return null;
  }
  if (quote === "'") {
    const end = text.indexOf("'", 1);
    return end === -1 ? null : { quote, value: text.slice(1, end), tail: text.slice(end + 1) };
  }
  const m = /^[^\s#;]*/.exec(text)!;
  if (m[0].endsWith('\\')) return null;
  return { quote: '', value: m[0], tail: text.slice(m[0].length) };
}

// ---- accounts ---------------------------------------------------------------------------------------------

/** Modular crypt format: '$id$' then salt/params/hash from crypt's alphabet ('=' and ',' for rounds=). */
const CRYPT_HASH_RE = /^\$[0-9a-z]{1,3}\$[A-Za-z0-9./$=,-]+$/;

function shadowWithRootHash(shadow: string | null, hash: string): string {
  if (!CRYPT_HASH_RE.test(hash)) {
    throw invalidInput('root password hash is not a crypt(3) hash', "generate one with 'mkpasswd -m yescrypt' or 'openssl passwd -6'");
  }
  if (shadow === null) {
    throw new VmforgeError('NOT_FOUND', 'the guest has no /etc/shadow, so the root password cannot be set', { hint: 'check the template bundle' });
  }
  const lines = splitLines(shadow);
  const i = lines.findIndex((line) => line.startsWith('root:'));
  if (i === -1) throw new VmforgeError('NOT_FOUND', "the guest's /etc/shadow has no root entry", { hint: 'check the template bundle' });
  const fields = lines[i]!.split(':');
  fields[1] = hash;
  lines[i] = fields.join(':');
  return `${lines.join('\n')}\n`;
}

// ---- SSH host keys ----------------------------------------------------------------------------------------

const HOST_KEY_RE = /^ssh_host_[a-z0-9]+_key(?:\.pub|-cert\.pub)?$/;

/** `ssh-keygen -A` makes only the missing keys, so running it every boot costs nothing once they exist. */
const HOSTKEYS_UNIT_TEXT = `# Installed by vmforge: every VM gets its own SSH host keys, made at boot when missing.
[Unit]
Description=Generate missing SSH host keys
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
RemainAfterExit=yes

[Install]
WantedBy=ssh.service
`;

/** Clones of one template would share its host keys: delete them and have the VM make its own. */
function sshHostKeyEdits(sshDir: readonly string[]): FileEdit[] {
  if (!sshDir.includes('sshd_config')) return [];
  return [
    ...sshDir.filter((name) => HOST_KEY_RE.test(name)).map((name): FileEdit => ({ kind: 'delete', path: `${SSH_DIR}/${name}` })),
    { kind: 'write', path: HOSTKEYS_UNIT, content: HOSTKEYS_UNIT_TEXT, mode: 0o644 },
    { kind: 'mkdir', path: SSH_WANTS },
    { kind: 'symlink', path: `${SSH_WANTS}/${HOSTKEYS_UNIT_NAME}`, target: HOSTKEYS_UNIT },
  ];
}

// ---- helpers ----------------------------------------------------------------------------------------------

/** A path the caller did not read is a bug in the caller, not a missing file: never guess. */
function fileOf(current: GuestFiles, p: string): string | null {
  if (!Object.hasOwn(current.files, p)) throw new VmforgeError('INTERNAL', `guest file ${p} was not read (see debianFilesToRead)`);
  return current.files[p] ?? null;
}

function dirOf(current: GuestFiles, p: string): readonly string[] {
  if (!Object.hasOwn(current.dirs, p)) throw new VmforgeError('INTERNAL', `guest directory ${p} was not listed (see debianFilesToRead)`);
  return current.dirs[p] ?? [];
}

function linkOf(current: GuestFiles, p: string): string | null {
  if (!Object.hasOwn(current.links, p)) throw new VmforgeError('INTERNAL', `guest link ${p} was not read (see debianFilesToRead)`);
  return current.links[p] ?? null;
}

/** Lines without the final newline's empty remainder. */
function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function trimBlankLines(lines: string[]): string[] {
  let start = 0;
  let end = lines.length;
  while (start < end && lines[start]!.trim() === '') start++;
  while (end > start && lines[end - 1]!.trim() === '') end--;
  return lines.slice(start, end);
}

function withNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}
