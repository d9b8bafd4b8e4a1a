/** The host programs and files a build uses: missing ones are ✗ when every build needs them, ⚠ when some do. */
import { constants } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { GRUB_I386_PC_DIR } from '../../core/boot/grub-bios.js';
import { OVMF_CODE_PATH, OVMF_VARS_TEMPLATE_PATH } from '../../core/domain-xml/defaults.js';
import type { CheckStatus } from '../../core/host/check-report.js';
import { TOOL_PACKAGES, which } from '../../exec/host-tools.js';
import type { CheckEnv, Finding } from '../host-check.js';

interface ToolGroup {
  id: string;
  title: string;
  programs: string[];
  /** ✗ when missing, else ⚠ with `warnWhy`. */
  required: boolean;
  warnWhy?: string;
}

export async function toolChecks(env: CheckEnv): Promise<Finding[]> {
  const { config } = env.ctx;
  const xfsDefault = config.defaults.fs === 'xfs';
  const groups: ToolGroup[] = [
    { id: 'tools.libvirt', title: 'virsh', programs: ['virsh'], required: true },
    { id: 'tools.disk', title: 'disk tools (losetup, mount, umount, blkid)', programs: ['losetup', 'mount', 'umount', 'blkid'], required: true },
    { id: 'tools.mkfs', title: `mkfs.${config.defaults.fs} and mkswap`, programs: [`mkfs.${config.defaults.fs}`, 'mkswap'], required: true },
    {
      id: 'tools.mkfs-other',
      title: xfsDefault ? 'mkfs.ext4' : 'mkfs.xfs',
      programs: [xfsDefault ? 'mkfs.ext4' : 'mkfs.xfs'],
      required: false,
      warnWhy: `builds with --fs ${xfsDefault ? 'ext4' : 'xfs'} will be refused`,
    },
    { id: 'tools.archive', title: 'tar and zstd (bundles)', programs: ['tar', 'zstd'], required: true },
    { id: 'tools.grow', title: 'e2fsck, resize2fs, tune2fs (warm builds)', programs: ['e2fsck', 'resize2fs', 'tune2fs'], required: false, warnWhy: 'warm builds fall back to cold ones' },
    { id: 'tools.cloud-init', title: 'xorriso (--cloud-init seed)', programs: ['xorriso'], required: false, warnWhy: 'builds with --cloud-init will be refused' },
    { id: 'tools.password', title: 'openssl (--root-password-file)', programs: ['openssl'], required: false, warnWhy: 'builds with --root-password-file will be refused' },
    ...(config.dns ? [{ id: 'tools.dns', title: 'nsupdate and dig (dns is configured)', programs: ['nsupdate', 'dig'], required: true }] : []),
  ];
  const out: Finding[] = groups.map((g) => {
    const t0 = performance.now();
    const missing = g.programs.filter((p) => !which(p));
    const ms = performance.now() - t0;
    if (!missing.length) return { id: g.id, title: g.title, status: 'ok', detail: g.programs.map((p) => which(p)).join(', '), ms };
    const status: CheckStatus = g.required ? 'fail' : 'warn';
    const pkgs = [...new Set(missing.map((m) => TOOL_PACKAGES[m] ?? m))];
    return { id: g.id, title: g.title, status, detail: `not installed: ${missing.join(', ')}${g.warnWhy ? `; ${g.warnWhy}` : ''}`, fix: `apt-get install ${pkgs.join(' ')}`, ms };
  });
  out.push(await timed(grubCheck), await timed(() => ovmfCheck(config.defaults.firmware === 'uefi')));
  return out;
}

/** GRUB from the host: grub-mkimage, boot.img and the i386-pc modules a BIOS build copies into the guest. */
async function grubCheck(): Promise<Finding> {
  const title = 'GRUB for BIOS guests (grub-mkimage, boot.img, i386-pc modules)';
  const problems: string[] = [];
  if (!which('grub-mkimage')) problems.push('grub-mkimage not installed');
  const bootImg = join(GRUB_I386_PC_DIR, 'boot.img');
  if (!(await access(bootImg, constants.R_OK).then(() => true, () => false))) problems.push(`${bootImg} missing`);
  const mods = (await readdir(GRUB_I386_PC_DIR).catch(() => [] as string[])).filter((f) => f.endsWith('.mod')).length;
  if (!mods) problems.push(`no modules in ${GRUB_I386_PC_DIR}`);
  if (problems.length) {
    return { id: 'tools.grub', title, status: 'fail', detail: `${problems.join('; ')}: only --boot kernel builds can work`, fix: 'apt-get install grub-pc-bin grub2-common' };
  }
  return { id: 'tools.grub', title, status: 'ok', detail: `${bootImg}, ${mods} modules` };
}

async function ovmfCheck(uefiDefault: boolean): Promise<Finding> {
  const title = `OVMF (UEFI firmware${uefiDefault ? ', the configured default' : ', for --firmware uefi'})`;
  const missing: string[] = [];
  for (const f of [OVMF_CODE_PATH, OVMF_VARS_TEMPLATE_PATH]) if (!(await access(f, constants.R_OK).then(() => true, () => false))) missing.push(f);
  if (!missing.length) return { id: 'tools.ovmf', title, status: 'ok', detail: `${OVMF_CODE_PATH}` };
  return {
    id: 'tools.ovmf',
    title,
    status: uefiDefault ? 'fail' : 'warn',
    detail: `missing: ${missing.join(', ')}${uefiDefault ? '' : '; builds with --firmware uefi will be refused'}`,
    fix: 'apt-get install ovmf',
  };
}

async function timed(check: () => Promise<Finding>): Promise<Finding> {
  const t0 = performance.now();
  const f = await check();
  return { ...f, ms: performance.now() - t0 };
}
