/**
 * grub.cfg for a Xen PV guest booted by pygrub: dom0 runs pygrub, which parses /boot/grub/grub.cfg on the
 * guest's root device and hands the kernel it names to Xen. No GRUB code runs in the guest, so only what
 * pygrub understands is written (set default/timeout, menuentry, linux, initrd): no serial, insmod or search.
 */
import { grubCfg } from './grub-bios.js';
import type { FsType } from '../model/spec.js';

/** PV guests have no emulated serial port; their console is the PV console hvc0. */
export const XEN_PV_KERNEL_CMDLINE = 'console=hvc0 net.ifnames=0 biosdevname=0';

export const PYGRUB_CFG_PATH = '/boot/grub/grub.cfg';

export function pygrubCfg(input: { rootUuid: string; fs: FsType; kernel: string; initrd?: string; title: string }): string {
  // grubCfg validates paths, UUID and title the same way; its menuentry block is reused as is.
  const full = grubCfg({ ...input, cmdline: XEN_PV_KERNEL_CMDLINE });
  const entry = full.slice(full.indexOf('menuentry '));
  return ['# GRUB configuration for pygrub (Xen PV), written by vmforge: dom0 reads it, no GRUB runs in the guest.', 'set default=0', 'set timeout=0', entry].join('\n');
}
