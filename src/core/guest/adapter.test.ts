import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { matchGolden } from '../../../test/harness/golden.js';
import { FIXTURE_FAMILIES, fixtureSnapshot, renderEdits } from '../../../test/harness/guest-fixtures.js';
import { VmforgeError } from '../../errors.js';
import type { FileEdit } from '../model/spec.js';
import { DETECTION_READS, describeGuestOs, detectGuestFamily, guestAdapterFor, readGuestFiles, type GuestEditInput, type GuestFamily } from './adapter.js';
import type { GuestFiles, GuestFilesNeeded } from './current-files.js';

const FSTAB = [
  '# /etc/fstab: static file system information, written by vmforge.',
  '# <file system> <mount point> <type> <options> <dump> <pass>',
  'UUID=0b7c2f3e-58d5-4c0b-9c55-3f1f3e0f6a11 / ext4 errors=remount-ro 0 1',
  'UUID=5a1d9c44-1f2e-4a8b-b0a4-8c1e2f3a4b5c none swap sw 0 0',
  '',
].join('\n');
const ROOT_UUID = '0b7c2f3e-58d5-4c0b-9c55-3f1f3e0f6a11';
const CONNECTION_UUID = '7d0c1b2a-3e4f-4a5b-9c6d-0e1f2a3b4c5d';
const SHA512 = '$6$rounds=5000$vmforgeSalt$QmFzZTY0SGFzaE9mVGhlTmV3Um9vdFBhc3N3b3JkRm9yVGVzdHM';
const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZtZm9yZ2UtdGVzdC1rZXktbm90LWEtcmVhbC1vbmU admin@example.com';

const STATIC: GuestEditInput = {
  hostname: 'web01',
  domain: 'example.com',
  fstabText: FSTAB,
  rootFsUuid: ROOT_UUID,
  connectionUuid: CONNECTION_UUID,
  net: { mode: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1', dns: ['192.0.2.53', '2001:db8::53'] },
  iface: 'eth0',
  rootPasswordHash: SHA512,
  sshAuthorizedKeys: [ED25519],
  timezone: 'Europe/Berlin',
};

const DHCP: GuestEditInput = {
  hostname: 'db01',
  fstabText: FSTAB,
  rootFsUuid: ROOT_UUID,
  connectionUuid: CONNECTION_UUID,
  net: { mode: 'dhcp' },
  iface: 'eth0',
};

const CASES = FIXTURE_FAMILIES;

async function editsFor(fixture: string, family: GuestFamily, input: GuestEditInput, snapshot = fixtureSnapshot(fixture)): Promise<FileEdit[]> {
  const adapter = guestAdapterFor(family);
  return adapter.edits(input, await readGuestFiles(adapter, input, snapshot));
}

function writeOf(edits: readonly FileEdit[], p: string): (FileEdit & { kind: 'write' }) | undefined {
  return edits.find((e): e is FileEdit & { kind: 'write' } => e.kind === 'write' && e.path === p);
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<VmforgeError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VmforgeError);
  expect((err as VmforgeError).code).toBe(code);
  return err as VmforgeError;
}

/** The fixture with `edits` applied, as a snapshot function: for the fixed-point check. */
function appliedSnapshot(fixture: string, edits: readonly FileEdit[]): (needs: GuestFilesNeeded) => Promise<GuestFiles> {
  const base = fixtureSnapshot(fixture);
  const files = new Map<string, string | null>();
  const links = new Map<string, string | null>();
  for (const e of edits) {
    if (e.kind === 'write') files.set(e.path, e.content);
    else if (e.kind === 'delete') files.set(e.path, null);
    else if (e.kind === 'symlink') links.set(e.path, e.target);
  }
  return async (needs) => {
    const got = await base(needs);
    const dirs = Object.fromEntries(
      Object.entries(got.dirs).map(([dir, names]) => {
        const set = new Set(names);
        for (const [p, v] of files) {
          if (path.posix.dirname(p) !== dir) continue;
          if (v === null) set.delete(path.posix.basename(p));
          else set.add(path.posix.basename(p));
        }
        return [dir, [...set].sort()];
      }),
    );
    return {
      files: Object.fromEntries(Object.entries(got.files).map(([p, v]) => [p, files.has(p) ? files.get(p)! : v])),
      dirs,
      links: Object.fromEntries(Object.entries(got.links).map(([p, v]) => [p, links.has(p) ? links.get(p)! : v])),
    };
  };
}

