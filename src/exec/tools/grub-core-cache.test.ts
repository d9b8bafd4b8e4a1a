import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandRunner, RunOptions, RunResult } from '../runner.js';
import { coreCacheKey, grubCoreImage } from './grub-core-cache.js';
import { fakeGrubHost, type FakeGrubHost } from '../../../test/harness/fake-grub-host.js';

let tmp: string;
let grubDir: string;
let cacheDir: string;
let host: FakeGrubHost;

/** Stands in for grub-mkimage: writes its argv (and a run counter) to the -o file. */
class FakeMkimage implements CommandRunner {
  runs = 0;
  async run(argv: readonly string[], _opts?: RunOptions): Promise<RunResult> {
    this.runs++;
    const out = argv[argv.indexOf('-o') + 1] as string;
    await writeFile(out, `core for ${argv.slice(-3).join(' ')} #${this.runs}\n`);
    return { stdout: '', stderr: '', exitCode: 0 };
  }
}

beforeEach(async () => {
  host = await fakeGrubHost('vmforge-grubcache-', 'biosdisk:\npart_msdos:\next2: fshelp\nxfs: fshelp\nfshelp:\n');
  ({ tmp, grubDir } = host);
  cacheDir = join(tmp, 'cache');
});

afterEach(async () => {
  await host.restore();
});

describe('grubCoreImage', () => {
  it('runs grub-mkimage once per fs; later builds read the cache; no temp files stay', async () => {
    const runner = new FakeMkimage();
    const first = await grubCoreImage(runner, { fs: 'ext4', grubDir, cacheDir });
    expect(first.cached).toBe(false);
    const again = await grubCoreImage(runner, { fs: 'ext4', grubDir, cacheDir });
    expect(again).toEqual({ core: first.core, cached: true });
    expect(runner.runs).toBe(1);
    const xfs = await grubCoreImage(runner, { fs: 'xfs', grubDir, cacheDir });
    expect(xfs.cached).toBe(false);
    expect(xfs.core.toString()).toMatch(/part_msdos xfs/);
    expect(runner.runs).toBe(2);
    expect((await readdir(cacheDir)).every((n) => /^core-[0-9a-f]{64}-[0-9a-f]{64}\.img$/.test(n))).toBe(true);
    expect(await readdir(cacheDir)).toHaveLength(2);
  });

  it('a changed input (an embedded module touched, a module dir entry added) is a miss', async () => {
    const runner = new FakeMkimage();
    await grubCoreImage(runner, { fs: 'ext4', grubDir, cacheDir });
    const key = await coreCacheKey('ext4', grubDir);
    await utimes(join(grubDir, 'fshelp.mod'), new Date(2020, 1, 1), new Date(2020, 1, 1));
    expect(await coreCacheKey('ext4', grubDir)).not.toBe(key);
    expect((await grubCoreImage(runner, { fs: 'ext4', grubDir, cacheDir })).cached).toBe(false);
    const key2 = await coreCacheKey('ext4', grubDir);
    await writeFile(join(grubDir, 'new.mod'), 'x');
    expect(await coreCacheKey('ext4', grubDir)).not.toBe(key2);
    // A module that is not embedded, changed in place, does not matter to core.img.
    const key3 = await coreCacheKey('ext4', grubDir);
    await writeFile(join(grubDir, 'new.mod'), 'yy');
    expect(await coreCacheKey('ext4', grubDir)).toBe(key3);
  });

  it('a short or corrupt cache file is dropped and rebuilt', async () => {
    const runner = new FakeMkimage();
    const first = await grubCoreImage(runner, { fs: 'ext4', grubDir, cacheDir });
    const [name] = await readdir(cacheDir);
    await writeFile(join(cacheDir, name as string), first.core.subarray(0, 5));
    const again = await grubCoreImage(runner, { fs: 'ext4', grubDir, cacheDir });
    expect(again.cached).toBe(false);
    expect(runner.runs).toBe(2);
    // Rebuilt under the name of its own content; the corrupt one is gone.
    const names = await readdir(cacheDir);
    expect(names).toHaveLength(1);
    expect(await readFile(join(cacheDir, names[0] as string))).toEqual(again.core);
  });

  it('without a cache dir, or without moddep.lst, grub-mkimage runs every time and leaves nothing', async () => {
    const runner = new FakeMkimage();
    const work = join(tmp, 'work');
    await mkdir(work);
    await grubCoreImage(runner, { fs: 'ext4', grubDir, tmpDir: work });
    await grubCoreImage(runner, { fs: 'ext4', grubDir, tmpDir: work });
    expect(runner.runs).toBe(2);
    expect(await readdir(work)).toEqual([]);
    await rm(join(grubDir, 'moddep.lst'));
    expect(await coreCacheKey('ext4', grubDir)).toBeNull();
    expect((await grubCoreImage(runner, { fs: 'ext4', grubDir, cacheDir, tmpDir: work })).cached).toBe(false);
    expect(runner.runs).toBe(3);
    expect(await readdir(cacheDir).catch(() => [])).toEqual([]);
  });

  it('a failed grub-mkimage leaves no temp file in the cache dir', async () => {
    const failing: CommandRunner = {
      run: async (argv) => {
        await writeFile(argv[argv.indexOf('-o') + 1] as string, 'half');
        throw new Error('grub-mkimage: error: cannot compress the kernel image');
      },
    };
    await expect(grubCoreImage(failing, { fs: 'ext4', grubDir, cacheDir })).rejects.toThrow(/cannot compress/);
    expect(await readdir(cacheDir)).toEqual([]);
  });
});
