/**
 * core.img from grub-mkimage, through a cache directory (see core/boot/grub-core-cache.ts for the key). A hit
 * costs a dozen stat() calls and one small read instead of a grub-mkimage run. A miss runs grub-mkimage with its
 * output in the cache dir under a temp name, fsyncs it and renames it into place, so concurrent builds and a crash
 * never leave a half file under a cache name; a cache file whose content does not match the sha256 in its name
 * is removed and rebuilt.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GRUB_BIOS_PREFIX, grubCoreArgv } from '../../core/boot/grub-bios.js';
import {
  CORE_OUT_PLACEHOLDER,
  coreCacheName,
  coreTempName,
  grubCoreInputs,
  grubCoreKeyMaterial,
  type InputIdentity,
  MKIMAGE_INPUT,
  parseCoreCacheName,
} from '../../core/boot/grub-core-cache.js';
import type { FsType } from '../../core/model/spec.js';
import { which } from '../host-tools.js';
import { fsyncPath } from '../fsync-path.js';
import type { CommandRunner } from '../runner.js';

export interface CoreImageInput {
  fs: FsType;
  /** The i386-pc module dir grub-mkimage reads (-d). */
  grubDir: string;
  /** Where cached core.img files live; without it grub-mkimage runs every time, writing into tmpDir. */
  cacheDir?: string;
  tmpDir?: string;
  signal?: AbortSignal;
}

export interface CoreImage {
  core: Buffer;
  /** True when it came from the cache (no grub-mkimage run). */
  cached: boolean;
}

const MKIMAGE_TIMEOUT_MS = 60_000;

export async function grubCoreImage(runner: CommandRunner, input: CoreImageInput): Promise<CoreImage> {
  const key = input.cacheDir === undefined ? null : await coreCacheKey(input.fs, input.grubDir);
  if (key === null || input.cacheDir === undefined) return { core: await mkimageUncached(runner, input), cached: false };
  const dir = input.cacheDir;
  const hit = await lookup(dir, key);
  if (hit) return { core: hit, cached: true };

  await mkdir(dir, { recursive: true, mode: 0o755 });
  const tmp = join(dir, coreTempName(key, process.pid, randomBytes(6).toString('hex')));
  try {
    await runMkimage(runner, input, tmp);
    const core = await readFile(tmp);
    // The cache is an optimisation: failing to keep the file must not fail the build that has the image in hand.
    await keep(tmp, join(dir, coreCacheName(key, sha256(core))), dir).catch(() => undefined);
    return { core, cached: false };
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * The cache key of this fs's core.img on this host (sha256 hex), or null when an input is missing (grub-mkimage
 * would fail, or is not on PATH): then nothing is looked up or kept.
 */
export async function coreCacheKey(fs: FsType, grubDir: string): Promise<string | null> {
  const moddep = await readFile(join(grubDir, 'moddep.lst'), 'utf8').catch(() => null);
  const mkimage = which('grub-mkimage');
  if (moddep === null || mkimage === null) return null;
  const ids = await Promise.all(
    grubCoreInputs(fs, moddep).map(async (name): Promise<InputIdentity | null> => {
      const path = name === MKIMAGE_INPUT ? mkimage : join(grubDir, name);
      const st = await stat(path, { bigint: true }).catch(() => null);
      return st && { name, path, dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
    }),
  );
  if (ids.some((i) => i === null)) return null;
  const argv = grubCoreArgv({ fs, outFile: `/${CORE_OUT_PLACEHOLDER}`, prefix: GRUB_BIOS_PREFIX, moduleDir: grubDir });
  return sha256(grubCoreKeyMaterial(argv, ids as InputIdentity[]));
}

async function lookup(dir: string, key: string): Promise<Buffer | null> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const e = parseCoreCacheName(name);
    if (e.kind !== 'core' || e.key !== key) continue;
    const data = await readFile(join(dir, name)).catch(() => null);
    if (data && sha256(data) === e.sha256) return data;
    // Short or corrupt (a disk error, a hand edit): drop it; the caller rebuilds.
    await unlink(join(dir, name)).catch(() => undefined);
  }
  return null;
}

async function keep(tmp: string, final: string, dir: string): Promise<void> {
  // grub-mkimage wrote tmp: no handle of ours to fsync it through.
  await fsyncPath(tmp);
  await rename(tmp, final);
  await fsyncPath(dir);
}

async function mkimageUncached(runner: CommandRunner, input: CoreImageInput): Promise<Buffer> {
  const work = await mkdtemp(join(input.tmpDir ?? tmpdir(), 'vmforge-grub-'));
  try {
    const outFile = join(work, 'core.img');
    await runMkimage(runner, input, outFile);
    return await readFile(outFile);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function runMkimage(runner: CommandRunner, input: CoreImageInput, outFile: string): Promise<void> {
  await runner.run(grubCoreArgv({ fs: input.fs, outFile, prefix: GRUB_BIOS_PREFIX, moduleDir: input.grubDir }), {
    signal: input.signal,
    timeoutMs: MKIMAGE_TIMEOUT_MS,
  });
}

function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
