/**
 * The core.img cache's pure parts. grub-mkimage's output depends only on its argv and on the host's GRUB build,
 * so a build can reuse the core.img an earlier build made, if the cache key says the same argv and the same host
 * files. The key is made from the identity (device, inode, size, mtime, ctime) of every file grub-mkimage reads
 * for an i386-pc core.img, not from their content: a few stat() calls instead of reading ~100 KiB, and any
 * package upgrade or in-place edit changes at least the ctime. A cache file's name carries the sha256 of its
 * content, so a short or corrupt file is recognised when read and rebuilt.
 */
import { grubCoreModules } from './grub-bios.js';
import type { FsType } from '../model/spec.js';

/** Stands in for grub-mkimage's -o argument in the key: the output path differs per build, the output does not. */
export const CORE_OUT_PLACEHOLDER = '@OUT@';
/** The grub-mkimage binary's entry among the inputs (not a file of the module dir). */
export const MKIMAGE_INPUT = '@grub-mkimage@';
/** The module dir itself: its mtime/ctime change when dpkg renames new files into it. */
export const MODULE_DIR_INPUT = '.';

/** Images grub-mkimage -O i386-pc puts in front of the compressed kernel (grub util/mkimage.c), and the module list. */
const I386_PC_IMAGES = ['kernel.img', 'diskboot.img', 'lzma_decompress.img', 'moddep.lst'];

/** `name: dep dep` lines of moddep.lst. */
export function parseModdep(text: string): Map<string, string[]> {
  const deps = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9_.-]+):(.*)$/.exec(line.trim());
    if (m) deps.set(m[1] as string, (m[2] as string).split(/\s+/).filter(Boolean));
  }
  return deps;
}

/** Modules embedded in core.img: the requested ones and, transitively, what moddep.lst says they need. Sorted. */
export function embeddedModules(requested: readonly string[], moddep: Map<string, string[]>): string[] {
  const seen = new Set<string>();
  const todo = [...requested];
  while (todo.length) {
    const m = todo.pop() as string;
    if (seen.has(m)) continue;
    seen.add(m);
    todo.push(...(moddep.get(m) ?? []));
  }
  return [...seen].sort();
}

/** Names (relative to the module dir, plus MKIMAGE_INPUT) whose identity goes into the key of this fs's core.img. */
export function grubCoreInputs(fs: FsType, moddepText: string): string[] {
  const mods = embeddedModules(grubCoreModules(fs), parseModdep(moddepText)).map((m) => `${m}.mod`);
  return [MKIMAGE_INPUT, MODULE_DIR_INPUT, ...I386_PC_IMAGES, ...mods];
}

/** What stat() said about one input; null when it is missing (grub-mkimage will then fail, and nothing is cached). */
export interface InputIdentity {
  name: string;
  /** The path stat()ed (the binary's path comes from PATH, so it is part of the identity). */
  path: string;
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** The text hashed into the key: argv (its -o replaced by the placeholder) and each input's identity, one per line. */
export function grubCoreKeyMaterial(argv: readonly string[], inputs: readonly InputIdentity[]): string {
  const lines = ['vmforge grub core.img cache v1', JSON.stringify(argv)];
  for (const i of [...inputs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    lines.push([i.name, i.path, i.dev, i.ino, i.size, i.mtimeNs, i.ctimeNs].join('\t'));
  }
  return `${lines.join('\n')}\n`;
}

const HEX64 = /^[0-9a-f]{64}$/;
const CACHE_NAME = /^core-([0-9a-f]{64})-([0-9a-f]{64})\.img$/;
const TEMP_NAME = /^\.core-([0-9a-f]{64})-(\d+)-[0-9a-f]+\.tmp$/;

/** `core-<key>-<sha256 of content>.img` */
export function coreCacheName(key: string, contentSha256: string): string {
  if (!HEX64.test(key) || !HEX64.test(contentSha256)) throw new Error('core cache key and content hash are sha256 hex digests');
  return `core-${key}-${contentSha256}.img`;
}

/** Where grub-mkimage writes before the rename; the pid lets `cache prune` tell a crashed writer's leftover. */
export function coreTempName(key: string, pid: number, nonceHex: string): string {
  return `.core-${key}-${pid}-${nonceHex}.tmp`;
}

export type CoreCacheEntry = { kind: 'core'; key: string; sha256: string } | { kind: 'temp'; key: string; pid: number } | { kind: 'other' };

export function parseCoreCacheName(name: string): CoreCacheEntry {
  const c = CACHE_NAME.exec(name);
  if (c) return { kind: 'core', key: c[1] as string, sha256: c[2] as string };
  const t = TEMP_NAME.exec(name);
  if (t) return { kind: 'temp', key: t[1] as string, pid: Number(t[2]) };
  return { kind: 'other' };
}
