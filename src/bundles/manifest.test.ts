import { sampleManifest } from '../../test/harness/manifest-fixture.js';
import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../errors.js';
import {
  compareVersions,
  elfArch,
  findKernels,
  osFamily,
  osInfo,
  parseBundleRef,
  parseManifest,
  parseOsRelease,
  pickLatest,
  validateNewBundleId,
  type Manifest,
} from './manifest.js';
import { addListingLine, emptyTotals } from './tar-listing.js';

const DEBIAN_OS_RELEASE = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`;

describe('parseOsRelease', () => {
  it('reads the Debian file', () => {
    const r = parseOsRelease(DEBIAN_OS_RELEASE);
    expect(r).toMatchObject({ ID: 'debian', VERSION_ID: '12', PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)', VERSION_CODENAME: 'bookworm' });
  });

  it('handles single quotes, escapes, comments, blanks and junk lines', () => {
    const r = parseOsRelease(`# comment\n\nNAME='Fancy "OS"'\nPRETTY_NAME="say \\"hi\\" \\$x"\nID=fancy\\ os\nnot a line\nBAD="unterminated\nX=1 # trailing\n`);
    expect(r).toEqual({ NAME: 'Fancy "OS"', PRETTY_NAME: 'say "hi" $x', ID: 'fancy os', X: '1' });
  });
});

describe('osFamily / osInfo', () => {
  it.each([
    [{ ID: 'debian' }, 'debian'],
    [{ ID: 'ubuntu', ID_LIKE: 'debian' }, 'debian'],
    [{ ID: 'rocky', ID_LIKE: 'rhel centos fedora' }, 'rhel'],
    [{ ID: 'fedora' }, 'rhel'],
    [{ ID: 'almalinux', ID_LIKE: 'rhel centos fedora' }, 'rhel'],
    [{ ID: 'opensuse-leap', ID_LIKE: 'suse opensuse' }, 'suse'],
    [{ ID: 'sles' }, 'suse'],
    [{ ID: 'arch' }, 'arch'],
    [{ ID: 'somethingnew', ID_LIKE: 'arch' }, 'arch'],
    [{ ID: 'alpine' }, 'other'],
    [{}, 'other'],
  ] as const)('%j -> %s', (rel, family) => {
    expect(osFamily(rel)).toBe(family);
  });

  it('fills defaults when fields are missing', () => {
    expect(osInfo(parseOsRelease(DEBIAN_OS_RELEASE))).toEqual({
      id: 'debian',
      versionId: '12',
      prettyName: 'Debian GNU/Linux 12 (bookworm)',
      family: 'debian',
    });
    expect(osInfo({ NAME: 'Thing' })).toEqual({ id: 'linux', versionId: '', prettyName: 'Thing', family: 'other' });
  });
});

