/**
 * The NoCloud seed image for `--cloud-init`: an ISO 9660 filesystem labelled 'cidata' holding meta-data,
 * user-data and network-config at its root, attached to the VM as a CD-ROM. Made with xorriso (Debian package
 * 'xorriso'); the contents come from core/guest/cloud-init-seed.ts.
 *
 * The image is built under a temporary name next to `path` and then hard-linked to `path`, which fails if
 * anything is there: like the disk image, an existing file is someone else's and is never replaced.
 */
import { chmod, link, mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CIDATA_LABEL, type CloudInitSeedFiles } from '../../core/guest/cloud-init-seed.js';
import { conflict, invalidInput } from '../../errors.js';
import type { CommandRunner } from '../runner.js';

export interface SeedImageInput {
  /** Absolute path of the image to create; must not exist. Its directory must. */
  path: string;
  files: CloudInitSeedFiles;
  /** Default 0600, like the VM's disk; libvirt gives qemu access when it starts the domain. */
  mode?: number;
  signal?: AbortSignal;
}

const SEED_FILE_NAMES = new Set(['meta-data', 'user-data', 'network-config']);

/** argv for xorriso's mkisofs emulation: Rock Ridge and Joliet names, so every guest reads 'meta-data' as is. */
export function seedImageArgv(output: string, sourceDir: string): string[] {
  return ['xorriso', '-as', 'mkisofs', '-quiet', '-output', output, '-volid', CIDATA_LABEL, '-joliet', '-rock', sourceDir];
}

export async function makeSeedImage(runner: CommandRunner, input: SeedImageInput): Promise<{ path: string }> {
  if (!path.isAbsolute(input.path)) throw invalidInput(`seed image path ${input.path} is not absolute`);
  const names = Object.keys(input.files);
  for (const n of names) if (!SEED_FILE_NAMES.has(n)) throw invalidInput(`'${n}' is not a NoCloud seed file`);
  if (!names.includes('meta-data') || !names.includes('user-data')) throw invalidInput('a NoCloud seed needs meta-data and user-data');

  const dir = path.dirname(input.path);
  // Staged next to the target: the link below needs the same filesystem, and nothing lands in a shared /tmp.
  const work = await mkdtemp(path.join(dir, `.${path.basename(input.path)}.vmforge-`));
  try {
    const src = path.join(work, 'src');
    const tmpImage = path.join(work, 'seed.iso');
    await mkdir(src, { mode: 0o700 });
    for (const [name, text] of Object.entries(input.files)) {
      if (text !== undefined) await writeFile(path.join(src, name), text, { flag: 'wx', mode: 0o644 });
    }
    await runner.run(seedImageArgv(tmpImage, src), { timeoutMs: 120_000, signal: input.signal });
    await chmod(tmpImage, input.mode ?? 0o600);
    try {
      await link(tmpImage, input.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw conflict(`seed image ${input.path} already exists`, 'remove it or choose another name');
      throw e;
    }
    await unlink(tmpImage);
    return { path: input.path };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

