import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import { planDiskLayout } from '../disk/layout.js';
import { mbrBytes } from '../disk/mbr.js';
import { GiB, MiB } from '../units.js';
import {
  assertCoreFits,
  GRUB_BIOS_PREFIX,
  GRUB_CORE_MAX_SECTORS,
  GRUB_I386_PC_DIR,
  grubCfg,
  grubCoreArgv,
  grubCoreModules,
  patchBootSector,
  patchCoreImage,
} from './grub-bios.js';
import { matchGolden as matchGoldenIn } from '../../../test/harness/golden.js';


const matchGolden = (file: string, actual: string) => matchGoldenIn(import.meta.dirname, file, actual);

/** Stand-in for boot.img: recognisable bytes everywhere, the jmp at the drive check, 0x55AA. */
function fakeBootImg(): Buffer {
  const b = Buffer.alloc(512);
  for (let i = 0; i < 512; i++) b[i] = (i * 7 + 3) & 0xff;
  b[0x66] = 0xeb;
  b[0x67] = 0x05;
  b[0x1fe] = 0x55;
  b[0x1ff] = 0xaa;
  return b;
}

/** Stand-in for a fresh grub-mkimage core.img: diskboot's default blocklist {2, 0, 0x820}, then payload. */
function fakeCore(bytes: number): Buffer {
  const c = Buffer.alloc(bytes, 0x5a);
  c.fill(0, 0x100, 512);
  c.writeBigUInt64LE(2n, 500);
  c.writeUInt16LE(0, 508);
  c.writeUInt16LE(0x820, 510);
  return c;
}

const layout = planDiskLayout({ diskBytes: 3 * GiB, swapBytes: 256 * MiB });

describe('patchBootSector', () => {
  const boot = fakeBootImg();
  const mbr = mbrBytes(layout, 0x12345678);
  mbr.fill(0x11, 0x03, 0x5a); // a BPB left by an earlier tool must survive, as with grub-bios-setup

  it('merges boot.img code with the disk BPB, signature and partition table', () => {
    const out = patchBootSector(boot, mbr, 1);
    expect(out.length).toBe(512);
    expect(out.subarray(0, 3)).toEqual(boot.subarray(0, 3));
    expect(out.subarray(0x03, 0x5a)).toEqual(mbr.subarray(0x03, 0x5a));
    expect(out.subarray(0x5a, 0x5c)).toEqual(boot.subarray(0x5a, 0x5c));
    expect(out.readBigUInt64LE(0x5c)).toBe(1n);
    expect(out[0x64]).toBe(0xff);
    expect(out[0x65]).toBe(boot[0x65]);
    expect([out[0x66], out[0x67]]).toEqual([0x90, 0x90]);
    expect(out.subarray(0x68, 0x1b8)).toEqual(boot.subarray(0x68, 0x1b8));
    expect(out.subarray(0x1b8, 0x200)).toEqual(mbr.subarray(0x1b8, 0x200));
  });

  it('does not modify its inputs', () => {
    const b = Buffer.from(boot);
    const m = Buffer.from(mbr);
    patchBootSector(b, m, 7);
    expect(b).toEqual(boot);
    expect(m).toEqual(mbr);
  });

  it('writes the core sector as a 64-bit LBA, within what MBR addresses', () => {
    expect(patchBootSector(boot, mbr, 0x89abcdef).readBigUInt64LE(0x5c)).toBe(0x89abcdefn);
    expect(() => patchBootSector(boot, mbr, 2 ** 32)).toThrow(VmforgeError);
  });

  it('rejects a sector 0 without a partition table, a foreign boot.img and core at sector 0', () => {
    expect(() => patchBootSector(boot, Buffer.alloc(512), 1)).toThrow(/partition table/);
    expect(() => patchBootSector(boot.subarray(0, 440), mbr, 1)).toThrow(/boot.img/);
    const foreign = Buffer.from(boot);
    foreign[0x66] = 0x00;
    expect(() => patchBootSector(foreign, mbr, 1)).toThrow(/0x66/);
    expect(() => patchBootSector(boot, mbr, 0)).toThrow(VmforgeError);
  });

  it('agrees with the offsets in the host boot.img', () => {
    const bootImg = join(GRUB_I386_PC_DIR, 'boot.img');
    if (!existsSync(bootImg)) throw new Error(`${bootImg} is missing: install grub-pc-bin (scripts/install-deps.sh does)`);
    const real = readFileSync(bootImg);
    // diskboot defaults: kernel sector 1, boot drive 0xff, jmp over the drive check.
    expect(real.readBigUInt64LE(0x5c)).toBe(1n);
    expect(real[0x64]).toBe(0xff);
    expect(real[0x66]).toBe(0xeb);
    const out = patchBootSector(real, mbrBytes(layout, 1), 1);
    expect(out.subarray(0x1be, 0x1fe)).toEqual(mbrBytes(layout, 1).subarray(0x1be, 0x1fe));
  });
});