describe('findKernels', () => {
  it('pairs Debian kernels with initrd.img and sorts newest first', () => {
    const boot = [
      'System.map-6.1.0-9-cloud-amd64',
      'config-6.1.0-9-cloud-amd64',
      'initrd.img-6.1.0-9-cloud-amd64',
      'vmlinuz-6.1.0-9-cloud-amd64',
      'vmlinuz-6.1.0-10-cloud-amd64',
      'initrd.img-6.1.0-10-cloud-amd64',
      'vmlinuz-6.1.0-11-cloud-amd64',
    ];
    expect(findKernels(boot)).toEqual([
      { version: '6.1.0-11-cloud-amd64', kernel: '/boot/vmlinuz-6.1.0-11-cloud-amd64' },
      { version: '6.1.0-10-cloud-amd64', kernel: '/boot/vmlinuz-6.1.0-10-cloud-amd64', initrd: '/boot/initrd.img-6.1.0-10-cloud-amd64' },
      { version: '6.1.0-9-cloud-amd64', kernel: '/boot/vmlinuz-6.1.0-9-cloud-amd64', initrd: '/boot/initrd.img-6.1.0-9-cloud-amd64' },
    ]);
  });

  it('pairs RHEL/Arch initramfs-X.img and SUSE initrd-X, skips rescue images and plain names', () => {
    const boot = [
      'vmlinuz-5.14.0-362.el9.x86_64',
      'initramfs-5.14.0-362.el9.x86_64.img',
      'initramfs-5.14.0-362.el9.x86_64kdump.img',
      'vmlinuz-0-rescue-0123456789abcdef',
      'initramfs-0-rescue-0123456789abcdef.img',
      'vmlinuz-linux',
      'initramfs-linux.img',
      'initramfs-linux-fallback.img',
      'vmlinuz-6.4.0-150600.21-default',
      'initrd-6.4.0-150600.21-default',
      'vmlinuz',
      'initrd.img',
    ];
    const ks = findKernels(boot);
    expect(ks).toContainEqual({ version: '5.14.0-362.el9.x86_64', kernel: '/boot/vmlinuz-5.14.0-362.el9.x86_64', initrd: '/boot/initramfs-5.14.0-362.el9.x86_64.img' });
    expect(ks).toContainEqual({ version: 'linux', kernel: '/boot/vmlinuz-linux', initrd: '/boot/initramfs-linux.img' });
    expect(ks).toContainEqual({ version: '6.4.0-150600.21-default', kernel: '/boot/vmlinuz-6.4.0-150600.21-default', initrd: '/boot/initrd-6.4.0-150600.21-default' });
    expect(ks.map((k) => k.version)).not.toContain('0-rescue-0123456789abcdef');
    expect(ks).toHaveLength(3);
  });

  it('returns [] for an empty /boot', () => {
    expect(findKernels([])).toEqual([]);
  });
});

describe('compareVersions', () => {
  it('orders digit runs numerically', () => {
    expect(compareVersions('6.1.0-10', '6.1.0-9')).toBe(1);
    expect(compareVersions('1.2', '1.2')).toBe(0);
    expect(compareVersions('1.2', '1.2.1')).toBe(-1);
    expect(compareVersions('a', 'b')).toBe(-1);
    expect(compareVersions('99999999999999999999', '100000000000000000000')).toBe(-1);
  });
});

describe('parseBundleRef', () => {
  it('defaults the version to latest', () => {
    expect(parseBundleRef('debian')).toEqual({ name: 'debian', version: 'latest' });
    expect(parseBundleRef('debian-bookworm:20240101-ab12cd34')).toEqual({ name: 'debian-bookworm', version: '20240101-ab12cd34' });
    expect(parseBundleRef('debian:latest')).toEqual({ name: 'debian', version: 'latest' });
    expect(parseBundleRef('deb_ian.x:12+1')).toEqual({ name: 'deb_ian.x', version: '12+1' });
  });

  it.each(['', ':1', 'Debian', '-x', '.x', 'a/b', 'a:b/c', 'a..b', 'a:..', 'a:1..2', 'a:', 'a:b:c', 'a b', 'x'.repeat(64), `a:${'1'.repeat(64)}`, '../etc'])(
    'rejects %j',
    (ref) => {
      expect(() => parseBundleRef(ref)).toThrow(VmforgeError);
      try {
        parseBundleRef(ref);
      } catch (e) {
        expect((e as VmforgeError).code).toBe('INVALID_INPUT');
        expect((e as VmforgeError).hint).toBeTruthy();
      }
    },
  );

  it('accepts the longest names', () => {
    expect(parseBundleRef('x'.repeat(63)).name).toHaveLength(63);
  });

  it('does not allow creating a version called latest', () => {
    expect(() => validateNewBundleId('debian', 'latest')).toThrow(/reserved/);
    expect(() => validateNewBundleId('debian', '1')).not.toThrow();
  });
});

const sample = (over: Partial<Manifest> = {}): Manifest => sampleManifest({ excludes: ['./proc/*'], ...over });

