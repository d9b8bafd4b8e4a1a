import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { coreCacheName, coreTempName } from '../core/boot/grub-core-cache.js';
import { coreCacheKey, grubCoreImage } from '../exec/tools/grub-core-cache.js';
import type { CommandRunner } from '../exec/runner.js';
import { grubCoreCacheDir, listGrubCoreCache, pruneGrubCoreCache } from './grub-core-cache.js';
import { fakeGrubHost, type FakeGrubHost } from '../../test/harness/fake-grub-host.js';

let tmp: string;
let grubDir: string;
let config: { stateDir: string };
let host: FakeGrubHost;

const mkimage: CommandRunner = {
  run: async (argv) => {
    await writeFile(argv[argv.indexOf('-o') + 1] as string, `core ${argv.at(-1)}\n`);
    return { stdout: '', stderr: '', exitCode: 0 };
  },
};

beforeEach(async () => {
  host = await fakeGrubHost('vmforge-grubprune-', 'ext2: fshelp\nxfs: fshelp\n');
  ({ tmp, grubDir } = host);
  config = { stateDir: join(tmp, 'state') };
});

afterEach(async () => {
  await host.restore();
});

describe('GRUB core.img cache: list and prune', () => {
  it('keeps current entries and young temp files; removes stale, corrupt and old temp files; --dry-run removes nothing', async () => {
    const dir = grubCoreCacheDir(config);
    expect(await listGrubCoreCache(config, grubDir)).toEqual([]);
    await grubCoreImage(mkimage, { fs: 'ext4', grubDir, cacheDir: dir });
    await grubCoreImage(mkimage, { fs: 'xfs', grubDir, cacheDir: dir });
    const stale = coreCacheName('1'.repeat(64), '2'.repeat(64));
    await writeFile(join(dir, stale), 'from an older grub');
    const oldTemp = coreTempName('3'.repeat(64), 999_999, 'aa');
    const youngTemp = coreTempName('3'.repeat(64), 999_999, 'bb');
    await writeFile(join(dir, oldTemp), 'half');
    await writeFile(join(dir, youngTemp), 'half');
    const now = Date.now();
    await utimes(join(dir, oldTemp), new Date(now - 3600_000), new Date(now - 3600_000));
    await writeFile(join(dir, 'README'), 'not ours to judge');

    const listed = await listGrubCoreCache(config, grubDir);
    expect(listed.map((e) => [e.state, e.fs ?? null]).sort()).toEqual(
      [['current', 'ext4'], ['current', 'xfs'], ['stale', null], ['temp', null], ['temp', null]].sort(),
    );

    const dry = await pruneGrubCoreCache(config, { dryRun: true, nowMs: now, grubDir });
    expect(dry.removed.map((e) => e.name).sort()).toEqual([oldTemp, stale].sort());
    expect(await readdir(dir)).toHaveLength(6);

    // A current entry whose bytes no longer match its name goes too.
    const ext4Key = await coreCacheKey('ext4', grubDir);
    const ext4Name = (await readdir(dir)).find((n) => n.startsWith(`core-${ext4Key}-`)) as string;
    await writeFile(join(dir, ext4Name), 'bit rot');
    const res = await pruneGrubCoreCache(config, { nowMs: now, grubDir });
    expect(res.removed.map((e) => e.name).sort()).toEqual([ext4Name, oldTemp, stale].sort());
    expect(res.kept.map((e) => e.state).sort()).toEqual(['current', 'temp']);
    expect((await readdir(dir)).sort()).toEqual(['README', youngTemp, ...res.kept.filter((e) => e.state === 'current').map((e) => e.name)].sort());
  });
});
