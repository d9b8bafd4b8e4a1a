/**
 * argv for the tar and compressor processes of bundle pipelines, and the host capabilities they depend on.
 */
import { invalidInput } from '../errors.js';
import { which } from '../exec/host-tools.js';
import type { CommandRunner } from '../exec/runner.js';
import type { Compression } from './manifest.js';

export const DEFAULT_LEVEL: Record<Compression, number> = { zstd: 3, gzip: 6, xz: 6 };
// zstd levels above 19 need --ultra and a lot of memory on both ends; not worth it for templates.
const LEVEL_RANGE: Record<Compression, [number, number]> = { zstd: [1, 19], gzip: [1, 9], xz: [0, 9] };

export function checkLevel(compression: Compression, level: number): void {
  const [lo, hi] = LEVEL_RANGE[compression];
  if (!Number.isInteger(level) || level < lo || level > hi) {
    throw invalidInput(`compression level ${level} is out of range for ${compression}`, `use ${lo}..${hi}`);
  }
}

/** pigz when installed: same format, all cores. */
export function gzipProgram(): 'pigz' | 'gzip' {
  return which('pigz') ? 'pigz' : 'gzip';
}

export function compressArgv(compression: Compression, level: number): string[] {
  checkLevel(compression, level);
  switch (compression) {
    case 'zstd':
      return ['zstd', '-T0', `-${level}`, '-c', '-q'];
    case 'gzip':
      // -n: no name or timestamp in the header, so equal input gives an equal blob.
      return [gzipProgram(), `-${level}`, '-n', '-c'];
    case 'xz':
      return ['xz', '-T0', `-${level}`, '-c'];
  }
}

/** Reads the compressed stream on stdin. */
export function decompressArgv(compression: Compression): string[] {
  switch (compression) {
    case 'zstd':
      return ['zstd', '-d', '-c', '-q'];
    case 'gzip':
      return [gzipProgram(), '-d', '-c'];
    case 'xz':
      // Multi-threaded decoding works on the multi-block streams `xz -T0` writes.
      return ['xz', '-d', '-c', '-T0'];
  }
}

const selinuxSupport = new WeakMap<CommandRunner, Promise<boolean>>();

/**
 * Whether this host's tar can archive SELinux contexts. A tar built without libselinux still accepts --selinux
 * but warns 'SELinux support is not available' on the first file, so the probe archives one entry and requires a
 * silent success.
 */
export function tarSupportsSelinux(runner: CommandRunner): Promise<boolean> {
  let p = selinuxSupport.get(runner);
  if (!p) {
    p = runner
      .run(['tar', '--selinux', '--format=posix', '--create', '--file=-', '--no-recursion', '--directory=/', '.'])
      .then((r) => r.stderr.trim() === '')
      .catch(() => false);
    selinuxSupport.set(runner, p);
  }
  return p;
}