describe('manifest schema', () => {
  it('accepts a full manifest, with and without source', () => {
    expect(parseManifest(sample())).toEqual(sample());
    const withSource = sample({ source: { kind: 'debootstrap', cacheKey: 'b'.repeat(64) } });
    expect(parseManifest(JSON.parse(JSON.stringify(withSource)))).toEqual(withSource);
  });

  it.each([
    ['wrong schema version', { schemaVersion: 2 }],
    ['bad name', { name: 'A/B' }],
    ['version latest', { version: 'latest' }],
    ['bad date', { created: 'yesterday' }],
    ['bad sha', { sha256: 'xyz' }],
    ['bad compression', { compression: 'lz4' }],
    ['kernel outside /boot', { kernels: [{ version: '1', kernel: '/vmlinuz' }] }],
    ['negative size', { unpackedBytes: -1 }],
    ['unknown field', { extra: 1 }],
  ])('rejects %s', (_what, over) => {
    expect(() => parseManifest({ ...sample(), ...over })).toThrow(/not a valid bundle manifest/);
  });
});

describe('pickLatest', () => {
  it('takes the newest created, ties broken by version', () => {
    const a = sample({ version: '2', created: '2026-01-01T00:00:00Z' });
    const b = sample({ version: '1', created: '2026-02-01T00:00:00Z' });
    const c = sample({ version: '10', created: '2026-02-01T00:00:00Z' });
    expect(pickLatest([a, b])?.version).toBe('1');
    expect(pickLatest([a, b, c])?.version).toBe('10');
    expect(pickLatest([c, b, a])?.version).toBe('10');
    expect(pickLatest([])).toBeUndefined();
  });
});

describe('elfArch', () => {
  const header = (cls: number, data: number, machine: number) => {
    const h = new Uint8Array(20);
    h.set([0x7f, 0x45, 0x4c, 0x46, cls, data]);
    if (data === 1) h.set([machine & 0xff, machine >> 8], 18);
    else h.set([machine >> 8, machine & 0xff], 18);
    return h;
  };
  it('maps machines to uname names', () => {
    expect(elfArch(header(2, 1, 0x3e))).toBe('x86_64');
    expect(elfArch(header(2, 1, 0xb7))).toBe('aarch64');
    expect(elfArch(header(2, 1, 0x15))).toBe('ppc64le');
    expect(elfArch(header(2, 2, 0x16))).toBe('s390x');
    expect(elfArch(header(2, 1, 0xf3))).toBe('riscv64');
    expect(elfArch(header(1, 1, 0x03))).toBe('i686');
    expect(elfArch(header(2, 1, 0x9999))).toBeUndefined();
    expect(elfArch(new TextEncoder().encode('#!/bin/sh\necho hello world'))).toBeUndefined();
    expect(elfArch(new Uint8Array(4))).toBeUndefined();
  });
});

describe('tar -vv listing totals', () => {
  it('counts entries and regular file bytes only', () => {
    const t = emptyTotals();
    const lines = [
      'drwxr-xr-x  0/0               0 2026-11-25 18:37 ./',
      '-rw-r--r--+ 0/0               3 2026-11-25 18:37 ./a',
      'drwxr-xr-x  4242/0            0 2026-11-25 18:37 ./d/',
      'hrw-r--r--  0/0               0 2026-11-25 18:37 ./hl link to ./a',
      'crw-r--r--  0/0             1,3 2026-11-25 18:37 ./null',
      'lrwxrwxrwx  0/0               0 2026-11-25 18:37 ./sl -> a',
      '-rw-r--r--  0/0        10485760 2026-11-25 18:37 ./sparse',
      '-rw-r--r--  0/0               2 2026-11-25 18:37 ./we ird\\nname',
    ];
    for (const l of lines) expect(addListingLine(t, l)).toBe(true);
    expect(addListingLine(t, 'tar: ./sock: socket ignored')).toBe(false);
    expect(addListingLine(t, '')).toBe(false);
    expect(t).toEqual({ entries: 8, bytes: 10485765 });
  });
});
