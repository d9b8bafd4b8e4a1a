import { describe, expect, it } from 'vitest';
import {
  DBUS_MACHINE_ID,
  escapeWildcards,
  LIVE_SYSTEM_EXCLUDES,
  liveSystemExcludes,
  memberNameInRoot,
  normalizeExcludePattern,
  parseProcSwaps,
} from './live-excludes.js';

describe('live system excludes', () => {
  it('covers what the issue lists', () => {
    for (const p of ['./tmp/*', './var/tmp/*', './proc/*', './sys/*', './dev/*', './run/*', 'lost+found', './etc/ssh/ssh_host_*', './var/cache/apt/archives/*.deb', './var/lib/dhcp/*.leases']) {
      expect(LIVE_SYSTEM_EXCLUDES).toContain(p);
    }
    // machine-id is emptied, not excluded: the file must stay.
    expect(LIVE_SYSTEM_EXCLUDES).not.toContain('./etc/machine-id');
  });

  it('adds active swap files and the bundle store when they are inside the root, and the user patterns', () => {
    const ex = liveSystemExcludes(
      { root: '/', swapFiles: ['/swapfile', '/var/swap [1]'], storeDir: '/var/lib/vmforge/bundles', dbusMachineIdIsFile: true },
      ['/var/log/*', 'srv/cache/'],
    );
    expect(ex).toEqual([
      ...LIVE_SYSTEM_EXCLUDES,
      './swapfile',
      './var/swap \\[1\\]',
      './var/lib/vmforge/bundles/*',
      DBUS_MACHINE_ID,
      './var/log/*',
      'srv/cache',
    ]);
  });

  it('leaves out swap files and stores outside the root', () => {
    const ex = liveSystemExcludes({ root: '/mnt/tpl', swapFiles: ['/swapfile', '/mnt/tpl/swap.img'], storeDir: '/var/lib/vmforge/bundles', dbusMachineIdIsFile: false });
    expect(ex.slice(LIVE_SYSTEM_EXCLUDES.length)).toEqual(['./swap.img']);
  });

  it('maps paths to member names only strictly inside the root', () => {
    expect(memberNameInRoot('/', '/a/b')).toBe('./a/b');
    expect(memberNameInRoot('/mnt/r', '/mnt/r/x')).toBe('./x');
    expect(memberNameInRoot('/mnt/r', '/mnt/r')).toBeUndefined();
    expect(memberNameInRoot('/mnt/r', '/mnt/rx/y')).toBeUndefined();
    expect(memberNameInRoot('/mnt/r', '/etc')).toBeUndefined();
  });

  it('normalizes user patterns and refuses ones that empty the root', () => {
    expect(normalizeExcludePattern('/var/log/*')).toBe('./var/log/*');
    expect(normalizeExcludePattern('/srv/data/')).toBe('./srv/data');
    expect(normalizeExcludePattern('./x')).toBe('./x');
    expect(normalizeExcludePattern('*.pyc')).toBe('*.pyc');
    for (const bad of ['', '/', '.', './', 'a\nb']) expect(() => normalizeExcludePattern(bad)).toThrow(/exclude pattern/);
  });

  it('reads swap files from /proc/swaps, decoding escaped blanks and skipping partitions', () => {
    const text = 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sda2                               partition\t8388604\t\t0\t\t-2\n/swap\\040file                            file\t\t1048572\t\t0\t\t-3\n';
    expect(parseProcSwaps(text)).toEqual(['/swap file']);
    expect(parseProcSwaps('Filename Type Size Used Priority\n')).toEqual([]);
  });

  it('escapes tar wildcards', () => {
    expect(escapeWildcards('./a*b?[c]\\')).toBe('./a\\*b\\?\\[c\\]\\\\');
  });
});
