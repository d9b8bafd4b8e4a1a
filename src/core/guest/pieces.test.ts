import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import { authorizedKeysEdits, validateAuthorizedKey } from './accounts.js';
import { GUEST_FAMILIES, parseGuestFamily, resolveGuestFamily } from './families.js';
import { ifcfgFile, staleIfcfgDeletes, sysconfigNetwork } from './ifcfg.js';
import { blsEntry, grub2Cfg, grubenvWithKernelopts, legacyGrubConf, rewriteKernelArgs } from './kernel-args.js';
import { hadSeparateBoot } from './el-boot.js';
import { keyfile, staleKeyfileDeletes } from './nm-keyfile.js';
import { parseSelinuxMode, selinuxEdits } from './selinux.js';
import { timezoneEdits, validateTimezone } from './timezone.js';
import { netplanYaml } from './netplan.js';
import { rewriteShellVars } from './text.js';

const UUID = '0b7c2f3e-58d5-4c0b-9c55-3f1f3e0f6a11';
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZtZm9yZ2U admin@example.com';

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

describe('guest families', () => {
  it('accepts every family by name', () => {
    for (const f of GUEST_FAMILIES) expect(parseGuestFamily(f)).toBe(f);
  });

  it('refuses an unknown family with a hint listing all of them', () => {
    const err = expectCode(() => parseGuestFamily('suse'), 'INVALID_INPUT');
    for (const f of GUEST_FAMILIES) expect(err.hint).toContain(f);
  });

  it('prefers the forced family, then the detected one, else says what it found', () => {
    expect(resolveGuestFamily('rhel8', 'rhel9', 'Rocky Linux 9.3')).toBe('rhel8');
    expect(resolveGuestFamily(undefined, 'rhel9', 'Rocky Linux 9.3')).toBe('rhel9');
    const err = expectCode(() => resolveGuestFamily(undefined, null, 'openSUSE Leap 15.5'), 'INVALID_INPUT');
    expect(err.message).toContain('openSUSE Leap 15.5');
    expect(err.hint).toMatch(/^force one with --guest-family: debian \(/);
    expectCode(() => resolveGuestFamily('Debian', 'debian', 'x'), 'INVALID_INPUT');
  });
});

describe('SELinux', () => {
  const config = '# comment\nSELINUX=enforcing\nSELINUXTYPE=targeted\n';

  it('relabels at first boot by default and leaves the policy mode alone', () => {
    expect(selinuxEdits('relabel', config)).toEqual([{ kind: 'write', path: '/.autorelabel', content: '' }]);
  });

  it.each(['permissive', 'disabled'] as const)('%s rewrites SELINUX= only', (mode) => {
    expect(selinuxEdits(mode, config)).toEqual([{ kind: 'write', path: '/etc/selinux/config', content: `# comment\nSELINUX=${mode}\nSELINUXTYPE=targeted\n` }]);
  });

  it('does nothing on a guest without SELinux', () => {
    for (const mode of ['relabel', 'permissive', 'disabled'] as const) expect(selinuxEdits(mode, null)).toEqual([]);
  });

  it('validates the mode', () => {
    expect(parseSelinuxMode('permissive')).toBe('permissive');
    expectCode(() => parseSelinuxMode('enforcing'), 'INVALID_INPUT');
  });
});

describe('time zone', () => {
  it('links /etc/localtime and writes /etc/timezone where the family keeps one', () => {
    expect(timezoneEdits('Europe/Berlin', ['Berlin', 'London'], { etcTimezone: true })).toEqual([
      { kind: 'symlink', path: '/etc/localtime', target: '/usr/share/zoneinfo/Europe/Berlin' },
      { kind: 'write', path: '/etc/timezone', content: 'Europe/Berlin\n' },
    ]);
  });

  it("keeps RHEL 6's /etc/sysconfig/clock in step", () => {
    expect(timezoneEdits('UTC', ['UTC'], { etcTimezone: false, sysconfigClock: 'ZONE="America/New_York"\nUTC=true\n' })[1]).toEqual({
      kind: 'write',
      path: '/etc/sysconfig/clock',
      content: 'ZONE="UTC"\nUTC=true\n',
    });
  });

  it('refuses a zone the guest does not have, and names that are not zones', () => {
    expectCode(() => timezoneEdits('Europe/Atlantis', ['Berlin'], { etcTimezone: false }), 'NOT_FOUND');
    for (const zone of ['../etc/passwd', '/UTC', 'Europe//Berlin', 'Europe/Ber lin', '']) expectCode(() => validateTimezone(zone), 'INVALID_INPUT');
  });
});

describe('authorized_keys', () => {
  it('appends only keys root does not have yet', () => {
    const edits = authorizedKeysEdits([KEY, KEY], `# existing\n${KEY}\n`);
    expect(edits[1]).toEqual({ kind: 'write', path: '/root/.ssh/authorized_keys', content: `# existing\n${KEY}\n`, mode: 0o600 });
    expect(authorizedKeysEdits([], null)).toEqual([]);
  });

  it('accepts options and certificates, refuses private keys and garbage', () => {
    expect(validateAuthorizedKey(`from="10.0.0.0/8" ${KEY}`)).toContain('ssh-ed25519');
    expect(validateAuthorizedKey('ecdsa-sha2-nistp256 AAAAE2VjZHNh x')).toContain('ecdsa');
    expectCode(() => validateAuthorizedKey('-----BEGIN OPENSSH PRIVATE KEY-----'), 'INVALID_INPUT');
    expectCode(() => validateAuthorizedKey('hello world'), 'INVALID_INPUT');
    expectCode(() => validateAuthorizedKey('ssh-ed25519 not!base64'), 'INVALID_INPUT');
    expectCode(() => validateAuthorizedKey(`${KEY}\nssh-rsa AAAA`), 'INVALID_INPUT');
  });
});

describe('kernel arguments', () => {
  it('points root= at the new filesystem and drops what names the template disk', () => {
    expect(rewriteKernelArgs('root=/dev/mapper/rl-root ro resume=/dev/mapper/rl-swap rd.lvm.lv=rl/root rootflags=subvol=root console=tty1 quiet $tuned_params', UUID, true)).toBe(
      `root=UUID=${UUID} ro quiet console=tty0 console=ttyS0,115200n8 net.ifnames=0 $tuned_params`,
    );
  });

  it('prefixes /boot in entries written for a separate /boot partition', () => {
    expect(hadSeparateBoot('UUID=x /boot xfs defaults 0 0\n')).toBe(true);
    expect(hadSeparateBoot('#UUID=x /boot xfs defaults 0 0\nUUID=y / ext4 defaults 0 1\n')).toBe(false);
    const conf = 'splashimage=(hd0,0)/grub/splash.xpm.gz\ntitle x\n\tkernel /vmlinuz-1 ro root=/dev/VolGroup00/LogVol00 rd_LVM_LV=VolGroup00/LogVol00\n\tinitrd /initramfs-1.img\n';
    expect(legacyGrubConf(conf, UUID, true)).toBe(
      `splashimage=(hd0,0)/boot/grub/splash.xpm.gz\ntitle x\n\tkernel /boot/vmlinuz-1 ro root=UUID=${UUID} console=tty0 console=ttyS0,115200n8 net.ifnames=0\n\tinitrd /boot/initramfs-1.img\n`,
    );
    expect(blsEntry('linux /boot/vmlinuz-1\n', UUID, true)).toBe('linux /boot/vmlinuz-1\n');
    expect(blsEntry('linux /vmlinuz-1\noptions $kernelopts $tuned_params\n', UUID, false)).toBe('linux /vmlinuz-1\noptions $kernelopts $tuned_params\n');
  });

  it('retargets grub.cfg searches for the template filesystem', () => {
    expect(grub2Cfg('\tsearch --no-floppy --fs-uuid --set=root 5e1d2c3b-4a59\n', UUID, false)).toBe(`\tsearch --no-floppy --fs-uuid --set=root ${UUID}\n`);
  });

  it('keeps grubenv exactly 1024 bytes, and refuses to overflow it', () => {
    const env = (body: string) => body + '#'.repeat(1024 - body.length);
    const out = grubenvWithKernelopts(env('# GRUB Environment Block\nkernelopts=root=/dev/sda1 ro\n'), UUID);
    expect(out.length).toBe(1024);
    expect(out).toContain(`kernelopts=root=UUID=${UUID} ro console=tty0`);
    expectCode(() => grubenvWithKernelopts(env(`# GRUB Environment Block\nkernelopts=root=/dev/sda1 ${'x'.repeat(900)}\n`), UUID), 'INVALID_INPUT');
  });
});

describe('network files', () => {
  it('ifcfg: drops HWADDR and old addresses, keeps the rest in place', () => {
    const text = ifcfgFile('eth0', { mode: 'dhcp' }, undefined, UUID, 'DEVICE=eth0\nHWADDR=52:54:00:12:34:56\nNETMASK=255.255.255.0\nIPADDR=10.0.0.5\nMTU=9000\nBOOTPROTO=none\n');
    expect(text).toBe(`DEVICE=eth0\nMTU=9000\nBOOTPROTO=dhcp\nNAME=eth0\nTYPE=Ethernet\nONBOOT=yes\nUUID=${UUID}\n`);
    expect(staleIfcfgDeletes(['ifcfg-eth0', 'ifcfg-lo', 'ifcfg-ens3', 'ifcfg-br0', 'ifup-eth'], 'eth0')).toEqual([
      { kind: 'delete', path: '/etc/sysconfig/network-scripts/ifcfg-ens3' },
    ]);
  });

  it('sysconfig/network: HOSTNAME for RHEL 6, the global GATEWAY always goes', () => {
    expect(sysconfigNetwork('NETWORKING=yes\nHOSTNAME=old\nGATEWAY=10.0.0.1\nNOZEROCONF=yes\n', 'web01.example.com')).toBe(
      'NETWORKING=yes\nHOSTNAME=web01.example.com\nNOZEROCONF=yes\n',
    );
    expect(sysconfigNetwork('# Created by anaconda\n', undefined)).toBe('# Created by anaconda\n');
  });

  it('keyfile: bound to the interface name, IPv6 DNS in the ipv6 setting', () => {
    const text = keyfile('eth0', { mode: 'static', address: '192.0.2.10', prefix: 24, dns: ['2001:db8::1'] }, 'example.com', UUID);
    expect(text).toContain('interface-name=eth0\n');
    expect(text).not.toContain('mac-address');
    expect(text).toContain('[ipv6]\naddr-gen-mode=default\ndns=2001:db8::1;\nmethod=auto\n');
    expect(text).not.toMatch(/\[ipv4\][^[]*dns=/);
  });

  it('keyfile: only ethernet profiles of the template go', () => {
    expect(
      staleKeyfileDeletes(
        [
          ['eth0.nmconnection', '[connection]\ntype=ethernet\n'],
          ['ens3.nmconnection', '[connection]\ntype=802-3-ethernet\n'],
          ['vpn.nmconnection', '[connection]\ntype=wireguard\n'],
        ],
        'eth0.nmconnection',
      ),
    ).toEqual([{ kind: 'delete', path: '/etc/NetworkManager/system-connections/ens3.nmconnection' }]);
  });

  it('netplan: gateway4 before 22.04, a default route after', () => {
    const net = { mode: 'static' as const, address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1', dns: [] };
    expect(netplanYaml('eth0', net, undefined, { defaultRoute: false })).toContain('      gateway4: 192.0.2.1\n');
    expect(netplanYaml('eth0', net, undefined, { defaultRoute: true })).toContain('      routes:\n        - to: default\n          via: 192.0.2.1\n');
  });

  it('rewriteShellVars is a fixed point', () => {
    const once = rewriteShellVars('A=1\n# c\nB=2\nA=3\n', [['A', 'x'], ['C', 'y']], ['B']);
    expect(once).toBe('A=x\n# c\nC=y\n');
    expect(rewriteShellVars(once, [['A', 'x'], ['C', 'y']], ['B'])).toBe(once);
  });
});