describe.each(CASES)('$fixture', ({ fixture, family }) => {
  it(`is detected as ${family} from its files`, async () => {
    expect(detectGuestFamily({ current: await fixtureSnapshot(fixture)(DETECTION_READS) })).toBe(family);
  });

  it('static network, root password, SSH key and time zone (golden)', async () => {
    matchGolden(import.meta.dirname, `${fixture}-static.txt`, renderEdits(await editsFor(fixture, family, STATIC)));
  });

  it('DHCP and nothing optional (golden)', async () => {
    matchGolden(import.meta.dirname, `${fixture}-dhcp.txt`, renderEdits(await editsFor(fixture, family, DHCP)));
  });

  it('is a fixed point: adapting the adapted root again changes nothing', async () => {
    for (const input of [STATIC, DHCP]) {
      const first = await editsFor(fixture, family, input);
      const second = await editsFor(fixture, family, input, appliedSnapshot(fixture, first));
      // Boot entries already right are not rewritten, so the second run may write less, never anything else.
      const firstWrites = first.filter((e) => e.kind === 'write');
      for (const e of second.filter((x) => x.kind === 'write')) expect(firstWrites, e.path).toContainEqual(e);
    }
  });

  it('makes each directory before writing or linking into it', async () => {
    const edits = await editsFor(fixture, family, STATIC);
    const made = new Set<string>();
    for (const e of edits) {
      if (e.kind === 'mkdir') made.add(e.path);
      else if (e.kind !== 'delete') {
        const dir = path.posix.dirname(e.path);
        const inFixture = (await fixtureSnapshot(fixture)({ files: [], dirs: [path.posix.dirname(dir)], links: [] })).dirs[path.posix.dirname(dir)]!.includes(path.posix.basename(dir));
        expect(made.has(dir) || inFixture || dir === '/', `${e.kind} ${e.path}`).toBe(true);
      }
    }
  });

  it('leaves no template identity behind', async () => {
    const edits = await editsFor(fixture, family, STATIC);
    const deleted = edits.filter((e) => e.kind === 'delete').map((e) => e.path);
    expect(deleted).toContain('/var/lib/dbus/machine-id');
    expect(deleted).toContain('/etc/udev/rules.d/70-persistent-net.rules');
    const keys = (await fixtureSnapshot(fixture)({ files: [], dirs: ['/etc/ssh'], links: [] })).dirs['/etc/ssh']!.filter((n) => n.startsWith('ssh_host_'));
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) expect(deleted).toContain(`/etc/ssh/${k}`);
    const ak = writeOf(edits, '/root/.ssh/authorized_keys');
    expect(ak?.mode).toBe(0o600);
    expect(ak?.content).toBe(`${ED25519}\n`);
    expect(edits).toContainEqual({ kind: 'mkdir', path: '/root/.ssh', mode: 0o700 });
    expect(edits).toContainEqual({ kind: 'symlink', path: '/etc/localtime', target: '/usr/share/zoneinfo/Europe/Berlin' });
    expect(writeOf(edits, '/etc/shadow')?.content).toMatch(/^root:\$6\$rounds=5000\$vmforgeSalt\$/);
    expect(writeOf(edits, '/etc/fstab')?.content).toBe(FSTAB);
    // Nothing the adapter writes names the template's MAC address.
    for (const e of edits) if (e.kind === 'write') expect(e.content, e.path).not.toMatch(/52:54:00:/i);
  });
});

describe('detection', () => {
  const os = (id: string, versionId: string, family: 'debian' | 'rhel' | 'suse' | 'arch' | 'other') => ({ id, versionId, prettyName: `${id} ${versionId}`, family });

  it.each([
    [os('debian', '12', 'debian'), 'debian'],
    [os('debian', '', 'debian'), 'debian'],
    [os('ubuntu', '16.04', 'debian'), 'debian'],
    [os('ubuntu', '18.04', 'debian'), 'ubuntu'],
    [os('ubuntu', '24.04', 'debian'), 'ubuntu'],
    [os('centos', '6.10', 'rhel'), 'rhel-legacy'],
    [os('rhel', '7.9', 'rhel'), 'rhel-legacy'],
    [os('almalinux', '8.9', 'rhel'), 'rhel8'],
    [os('centos', '8', 'rhel'), 'rhel8'],
    [os('almalinux', '9.3', 'rhel'), 'rhel9'],
    [os('rocky', '10.0', 'rhel'), 'rhel9'],
    [os('fedora', '28', 'rhel'), 'rhel-legacy'],
    [os('fedora', '35', 'rhel'), 'rhel8'],
    [os('fedora', '36', 'rhel'), 'rhel9'],
    [os('amzn', '2', 'rhel'), 'rhel-legacy'],
    [os('amzn', '2023', 'rhel'), 'systemd-networkd'],
    [os('arch', '', 'arch'), 'systemd-networkd'],
    [os('rhel', '', 'rhel'), null],
    [os('opensuse-leap', '15.5', 'suse'), null],
    [os('gentoo', '2.15', 'other'), null],
  ] as const)('manifest os %j -> %s', (manifestOs, family) => {
    expect(detectGuestFamily({ manifestOs })).toBe(family);
  });

  const files = (over: Record<string, string>, netplan: string[] = []): GuestFiles => ({
    files: Object.fromEntries(DETECTION_READS.files.map((p) => [p, over[p] ?? null])),
    dirs: { '/etc/netplan': netplan },
    links: {},
  });

  it('reads CentOS 6 from redhat-release alone', () => {
    expect(detectGuestFamily({ current: files({ '/etc/redhat-release': 'CentOS release 6.10 (Final)\n' }) })).toBe('rhel-legacy');
    expect(detectGuestFamily({ current: files({ '/etc/redhat-release': 'Red Hat Enterprise Linux Server release 5.11 (Tikanga)\n' }) })).toBe('rhel-legacy');
  });

  it('reads old Debian from debian_version alone', () => {
    expect(detectGuestFamily({ current: files({ '/etc/debian_version': '7.11\n' }) })).toBe('debian');
  });

  it('takes a Debian derivative with netplan configuration as netplan-based', () => {
    const mint = 'ID=linuxmint\nID_LIKE="ubuntu debian"\nVERSION_ID="21.2"\n';
    expect(detectGuestFamily({ current: files({ '/etc/os-release': mint }, ['01-network-manager-all.yaml']) })).toBe('ubuntu');
    expect(detectGuestFamily({ current: files({ '/etc/os-release': 'ID=debian\nVERSION_ID="12"\n' }) })).toBe('debian');
  });

  it('falls back to the manifest when the files say nothing known', () => {
    expect(detectGuestFamily({ current: files({}), manifestOs: os('rocky', '9.3', 'rhel') })).toBe('rhel9');
    expect(detectGuestFamily({ current: files({}) })).toBeNull();
    expect(describeGuestOs({ current: files({ '/etc/os-release': 'ID=opensuse-leap\nVERSION_ID="15.5"\nPRETTY_NAME="openSUSE Leap 15.5"\n' }) })).toBe(
      'openSUSE Leap 15.5',
    );
  });
});

