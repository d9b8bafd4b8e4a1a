import { describe, expect, it } from 'vitest';
import {
  CORE_OUT_PLACEHOLDER,
  coreCacheName,
  coreTempName,
  embeddedModules,
  grubCoreInputs,
  grubCoreKeyMaterial,
  type InputIdentity,
  MKIMAGE_INPUT,
  MODULE_DIR_INPUT,
  parseCoreCacheName,
  parseModdep,
} from './grub-core-cache.js';

// The lines of Debian 12's moddep.lst (grub 2.06) that matter here, plus one with a dependency chain.
const MODDEP = ['biosdisk:', 'part_msdos:', 'ext2: fshelp', 'xfs: fshelp', 'fshelp:', 'normal: extcmd crypto boot', 'extcmd:', ''].join('\n');

const id = (name: string, over: Partial<InputIdentity> = {}): InputIdentity => ({
  name,
  path: `/usr/lib/grub/i386-pc/${name}`,
  dev: 2049n,
  ino: 100n,
  size: 1000n,
  mtimeNs: 1_700_000_000_000_000_000n,
  ctimeNs: 1_700_000_000_000_000_000n,
  ...over,
});

describe('core.img cache key inputs', () => {
  it('parses moddep.lst and follows dependencies transitively', () => {
    const deps = parseModdep(MODDEP);
    expect(deps.get('ext2')).toEqual(['fshelp']);
    expect(deps.get('biosdisk')).toEqual([]);
    expect(embeddedModules(['normal'], deps)).toEqual(['boot', 'crypto', 'extcmd', 'normal']);
    expect(embeddedModules(['biosdisk', 'part_msdos', 'ext2'], deps)).toEqual(['biosdisk', 'ext2', 'fshelp', 'part_msdos']);
  });

  it('names the binary, the module dir, the images grub-mkimage reads and the embedded modules with their deps', () => {
    expect(grubCoreInputs('ext4', MODDEP)).toEqual([
      MKIMAGE_INPUT,
      MODULE_DIR_INPUT,
      'kernel.img',
      'diskboot.img',
      'lzma_decompress.img',
      'moddep.lst',
      'biosdisk.mod',
      'ext2.mod',
      'fshelp.mod',
      'part_msdos.mod',
    ]);
    expect(grubCoreInputs('xfs', MODDEP)).toContain('xfs.mod');
    expect(grubCoreInputs('xfs', MODDEP)).not.toContain('ext2.mod');
  });

  it('key material changes with the argv and with any identity field, not with the order of the inputs', () => {
    const argv = ['grub-mkimage', '-o', `/${CORE_OUT_PLACEHOLDER}`, 'ext2'];
    const ids = [id('kernel.img'), id('ext2.mod', { ino: 101n })];
    const base = grubCoreKeyMaterial(argv, ids);
    expect(grubCoreKeyMaterial(argv, [...ids].reverse())).toBe(base);
    expect(grubCoreKeyMaterial([...argv.slice(0, -1), 'xfs'], ids)).not.toBe(base);
    for (const field of ['dev', 'ino', 'size', 'mtimeNs', 'ctimeNs'] as const) {
      expect(grubCoreKeyMaterial(argv, [id('kernel.img', { [field]: 7n }), ids[1] as InputIdentity]), field).not.toBe(base);
    }
    expect(grubCoreKeyMaterial(argv, [id('kernel.img', { path: '/opt/grub/kernel.img' }), ids[1] as InputIdentity])).not.toBe(base);
  });

  it('cache and temp names round-trip; anything else is "other"', () => {
    const key = 'a'.repeat(64);
    const sha = 'b'.repeat(64);
    expect(parseCoreCacheName(coreCacheName(key, sha))).toEqual({ kind: 'core', key, sha256: sha });
    expect(parseCoreCacheName(coreTempName(key, 1234, 'c0ffee'))).toEqual({ kind: 'temp', key, pid: 1234 });
    for (const n of ['core.img', `core-${key}.img`, `core-${key}-${sha}.img.bak`, 'x.lock']) expect(parseCoreCacheName(n)).toEqual({ kind: 'other' });
    expect(() => coreCacheName('../x', sha)).toThrow();
  });
});
