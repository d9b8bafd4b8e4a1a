import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { debianEdits, debianFilesToRead, grubDefaults, hostsFile, type DebianGuestInput } from './debian.js';
import type { GuestFiles } from './current-files.js';
import type { FileEdit } from '../model/spec.js';
import { VmforgeError } from '../../errors.js';

const GOLDEN_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '__golden__');
const REGEN = process.env.VMFORGE_REGEN_GOLDEN === '1';

/** What GuestRoot.snapshot(debianFilesToRead()) returns on a fresh bookworm debootstrap (/var/tmp/exp/root). */
const BOOKWORM_SHADOW = [
  'root:*:20782:0:99999:7:::',
  'daemon:*:20782:0:99999:7:::',
  'bin:*:20782:0:99999:7:::',
  'sys:*:20782:0:99999:7:::',
  'sync:*:20782:0:99999:7:::',
  'games:*:20782:0:99999:7:::',
  'man:*:20782:0:99999:7:::',
  'lp:*:20782:0:99999:7:::',
  'mail:*:20782:0:99999:7:::',
  'news:*:20782:0:99999:7:::',
  'uucp:*:20782:0:99999:7:::',
  'proxy:*:20782:0:99999:7:::',
  'www-data:*:20782:0:99999:7:::',
  'backup:*:20782:0:99999:7:::',
  'list:*:20782:0:99999:7:::',
  'irc:*:20782:0:99999:7:::',
  '_apt:*:20782:0:99999:7:::',
  'nobody:*:20782:0:99999:7:::',
  'systemd-network:!*:20782::::::',
  'sshd:!:20782::::::',
  '',
].join('\n');

const BOOKWORM_SSH = [
  'moduli',
  'ssh_config',
  'ssh_config.d',
  'ssh_host_ecdsa_key',
  'ssh_host_ecdsa_key.pub',
  'ssh_host_ed25519_key',
  'ssh_host_ed25519_key.pub',
  'ssh_host_rsa_key',
  'ssh_host_rsa_key.pub',
  'sshd_config',
  'sshd_config.d',
];

const BOOKWORM_CURRENT: GuestFiles = {
  files: { '/etc/hosts': null, '/etc/shadow': BOOKWORM_SHADOW, '/etc/default/grub': null },
  dirs: { '/etc/ssh': BOOKWORM_SSH },
  links: { '/etc/resolv.conf': null },
};

const FSTAB = [
  '# <file system> <mount point> <type> <options> <dump> <pass>',
  'UUID=0b7c2f3e-58d5-4c0b-9c55-3f1f3e0f6a11 / ext4 errors=remount-ro 0 1',
  'UUID=5a1d9c44-1f2e-4a8b-b0a4-8c1e2f3a4b5c none swap sw 0 0',
  '',
].join('\n');

const YESCRYPT = '$y$j9T$Qm9vYmFyYmF6cXV4$N2Y0Y2E5ZjQ5ZTNkNjE5YjM1MmI1ZDg0OTBhNDk3';