describe('adapters', () => {
  it('refuse to plan from files they did not ask for', () => {
    for (const { family } of CASES) {
      expect(() => guestAdapterFor(family).edits(DHCP, { files: {}, dirs: {}, links: {} })).toThrow(VmforgeError);
    }
  });

  it('check the input before anything else', async () => {
    await expectCode(editsFor('rocky-9', 'rhel9', { ...DHCP, rootFsUuid: 'not-a-uuid' }), 'INVALID_INPUT');
    await expectCode(editsFor('rocky-9', 'rhel9', { ...DHCP, hostname: 'Web_01' }), 'INVALID_INPUT');
    await expectCode(editsFor('centos-6', 'rhel-legacy', { ...STATIC, timezone: 'Mars/Olympus_Mons' }), 'NOT_FOUND');
    await expectCode(editsFor('arch', 'systemd-networkd', { ...DHCP, sshAuthorizedKeys: ['-----BEGIN OPENSSH PRIVATE KEY-----'] }), 'INVALID_INPUT');
  });

  it('switch SELinux to permissive or off on request, only where it is configured', async () => {
    const edits = await editsFor('rocky-9', 'rhel9', { ...DHCP, selinux: 'disabled' });
    expect(writeOf(edits, '/etc/selinux/config')?.content).toMatch(/^SELINUX=disabled$/m);
    expect(edits.some((e) => e.path === '/.autorelabel')).toBe(false);
    const debian = await editsFor('debian-12', 'debian', { ...DHCP, selinux: 'permissive' });
    expect(debian.some((e) => e.path.includes('selinux') || e.path === '/.autorelabel')).toBe(false);
  });

  it('write netplan for the release: gateway4 on 18.04', async () => {
    const bionic = fixtureSnapshot('ubuntu-22.04');
    const snapshot = async (needs: GuestFilesNeeded) => {
      const got = await bionic(needs);
      return Object.hasOwn(got.files, '/etc/os-release') ? { ...got, files: { ...got.files, '/etc/os-release': 'ID=ubuntu\nVERSION_ID="18.04"\n' } } : got;
    };
    const edits = await editsFor('ubuntu-22.04', 'ubuntu', STATIC, snapshot);
    expect(writeOf(edits, '/etc/netplan/50-vmforge.yaml')?.content).toContain('gateway4: 192.0.2.1');
  });

  it('keep a resolv.conf another service owns, take over a plain one', async () => {
    expect((await editsFor('ubuntu-22.04', 'ubuntu', STATIC)).some((e) => e.path === '/etc/resolv.conf')).toBe(false);
    expect(await editsFor('arch', 'systemd-networkd', STATIC)).toContainEqual({ kind: 'symlink', path: '/etc/resolv.conf', target: '/run/systemd/resolve/stub-resolv.conf' });
  });

  it('keep the ifcfg format on a RHEL 8 template that uses it, and a keyfile on one that does not', async () => {
    const ifcfg = await editsFor('rhel-8', 'rhel8', DHCP);
    expect(writeOf(ifcfg, '/etc/sysconfig/network-scripts/ifcfg-eth0')?.content).toMatch(/^BOOTPROTO=dhcp$/m);
    expect(ifcfg.some((e) => e.path.endsWith('.nmconnection'))).toBe(false);
    // Rocky 9's tree has only keyfiles: as an RHEL 8-style template it gets a keyfile.
    const keyfile = await editsFor('rocky-9', 'rhel8', DHCP);
    expect(writeOf(keyfile, '/etc/NetworkManager/system-connections/eth0.nmconnection')?.mode).toBe(0o600);
    expect(keyfile.some((e) => e.path.includes('ifcfg-eth0'))).toBe(false);
  });
});
