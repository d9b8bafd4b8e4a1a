/**
 * The boot loader files a RHEL-family guest keeps, whichever of them it has: GRUB legacy's grub.conf (6),
 * GRUB 2's /etc/default/grub and grub.cfg (7+), BLS entries (8+, Fedora 30+), grubenv's kernelopts (8) and
 * /etc/kernel/cmdline (9+). Each is rewritten only when present.
 */
import type { FileEdit } from '../model/spec.js';
import { fileOf, dirOf, type GuestFiles, type GuestFilesNeeded } from './current-files.js';
import { blsEntry, grub2Cfg, grubDefaults, grubenvWithKernelopts, kernelCmdlineFile, legacyGrubConf } from './kernel-args.js';
import { splitLines } from './text.js';

const OLD_FSTAB = '/etc/fstab';
const GRUB_CONF = '/boot/grub/grub.conf';
const GRUB2_CFG = '/boot/grub2/grub.cfg';
const GRUBENV = '/boot/grub2/grubenv';
const GRUB_DEFAULTS = '/etc/default/grub';
const KERNEL_CMDLINE = '/etc/kernel/cmdline';
const BLS_DIR = '/boot/loader/entries';

export function elBootFilesToRead(listed?: GuestFiles): GuestFilesNeeded {
  const entries = listed === undefined ? [] : dirOf(listed, BLS_DIR).filter((n) => n.endsWith('.conf')).map((n) => `${BLS_DIR}/${n}`);
  return { files: [OLD_FSTAB, GRUB_CONF, GRUB2_CFG, GRUBENV, GRUB_DEFAULTS, KERNEL_CMDLINE, ...entries], dirs: [BLS_DIR], links: [] };
}

/** Whether the template's own fstab (read before vmforge replaces it) mounted a separate /boot. */
export function hadSeparateBoot(oldFstab: string | null): boolean {
  return splitLines(oldFstab ?? '').some((line) => {
    const fields = line.trim().split(/\s+/);
    return !line.trim().startsWith('#') && fields[1] === '/boot';
  });
}

export function elBootEdits(current: GuestFiles, rootUuid: string): FileEdit[] {
  const separateBoot = hadSeparateBoot(fileOf(current, OLD_FSTAB));
  const edits: FileEdit[] = [];
  const rewrite = (p: string, fn: (text: string) => string) => {
    const text = fileOf(current, p);
    if (text === null) return;
    // Unchanged files are not rewritten: fewer edits to review, and a rebuild from an adapted root adds none.
    const content = fn(text);
    if (content !== text) edits.push({ kind: 'write', path: p, content });
  };
  rewrite(GRUB_DEFAULTS, (t) => grubDefaults(t, { dropStale: true }));
  rewrite(GRUB_CONF, (t) => legacyGrubConf(t, rootUuid, separateBoot));
  rewrite(GRUB2_CFG, (t) => grub2Cfg(t, rootUuid, separateBoot));
  rewrite(GRUBENV, (t) => grubenvWithKernelopts(t, rootUuid));
  rewrite(KERNEL_CMDLINE, (t) => kernelCmdlineFile(t, rootUuid));
  for (const name of dirOf(current, BLS_DIR).filter((n) => n.endsWith('.conf'))) rewrite(`${BLS_DIR}/${name}`, (t) => blsEntry(t, rootUuid, separateBoot));
  return edits;
}