describe('patchCoreImage', () => {
  it('fills the first blocklist and pads to whole sectors', () => {
    const core = fakeCore(3 * 512 + 100);
    const out = patchCoreImage(core, 1);
    expect(out.length).toBe(4 * 512);
    expect(out.readBigUInt64LE(500)).toBe(2n);
    expect(out.readUInt16LE(508)).toBe(3);
    expect(out.readUInt16LE(510)).toBe(0x820);
    expect(out.subarray(488, 500).every((b) => b === 0)).toBe(true);
    expect(out.subarray(0, 488)).toEqual(core.subarray(0, 488));
    expect(out.subarray(512, core.length)).toEqual(core.subarray(512));
    expect(out.subarray(core.length).every((b) => b === 0)).toBe(true);
  });

  it('re-patching an installed core.img gives the same result as patching a fresh one', () => {
    const fresh = fakeCore(60 * 512);
    const once = patchCoreImage(fresh, 1);
    const stale = Buffer.from(once);
    stale.writeBigUInt64LE(900n, 488); // a second blocklist from a fragmented install
    stale.writeUInt16LE(4, 496);
    stale.writeUInt16LE(0x1000, 498);
    expect(patchCoreImage(stale, 34)).toEqual(patchCoreImage(fresh, 34));
    expect(patchCoreImage(stale, 34).readBigUInt64LE(500)).toBe(35n);
  });

  it('rejects something that is not a core.img', () => {
    expect(() => patchCoreImage(Buffer.alloc(4096), 1)).toThrow(/diskboot/);
    expect(() => patchCoreImage(fakeCore(512), 1)).toThrow(/2 sectors/);
  });
});

describe('assertCoreFits', () => {
  it('accepts a core.img that ends before the first partition', () => {
    assertCoreFits({ coreBytes: 53 * 512, coreLba: 1, firstPartitionLba: 2048 });
    assertCoreFits({ coreBytes: 62 * 512, coreLba: 1, firstPartitionLba: 63 });
  });
  it('rejects one that would overwrite the first partition', () => {
    try {
      assertCoreFits({ coreBytes: 62 * 512 + 1, coreLba: 1, firstPartitionLba: 63 });
      expect.unreachable();
    } catch (e) {
      expect((e as VmforgeError).code).toBe('INSUFFICIENT_SPACE');
      expect((e as VmforgeError).message).toMatch(/63 sectors but only 62/);
    }
  });
  it('rejects one larger than diskboot can load', () => {
    expect(GRUB_CORE_MAX_SECTORS).toBe(888);
    expect(() => assertCoreFits({ coreBytes: 889 * 512, coreLba: 1, firstPartitionLba: 2048 })).toThrow(/at most 888/);
  });
});

describe('grubCoreModules / grubCoreArgv', () => {
  it('builds in the disk, label and filesystem drivers', () => {
    expect(grubCoreModules('ext4')).toEqual(['biosdisk', 'part_msdos', 'ext2']);
    expect(grubCoreModules('xfs')).toEqual(['biosdisk', 'part_msdos', 'xfs']);
  });
  it('runs grub-mkimage for i386-pc with the prefix', () => {
    expect(grubCoreArgv({ fs: 'ext4', outFile: '/tmp/x/core.img', prefix: GRUB_BIOS_PREFIX })).toEqual([
      'grub-mkimage', '-O', 'i386-pc', '-d', '/usr/lib/grub/i386-pc', '-o', '/tmp/x/core.img', '-p', '(hd0,msdos1)/boot/grub', 'biosdisk', 'part_msdos', 'ext2',
    ]);
  });
  it('rejects odd prefixes and relative output paths', () => {
    expect(() => grubCoreArgv({ fs: 'ext4', outFile: 'core.img', prefix: GRUB_BIOS_PREFIX })).toThrow(/absolute/);
    expect(() => grubCoreArgv({ fs: 'ext4', outFile: '/c.img', prefix: '/boot/grub; rm' })).toThrow(/prefix/);
  });
});

describe('grubCfg', () => {
  const base = {
    rootUuid: '94f46fc5-903e-499a-bba3-04d255b3ff9d',
    fs: 'ext4' as const,
    kernel: '/vmlinuz',
    initrd: '/initrd.img',
    cmdline: 'console=ttyS0,115200n8 net.ifnames=0',
    title: "Debian GNU/Linux (vmforge's)",
  };
  it('serial console, no timeout, root by UUID (golden)', () => {
    const text = grubCfg(base);
    expect(text).toContain('serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n');
    expect(text).toContain('set timeout=0\n');
    expect(text).toContain(`search --no-floppy --fs-uuid --set=root ${base.rootUuid}\n`);
    expect(text).toContain(`\tlinux /vmlinuz root=UUID=${base.rootUuid} ro console=ttyS0,115200n8 net.ifnames=0\n\tinitrd /initrd.img\n`);
    matchGolden('grub-ext4.cfg', text);
  });
  it('xfs without initrd (golden)', () => {
    const text = grubCfg({ ...base, fs: 'xfs', initrd: undefined, cmdline: '' });
    expect(text).not.toMatch(/initrd/);
    expect(text).toContain('insmod xfs\n');
    matchGolden('grub-xfs-noinitrd.cfg', text);
  });
  it.each([
    ['a kernel path with a space', { kernel: '/boot/vm linuz' }, /kernel path/],
    ['a relative initrd', { initrd: 'initrd.img' }, /initrd path/],
    ['a .. component', { kernel: '/boot/../../x' }, /kernel path/],
    ['GRUB script in the cmdline', { cmdline: 'quiet; reboot' }, /interpret/],
    ['a variable in the cmdline', { cmdline: 'x=$root' }, /interpret/],
    ['root= in the cmdline', { cmdline: 'quiet root=/dev/sda1' }, /root=/],
    ['a multi-line title', { title: 'a\nb' }, /title/],
    ['a bad UUID', { rootUuid: 'nope' }, /UUID/],
  ])('rejects %s', (_name, patch, re) => {
    expect(() => grubCfg({ ...base, ...patch })).toThrow(re);
  });
});
