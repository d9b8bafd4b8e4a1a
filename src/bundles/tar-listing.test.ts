import { describe, expect, it } from 'vitest';
import { addListingLine, emptyTotals, normalizeMemberName, parseListingEntry } from './tar-listing.js';

describe('tar -tvv listing', () => {
  it('counts entries and regular file bytes', () => {
    const t = emptyTotals();
    for (const l of [
      'drwxr-xr-x 0/0               0 2026-11-25 19:03 ./boot/',
      '-rw-r--r-- 0/0        14149568 2026-07-02 13:50 ./boot/vmlinuz-6.1.0-50-cloud-amd64',
      'hrwxr-xr-x 0/0               0 2025-08-29 12:09 ./usr/bin/perl5.36.0 link to ./usr/bin/perl',
      'crw-r--r-- 0/0             1,3 2026-01-01 00:00 ./dev/null',
      'tar: Removing leading `/\' from member names',
    ])
      addListingLine(t, l);
    expect(t).toEqual({ entries: 4, bytes: 14149568 });
  });

  it('parses names, link targets and the root', () => {
    expect(parseListingEntry('-rw-r--r-- 0/0  6 2026-07-02 19:03 ./etc/debian_version')).toEqual({ type: '-', path: 'etc/debian_version' });
    expect(parseListingEntry('drwxr-xr-x root/root 0 2026-07-02 19:03 ./')).toEqual({ type: 'd', path: '' });
    expect(parseListingEntry('drwxr-xr-x 0/0 0 2026-07-02 19:03 boot/grub/')).toEqual({ type: 'd', path: 'boot/grub' });
    expect(parseListingEntry('lrwxrwxrwx 0/0 0 2026-07-02 19:05 ./etc/os-release -> ../usr/lib/os-release')).toEqual({
      type: 'l',
      path: 'etc/os-release',
      linkTarget: '../usr/lib/os-release',
    });
    expect(parseListingEntry('hrwxr-xr-x 0/0 0 2025-08-29 12:09 ./usr/bin/env link to ./usr/bin/x')).toEqual({ type: 'h', path: 'usr/bin/env', linkTarget: 'usr/bin/x' });
    expect(parseListingEntry('-rw-r--r-- 0/0 6 2026-07-02 19:03:11 /abs/name with space')).toEqual({ type: '-', path: 'abs/name with space' });
    expect(parseListingEntry('tar: something')).toBeUndefined();
  });

  it('normalizes member names', () => {
    expect(normalizeMemberName('./')).toBe('');
    expect(normalizeMemberName('.')).toBe('');
    expect(normalizeMemberName('/etc/x/')).toBe('etc/x');
    expect(normalizeMemberName('etc')).toBe('etc');
  });
});