const STATIC_INPUT: DebianGuestInput = {
  hostname: 'web01',
  domain: 'example.com',
  fstabText: FSTAB,
  net: { mode: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1', dns: ['192.0.2.53', '2001:db8::53'] },
  iface: 'eth0',
  rootPasswordHash: YESCRYPT,
};

const DHCP_INPUT: DebianGuestInput = { hostname: 'db01', fstabText: FSTAB, net: { mode: 'dhcp' }, iface: 'eth0' };

/** A template that went through debian-installer and some local changes. */
const INSTALLED_CURRENT: GuestFiles = {
  files: {
    '/etc/hosts': [
      '127.0.0.1\tlocalhost',
      '127.0.1.1\ttemplate.lab.example\ttemplate',
      '10.1.2.3\tbackup.lab.example\tbackup',
      '',
      '# The following lines are desirable for IPv6 capable hosts',
      '::1     localhost ip6-localhost ip6-loopback',
      'ff02::1 ip6-allnodes',
      'ff02::2 ip6-allrouters',
      '# local mirror',
      '10.1.2.4 mirror',
      '',
    ].join('\n'),
    '/etc/shadow': BOOKWORM_SHADOW,
    '/etc/default/grub': [
      "# If you change this file, run 'update-grub' afterwards to update",
      '# /boot/grub/grub.cfg.',
      '',
      'GRUB_DEFAULT=0',
      'GRUB_TIMEOUT=5',
      'GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`',
      'GRUB_CMDLINE_LINUX_DEFAULT="quiet"',
      'GRUB_CMDLINE_LINUX="console=ttyS1,9600 biosdevname=0 net.ifnames=1 apparmor=1" # site default',
      '',
      '# Uncomment to disable graphical terminal',
      '#GRUB_TERMINAL=console',
      '',
    ].join('\n'),
  },
  dirs: { '/etc/ssh': ['ssh_config', 'ssh_config.d'] },
  links: { '/etc/resolv.conf': '../run/systemd/resolve/stub-resolv.conf' },
};

/** Human-readable form of an edit list, for review in the golden files. */
function renderEdits(edits: readonly FileEdit[]): string {
  const out: string[] = [];
  for (const e of edits) {
    switch (e.kind) {
      case 'write':
        out.push(`==> write ${e.path}${e.mode === undefined ? '' : ` mode=${e.mode.toString(8).padStart(4, '0')}`}`);
        if (e.content === '') out.push('(empty)');
        else out.push(e.content.endsWith('\n') ? e.content.slice(0, -1) : `${e.content}\n\\ no newline at end`);
        break;
      case 'delete':
        out.push(`==> delete ${e.path}`);
        break;
      case 'mkdir':
        out.push(`==> mkdir ${e.path}${e.mode === undefined ? '' : ` mode=${e.mode.toString(8).padStart(4, '0')}`}`);
        break;
      case 'symlink':
        out.push(`==> symlink ${e.path} -> ${e.target}`);
        break;
    }
  }
  return `${out.join('\n')}\n`;
}

function expectGolden(name: string, actual: string): void {
  const file = path.join(GOLDEN_DIR, name);
  if (REGEN) {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  let expected: string;
  try {
    expected = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`golden file ${file} is missing; run with VMFORGE_REGEN_GOLDEN=1 and review it`);
  }
  expect(actual).toBe(expected);
}

function expectCode(fn: () => unknown, code: string): VmforgeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VmforgeError);
    expect((err as VmforgeError).code).toBe(code);
    return err as VmforgeError;
  }
  throw new Error(`expected a ${code} error`);
}

function writeOf(edits: readonly FileEdit[], p: string): string | undefined {
  const e = edits.find((x) => x.path === p && x.kind === 'write');
  return e?.kind === 'write' ? e.content : undefined;
}

describe('debianEdits golden files', () => {
  it('static network on a fresh bookworm debootstrap', () => {
    expectGolden('debian-static-bookworm.txt', renderEdits(debianEdits(STATIC_INPUT, BOOKWORM_CURRENT)));
  });

  it('dhcp on a fresh bookworm debootstrap', () => {
    expectGolden('debian-dhcp-bookworm.txt', renderEdits(debianEdits(DHCP_INPUT, BOOKWORM_CURRENT)));
  });

  it('static network on an installed template with existing hosts, grub and resolved', () => {
    expectGolden('debian-static-installed.txt', renderEdits(debianEdits(STATIC_INPUT, INSTALLED_CURRENT)));
  });
});

