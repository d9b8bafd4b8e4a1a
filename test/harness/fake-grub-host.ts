/**
 * A stand-in for the host's GRUB for the core.img cache tests: an i386-pc directory holding the files
 * grub-mkimage reads (their contents are just their names) and a `grub-mkimage` on a PATH of its own, so
 * `which()` finds one whatever the host has. `restore()` puts PATH back and removes it all.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakeGrubHost {
  tmp: string;
  grubDir: string;
  restore(): Promise<void>;
}

export async function fakeGrubHost(prefix: string, moddep: string): Promise<FakeGrubHost> {
  const tmp = await mkdtemp(join(tmpdir(), prefix));
  const grubDir = join(tmp, 'i386-pc');
  await mkdir(grubDir);
  for (const f of ['kernel.img', 'diskboot.img', 'lzma_decompress.img', 'biosdisk.mod', 'part_msdos.mod', 'ext2.mod', 'xfs.mod', 'fshelp.mod']) {
    await writeFile(join(grubDir, f), f);
  }
  await writeFile(join(grubDir, 'moddep.lst'), moddep);
  await mkdir(join(tmp, 'bin'));
  await writeFile(join(tmp, 'bin/grub-mkimage'), '#!/bin/sh\nexit 1\n');
  await chmod(join(tmp, 'bin/grub-mkimage'), 0o755);
  const savedPath = process.env.PATH;
  process.env.PATH = join(tmp, 'bin');
  return {
    tmp,
    grubDir,
    async restore() {
      process.env.PATH = savedPath;
      await rm(tmp, { recursive: true, force: true });
    },
  };
}
