/** /etc/fstab for a vmforge disk: the root filesystem and, when there is one, the swap partition, by UUID. */
import type { FsType } from '../model/spec.js';
import { assertUuid } from './uuid.js';

export interface FstabInput {
  rootUuid: string;
  fs: FsType;
  swapUuid?: string;
}

/**
 * fsck pass: ext4 root is checked first (1). fsck.xfs does nothing at boot (XFS repairs via its log), so
 * Debian's installer gives xfs pass 0.
 */
const ROOT_ENTRY: Record<FsType, { options: string; pass: number }> = {
  ext4: { options: 'errors=remount-ro', pass: 1 },
  xfs: { options: 'defaults', pass: 0 },
};

export function fstabLines(input: FstabInput): string {
  assertUuid(input.rootUuid, 'root filesystem UUID');
  const root = ROOT_ENTRY[input.fs];
  const lines = [
    '# /etc/fstab: static file system information, written by vmforge.',
    '# <file system> <mount point> <type> <options> <dump> <pass>',
    `UUID=${input.rootUuid} / ${input.fs} ${root.options} 0 ${root.pass}`,
  ];
  if (input.swapUuid !== undefined) {
    assertUuid(input.swapUuid, 'swap UUID');
    lines.push(`UUID=${input.swapUuid} none swap sw 0 0`);
  }
  return `${lines.join('\n')}\n`;
}