describe('debianEdits', () => {
  it('asks for exactly what it reads', () => {
    expect(debianFilesToRead()).toEqual({
      files: ['/etc/hosts', '/etc/shadow', '/etc/default/grub'],
      dirs: ['/etc/ssh'],
      links: ['/etc/resolv.conf'],
    });
    const missing: GuestFiles = { ...BOOKWORM_CURRENT, files: { '/etc/shadow': BOOKWORM_SHADOW, '/etc/default/grub': null } };
    expectCode(() => debianEdits(DHCP_INPUT, missing), 'INTERNAL');
  });

  it('is a fixed point: applying its output again changes nothing', () => {
    for (const current of [BOOKWORM_CURRENT, INSTALLED_CURRENT]) {
      const first = debianEdits(STATIC_INPUT, current);
      const after: GuestFiles = {
        ...current,
        files: Object.fromEntries(Object.keys(current.files).map((p) => [p, writeOf(first, p) ?? current.files[p] ?? null])),
      };
      expect(debianEdits(STATIC_INPUT, after)).toEqual(first);
    }
  });

  it('keeps every shadow line but root, and every root field but the hash', () => {
    const shadow = writeOf(debianEdits(STATIC_INPUT, BOOKWORM_CURRENT), '/etc/shadow')!;
    const before = BOOKWORM_SHADOW.split('\n');
    const after = shadow.split('\n');
    expect(after.length).toBe(before.length);
    expect(after[0]).toBe(`root:${YESCRYPT}:20782:0:99999:7:::`);
    expect(after.slice(1)).toEqual(before.slice(1));
  });

  it('does not touch shadow without a hash', () => {
    expect(debianEdits(DHCP_INPUT, BOOKWORM_CURRENT).some((e) => e.path === '/etc/shadow')).toBe(false);
  });

  it.each(['hunter2', 'root:x', '$6$salt$hash\nroot2::0:0:::', '$6$salt:hash', '', '$$'])('refuses password hash %j', (hash) => {
    expectCode(() => debianEdits({ ...STATIC_INPUT, rootPasswordHash: hash }, BOOKWORM_CURRENT), 'INVALID_INPUT');
  });

  it('accepts sha512 with rounds and bcrypt hashes', () => {
    for (const hash of ['$6$rounds=10000$saltsalt$abc./DEF', '$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234']) {
      expect(writeOf(debianEdits({ ...STATIC_INPUT, rootPasswordHash: hash }, BOOKWORM_CURRENT), '/etc/shadow')).toContain(`root:${hash}:`);
    }
  });

  it('refuses a hash when the guest has no shadow or no root entry', () => {
    expectCode(() => debianEdits(STATIC_INPUT, { ...BOOKWORM_CURRENT, files: { ...BOOKWORM_CURRENT.files, '/etc/shadow': null } }), 'NOT_FOUND');
    expectCode(
      () => debianEdits(STATIC_INPUT, { ...BOOKWORM_CURRENT, files: { ...BOOKWORM_CURRENT.files, '/etc/shadow': 'daemon:*:1::::::\n' } }),
      'NOT_FOUND',
    );
  });

  it.each([
    ['Web01', /lower case/],
    ['web01.example.com', /'\.'/],
    ['web_01', /'_'/],
    ['a;reboot', /shell metacharacter/],
    ['-rf', /starts with '-'/],
    ['1234', /all digits/],
    ['', /empty/],
  ])('refuses hostname %j', (hostname, message) => {
    const err = expectCode(() => debianEdits({ ...DHCP_INPUT, hostname }, BOOKWORM_CURRENT), 'INVALID_INPUT');
    expect(err.message).toMatch(message);
  });

  it.each(['example.com.', 'Example.com', 'exa mple.com', 'a..b', '-a.com', 'a.123', `${'a'.repeat(64)}.com`])('refuses domain %j', (domain) => {
    expectCode(() => debianEdits({ ...DHCP_INPUT, domain }, BOOKWORM_CURRENT), 'INVALID_INPUT');
  });

  it('treats an empty domain as none', () => {
    expect(writeOf(debianEdits({ ...DHCP_INPUT, domain: '' }, BOOKWORM_CURRENT), '/etc/hosts')).toContain('127.0.1.1\tdb01\n');
  });

  const staticNet = (over: Partial<{ address: string; prefix: number; gateway: string; dns: string[] }>): DebianGuestInput => ({
    ...STATIC_INPUT,
    net: { mode: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1', dns: [], ...over },
  });

  it.each([
    [{ address: '192.0.2' }, /not an IPv4 address/],
    [{ address: '192.0.2.256' }, /not an IPv4 address/],
    [{ address: '192.0.2.010' }, /not an IPv4 address/],
    [{ address: ' 192.0.2.10' }, /not an IPv4 address/],
    [{ address: '192.0.2.10/24' }, /not an IPv4 address/],
    [{ address: '0x7f.0.0.1' }, /not an IPv4 address/],
    [{ address: '127.0.0.5' }, /not a usable host address/],
    [{ address: '224.0.0.1' }, /not a usable host address/],
    [{ address: '192.0.2.0' }, /network address/],
    [{ address: '192.0.2.255' }, /broadcast address/],
    [{ prefix: 0 }, /prefix/],
    [{ prefix: 33 }, /prefix/],
    [{ prefix: 24.5 }, /prefix/],
    [{ gateway: '192.0.3.1' }, /not inside 192\.0\.2\.0\/24/],
    [{ gateway: '192.0.2.10' }, /own address/],
    [{ gateway: 'router' }, /not an IPv4 address/],
    [{ prefix: 32, gateway: '192.0.2.1' }, /not inside/],
    [{ dns: ['1.1.1.1', '8.8.8.8', '9.9.9.9', '1.0.0.1'] }, /at most 3/],
    [{ dns: ['dns.example.com'] }, /not an IP address/],
    [{ dns: ['2001:db8:::1'] }, /not an IP address/],
    [{ dns: ['1:2:3:4:5:6:7:8:9'] }, /not an IP address/],
    [{ dns: ['1.1.1.1; rm -rf /'] }, /not an IP address/],
  ])('refuses static network %j', (over, message) => {
    const err = expectCode(() => debianEdits(staticNet(over), BOOKWORM_CURRENT), 'INVALID_INPUT');
    expect(err.message).toMatch(message);
  });

  it('accepts edge-case but valid static networks', () => {
    for (const over of [
      { prefix: 31, address: '192.0.2.0', gateway: '192.0.2.1' },
      { prefix: 32, address: '192.0.2.7', gateway: undefined },
      { dns: ['::1', 'fe80::1', '::ffff:192.0.2.1', '2001:db8:0:0:0:0:0:1', '1::'].slice(0, 3) },
      { dns: ['1::'] },
    ]) {
      expect(() => debianEdits(staticNet(over as never), BOOKWORM_CURRENT)).not.toThrow();
    }
  });

  it('writes resolv.conf only for static DNS on an unmanaged resolv.conf', () => {
    expect(writeOf(debianEdits(STATIC_INPUT, BOOKWORM_CURRENT), '/etc/resolv.conf')).toBe(
      '# Written by vmforge from the static network configuration.\nsearch example.com\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n',
    );
    expect(writeOf(debianEdits(STATIC_INPUT, INSTALLED_CURRENT), '/etc/resolv.conf')).toBeUndefined();
    expect(writeOf(debianEdits(DHCP_INPUT, BOOKWORM_CURRENT), '/etc/resolv.conf')).toBeUndefined();
    expect(writeOf(debianEdits(staticNet({ dns: [] }), BOOKWORM_CURRENT), '/etc/resolv.conf')).toBeUndefined();
  });

  it('regenerates SSH host keys only where an SSH server is installed', () => {
    const withSshd = debianEdits(DHCP_INPUT, BOOKWORM_CURRENT);
    expect(withSshd.filter((e) => e.kind === 'delete' && e.path.startsWith('/etc/ssh/')).map((e) => e.path)).toEqual(
      BOOKWORM_SSH.filter((n) => n.startsWith('ssh_host_')).map((n) => `/etc/ssh/${n}`),
    );
    expect(withSshd).toContainEqual({
      kind: 'symlink',
      path: '/etc/systemd/system/ssh.service.wants/vmforge-ssh-hostkeys.service',
      target: '/etc/systemd/system/vmforge-ssh-hostkeys.service',
    });
    const noSshd = debianEdits(DHCP_INPUT, INSTALLED_CURRENT);
    expect(noSshd.some((e) => e.path.includes('ssh'))).toBe(false);
  });

  it('creates each directory before writing or linking into it', () => {
    const edits = debianEdits(STATIC_INPUT, BOOKWORM_CURRENT);
    const made = new Set(['/', '/etc', '/etc/systemd/system', '/etc/ssh', '/etc/udev/rules.d', '/var/lib/dbus']);
    for (const e of edits) {
      if (e.kind === 'mkdir') made.add(e.path);
      else if (e.kind !== 'delete') expect(made, e.path).toContain(path.posix.dirname(e.path));
    }
  });

  it('ends fstab with a newline', () => {
    expect(writeOf(debianEdits({ ...DHCP_INPUT, fstabText: 'UUID=x / ext4 defaults 0 1' }, BOOKWORM_CURRENT), '/etc/fstab')).toBe(
      'UUID=x / ext4 defaults 0 1\n',
    );
  });
});

describe('hostsFile', () => {
  it('replaces the lines it owns and keeps the rest in order', () => {
    const text = hostsFile('web01', undefined, '127.0.0.1 localhost localhost.localdomain\n192.0.2.9 other\n::1 localhost\nfe00::0 ip6-localnet\n');
    expect(text).toBe(
      [
        '127.0.0.1\tlocalhost',
        '127.0.1.1\tweb01',
        '',
        '# The following lines are desirable for IPv6 capable hosts',
        '::1     localhost ip6-localhost ip6-loopback',
        'ff02::1 ip6-allnodes',
        'ff02::2 ip6-allrouters',
        '',
        '192.0.2.9 other',
        'fe00::0 ip6-localnet',
        '',
      ].join('\n'),
    );
  });

  it('keeps comments, including commented-out managed lines', () => {
    expect(hostsFile('a', undefined, '#127.0.1.1 old\n')).toContain('\n\n#127.0.1.1 old\n');
  });
});

describe('grubDefaults', () => {
  it('keeps unrelated kernel arguments and replaces console and net.ifnames', () => {
    const text = grubDefaults('GRUB_CMDLINE_LINUX="quiet console=ttyS1 net.ifnames=1 apparmor=0"\n');
    expect(text).toContain('GRUB_CMDLINE_LINUX="quiet apparmor=0 console=tty0 console=ttyS0,115200n8 net.ifnames=0"\n');
    expect(text).toContain('GRUB_TERMINAL="console serial"\n');
    expect(text).toContain('GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"\n');
  });

  it('keeps single quotes, unquoted values and export', () => {
    expect(grubDefaults("GRUB_CMDLINE_LINUX='a b'\n")).toContain("GRUB_CMDLINE_LINUX='a b console=tty0 console=ttyS0,115200n8 net.ifnames=0'\n");
    expect(grubDefaults('export GRUB_CMDLINE_LINUX=quiet\n')).toContain('export GRUB_CMDLINE_LINUX="quiet console=tty0');
  });

  it('edits only the last assignment, the one the shell keeps', () => {
    const text = grubDefaults('GRUB_CMDLINE_LINUX="first"\nGRUB_CMDLINE_LINUX="second"\nGRUB_TERMINAL=gfxterm\nGRUB_TERMINAL=console\n');
    expect(text.split('\n').slice(0, 4)).toEqual([
      'GRUB_CMDLINE_LINUX="first"',
      'GRUB_CMDLINE_LINUX="second console=tty0 console=ttyS0,115200n8 net.ifnames=0"',
      'GRUB_TERMINAL=gfxterm',
      'GRUB_TERMINAL="console serial"',
    ]);
  });

  it('adds the variable when there is none, ignoring comments and look-alike names', () => {
    const text = grubDefaults('#GRUB_CMDLINE_LINUX="x"\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_TERMINAL_OUTPUT=gfxterm\n');
    expect(text).toBe(
      [
        '#GRUB_CMDLINE_LINUX="x"',
        'GRUB_CMDLINE_LINUX_DEFAULT="quiet"',
        'GRUB_TERMINAL_OUTPUT=gfxterm',
        'GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8 net.ifnames=0"',
        'GRUB_TERMINAL="console serial"',
        'GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"',
        '',
      ].join('\n'),
    );
  });

  it('refuses a value it cannot parse rather than guessing', () => {
    expectCode(() => grubDefaults('GRUB_CMDLINE_LINUX="quiet \\\n  splash"\n'), 'INVALID_INPUT');
  });

  it('is a fixed point', () => {
    const once = grubDefaults(null);
    expect(grubDefaults(once)).toBe(once);
  });
});
