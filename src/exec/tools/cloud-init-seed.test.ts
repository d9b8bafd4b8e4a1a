import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommandRunner, RunResult } from '../runner.js';
import { makeSeedImage, seedImageArgv } from './cloud-init-seed.js';

/** Stands in for xorriso: records what it was given and writes a fake image to -output. */
class FakeXorriso implements CommandRunner {
  seen: Record<string, string> = {};
  async run(argv: readonly string[]): Promise<RunResult> {
    const src = argv[argv.length - 1]!;
    for (const n of await readdir(src)) this.seen[n] = await readFile(path.join(src, n), 'utf8');
    await writeFile(argv[argv.indexOf('-output') + 1]!, 'ISO');
    return { stdout: '', stderr: '', exitCode: 0 };
  }
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vmforge-seed-unit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const files = { 'meta-data': 'instance-id: "x"\n', 'user-data': '#cloud-config\n' };

describe('makeSeedImage', () => {
  it('labels the image cidata, with Rock Ridge and Joliet names', () => {
    expect(seedImageArgv('/o.iso', '/src')).toEqual(['xorriso', '-as', 'mkisofs', '-quiet', '-output', '/o.iso', '-volid', 'cidata', '-joliet', '-rock', '/src']);
  });

  it('stages exactly the files given and leaves only the image behind', async () => {
    const runner = new FakeXorriso();
    const target = path.join(dir, 'seed.iso');
    expect(await makeSeedImage(runner, { path: target, files })).toEqual({ path: target });
    expect(runner.seen).toEqual(files);
    expect(await readdir(dir)).toEqual(['seed.iso']);
  });

  it('never replaces an existing file, and cleans up after itself', async () => {
    const target = path.join(dir, 'seed.iso');
    await writeFile(target, 'someone else');
    await expect(makeSeedImage(new FakeXorriso(), { path: target, files })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await readFile(target, 'utf8')).toBe('someone else');
    expect(await readdir(dir)).toEqual(['seed.iso']);
  });

  it('refuses unknown or missing seed files and a relative path', async () => {
    const runner = new FakeXorriso();
    await expect(makeSeedImage(runner, { path: path.join(dir, 'a.iso'), files: { ...files, 'vendor-data': '' } as never })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(makeSeedImage(runner, { path: path.join(dir, 'a.iso'), files: { 'meta-data': '' } as never })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(makeSeedImage(runner, { path: 'seed.iso', files })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    expect(await readdir(dir)).toEqual([]);
  });
});
