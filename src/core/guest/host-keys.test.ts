import { describe, expect, it } from 'vitest';
import { FIXTURE_FAMILIES, fixtureSnapshot, renderEdits } from '../../../test/harness/guest-fixtures.js';
import { matchGolden } from '../../../test/harness/golden.js';
import { VmforgeError } from '../../errors.js';
import type { FileEdit } from '../model/spec.js';
import { guestAdapterFor, readGuestFiles, type GuestEditInput, type GuestFamily } from './adapter.js';
import { dirOf } from './current-files.js';
import { hostKeyTypesFor, hostKeyWrites, SSH_DIR, withHostKeys, type GuestHostKey } from './ssh-host-keys.js';

const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICbwMis9j92+8KOzrrQiD1jqXDR+a0TWt9mRowXVheX5 root@web01';
const ECDSA =
  'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIaKjLGpKLjdTTJk+YM/Ibz0EazdJUjkU3dDERRMD/AzaGHtzxVZoG8AIsGUMwYNM3bqO0nek5PMMwom91hg5O4= root@web01';
const RSA =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCwhdJV5vl/Fe7SIgP/J+4ieZcVEss42IMfO+Dzs2Kqkmq2yWqoVn16TmNy5OKtFA8AZY5gOU+LeYDh4ylkzz7IHqnd9YAitEBoYTA+uQBYg1z0gpTpQa+9xKVo0tbxGoaSWr4zk35WZETMxGbdXaj6wEQAClCjpiN5xmzTNeylxQ== root@web01';
/** Stand-ins: the shape of ssh-keygen's files, no key in them. */
const fakePrivate = (kind: string, body: string) => new TextEncoder().encode(`-----BEGIN ${kind} PRIVATE KEY-----\n${body}\n-----END ${kind} PRIVATE KEY-----\n`);

const KEYS: GuestHostKey[] = [
  { type: 'ed25519', privateKey: fakePrivate('OPENSSH', 'ZmFrZSBlZDI1NTE5IGhvc3Qga2V5'), publicKey: ED25519 },
  { type: 'ecdsa', privateKey: fakePrivate('EC', 'ZmFrZSBlY2RzYSBob3N0IGtleQ=='), publicKey: ECDSA },
  { type: 'rsa', privateKey: fakePrivate('RSA', 'ZmFrZSByc2EgaG9zdCBrZXk='), publicKey: RSA },
];

