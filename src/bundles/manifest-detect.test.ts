import { describe, expect, it } from 'vitest';
import { detectBootloader, detectOs, manifestSchema, parseManifest } from './manifest.js';

describe('detectOs', () => {
  it('prefers os-release', () => {
    expect(detectOs({ osRelease: 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n', debianVersion: '12.5\n' })).toEqual({
      id: 'debian',
      versionId: '12',
      prettyName: 'Debian GNU/Linux 12 (bookworm)',
      family: 'debian',
    });
  });

  it('takes the family from a release file when os-release names none we know', () => {
    expect(detectOs({ osRelease: 'ID=mycorp\nNAME="MyCorp Linux"\n', redhatRelease: 'MyCorp Linux release 9.1\n' }).family).toBe('rhel');
    expect(detectOs({ osRelease: 'ID=weird\n', debianVersion: 'trixie/sid\n' }).family).toBe('debian');
    expect(detectOs({ osRelease: 'ID=weird\n' }).family).toBe('other');
  });

  it('falls back to redhat-release, SuSE-release, debian_version, arch-release', () => {
    expect(detectOs({ redhatRelease: 'CentOS release 6.10 (Final)\n' })).toEqual({ id: 'centos', versionId: '6.10', prettyName: 'CentOS release 6.10 (Final)', family: 'rhel' });
    expect(detectOs({ redhatRelease: 'Red Hat Enterprise Linux Server release 5.11 (Tikanga)' })).toMatchObject({ id: 'rhel', versionId: '5.11', family: 'rhel' });
    expect(detectOs({ suseRelease: 'openSUSE 13.2 (x86_64)\nVERSION = 13.2\nCODENAME = Harlequin\n' })).toMatchObject({ id: 'opensuse', versionId: '13.2', family: 'suse' });
    expect(detectOs({ debianVersion: '7.11\n' })).toEqual({ id: 'debian', versionId: '7.11', prettyName: 'Debian GNU/Linux 7.11', family: 'debian' });
    expect(detectOs({ archRelease: true })).toMatchObject({ id: 'arch', family: 'arch' });
    expect(detectOs({})).toEqual({ id: 'linux', versionId: '', prettyName: 'linux', family: 'other' });
    expect(detectOs({ redhatRelease: '\n' }).family).toBe('other');
  });
});

describe('detectBootloader', () => {
  const has = (...paths: string[]) => (p: string) => paths.includes(p);
  it('tells GRUB 2 from GRUB legacy from none', () => {
    expect(detectBootloader(has('/boot/grub/grub.cfg', '/boot/grub/menu.lst'))).toBe('grub2');
    expect(detectBootloader(has('/boot/grub2/grub.cfg'))).toBe('grub2');
    expect(detectBootloader(has('/boot/grub/menu.lst', '/usr/sbin/grub-install'))).toBe('grub-legacy');
    expect(detectBootloader(has('/boot/grub/grub.conf'))).toBe('grub-legacy');
    expect(detectBootloader(has('/usr/lib/grub/i386-pc'))).toBe('grub2');
    expect(detectBootloader(has())).toBe('none');
  });
});

describe('manifest schema compatibility', () => {
  const base = {
    schemaVersion: 1,
    name: 'x',
    version: '1',
    created: '2026-01-01T00:00:00.000Z',
    os: { id: 'debian', versionId: '12', prettyName: 'Debian', family: 'debian' },
    arch: 'x86_64',
    kernels: [],
    unpackedBytes: 1,
    fileCount: 1,
    compressedBytes: 1,
    compression: 'zstd',
    sha256: 'a'.repeat(64),
    excludes: [],
  };
  it('reads manifests written before the optional fields existed', () => {
    expect(parseManifest(base).bootloader).toBeUndefined();
    expect(parseManifest({ ...base, source: { kind: 'debootstrap', cacheKey: 'b'.repeat(64) } }).source?.kind).toBe('debootstrap');
  });
  it('accepts the new fields and source kinds, and still rejects unknown keys', () => {
    const m = parseManifest({ ...base, sourceHost: 'hv1', bootloader: 'grub-legacy', emptied: ['./etc/machine-id'], source: { kind: 'import', file: 'a.tgz' } });
    expect(m).toMatchObject({ sourceHost: 'hv1', bootloader: 'grub-legacy', emptied: ['./etc/machine-id'] });
    expect(manifestSchema.safeParse({ ...base, source: { kind: 'root', path: '/' } }).success).toBe(true);
    expect(manifestSchema.safeParse({ ...base, bootloader: 'lilo' }).success).toBe(false);
    expect(manifestSchema.safeParse({ ...base, surprise: 1 }).success).toBe(false);
  });
});