const INPUT: GuestEditInput = {
  hostname: 'web01',
  domain: 'example.com',
  fstabText: 'UUID=0b7c2f3e-58d5-4c0b-9c55-3f1f3e0f6a11 / ext4 errors=remount-ro 0 1\n',
  rootFsUuid: '0b7c2f3e-58d5-4c0b-9c55-3f1f3e0f6a11',
  connectionUuid: '7d0c1b2a-3e4f-4a5b-9c6d-0e1f2a3b4c5d',
  net: { mode: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1', dns: ['192.0.2.53'] },
  iface: 'eth0',
};

const CASES = FIXTURE_FAMILIES;

/** As the build wires it: the types the template had, made on the host, in place of the template's. */
async function adapted(fixture: string, family: GuestFamily, keys: readonly GuestHostKey[] = KEYS) {
  const adapter = guestAdapterFor(family);
  const current = await readGuestFiles(adapter, INPUT, fixtureSnapshot(fixture));
  const plain = adapter.edits(INPUT, current);
  const sshDir = dirOf(current, SSH_DIR);
  const types = hostKeyTypesFor(sshDir);
  return { plain, ...withHostKeys(plain, sshDir, keys.filter((k) => types.includes(k.type))), sshDir };
}

const pathsOf = (edits: readonly FileEdit[], kind: FileEdit['kind']) => edits.filter((e) => e.kind === kind).map((e) => e.path);

describe.each(CASES)('$fixture with host keys made on the host', ({ fixture, family }) => {
  it('writes them where the template keys were deleted (golden)', async () => {
    const { edits, installed } = await adapted(fixture, family);
    expect(installed).toBe(true);
    matchGolden(import.meta.dirname, `${fixture}-static-hostkeys.txt`, renderEdits(edits));
  });

  it('changes nothing else, and leaves no template key behind', async () => {
    const { plain, edits, sshDir } = await adapted(fixture, family);
    const written = new Set(pathsOf(edits, 'write'));
    const unit = (p: string) => p.includes('vmforge-ssh-hostkeys');
    // Same edits apart from host keys and the first-boot unit, in the same order.
    const rest = (es: readonly FileEdit[]) => es.filter((e) => !e.path.startsWith('/etc/ssh/ssh_host_') && !unit(e.path) && e.path !== '/etc/systemd/system/ssh.service.wants');
    expect(rest(edits)).toEqual(rest(plain));
    expect(edits.some((e) => unit(e.path))).toBe(false);
    for (const name of sshDir.filter((n) => n.startsWith('ssh_host_'))) {
      const p = `/etc/ssh/${name}`;
      expect(written.has(p) || pathsOf(edits, 'delete').includes(p), p).toBe(true);
    }
    for (const p of written) expect(pathsOf(edits, 'delete'), p).not.toContain(p);
  });
});

describe('hostKeyTypesFor', () => {
  it("makes the types the template had, or all three", () => {
    expect(hostKeyTypesFor(['sshd_config', 'ssh_host_dsa_key', 'ssh_host_key', 'ssh_host_rsa_key', 'ssh_host_rsa_key.pub'])).toEqual(['rsa']);
    expect(hostKeyTypesFor(['sshd_config', 'ssh_host_ecdsa_key.pub', 'ssh_host_ed25519_key'])).toEqual(['ed25519', 'ecdsa']);
    expect(hostKeyTypesFor(['sshd_config'])).toEqual(['ed25519', 'ecdsa', 'rsa']);
  });
});

describe('withHostKeys', () => {
  it('keeps deleting key types it does not replace (DSA, protocol 1)', async () => {
    const { edits } = await adapted('centos-6', 'rhel-legacy', KEYS.filter((k) => k.type === 'rsa'));
    expect(pathsOf(edits, 'delete')).toEqual(expect.arrayContaining(['/etc/ssh/ssh_host_dsa_key', '/etc/ssh/ssh_host_key.pub']));
    expect(pathsOf(edits, 'write')).toEqual(expect.arrayContaining(['/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_rsa_key.pub']));
    expect(pathsOf(edits, 'delete')).not.toContain('/etc/ssh/ssh_host_rsa_key');
  });

  it('leaves a guest without an SSH server, and an empty key list, alone', async () => {
    const { plain } = await adapted('debian-12', 'debian', KEYS);
    const noSshd = withHostKeys(plain, ['ssh_config'], KEYS);
    expect(noSshd).toEqual({ edits: plain, installed: false });
    expect(withHostKeys(plain, ['sshd_config'], [])).toEqual({ edits: plain, installed: false });
  });

  it('puts the writes before the SELinux edits when the template had no keys to delete', () => {
    const edits: FileEdit[] = [
      { kind: 'write', path: '/etc/hostname', content: 'web01\n' },
      { kind: 'write', path: '/.autorelabel', content: '' },
    ];
    const out = withHostKeys(edits, ['sshd_config'], KEYS.slice(0, 1)).edits;
    expect(out.map((e) => e.path)).toEqual(['/etc/hostname', '/etc/ssh/ssh_host_ed25519_key', '/etc/ssh/ssh_host_ed25519_key.pub', '/.autorelabel']);
    expect(withHostKeys(edits.slice(0, 1), ['sshd_config'], KEYS.slice(0, 1)).edits.map((e) => e.path)).toEqual([
      '/etc/hostname',
      '/etc/ssh/ssh_host_ed25519_key',
      '/etc/ssh/ssh_host_ed25519_key.pub',
    ]);
  });
});

describe('hostKeyWrites', () => {
  it('writes the private key 0600 and the public one 0644', () => {
    expect(hostKeyWrites(KEYS.slice(0, 1))).toEqual([
      { kind: 'write', path: '/etc/ssh/ssh_host_ed25519_key', content: new TextDecoder().decode(KEYS[0]!.privateKey), mode: 0o600 },
      { kind: 'write', path: '/etc/ssh/ssh_host_ed25519_key.pub', content: `${ED25519}\n`, mode: 0o644 },
    ]);
  });

  it('refuses two keys of one type, a public key of another type, and a private half that is not a key file', () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    expect(err(() => hostKeyWrites([KEYS[0]!, KEYS[0]!]))).toBeInstanceOf(VmforgeError);
    expect(err(() => hostKeyWrites([{ ...KEYS[0]!, publicKey: 'ssh-ed25519 AAAA' }]))).toBeInstanceOf(VmforgeError);
    const secret = 'correct horse battery staple';
    const e = err(() => hostKeyWrites([{ ...KEYS[0]!, privateKey: new TextEncoder().encode(secret) }]));
    expect(e).toBeInstanceOf(VmforgeError);
    expect((e as Error).message).not.toContain(secret);
  });
});
