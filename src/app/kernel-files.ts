/**
 * Direct kernel boot: the guest's kernel and initrd live on the host, where QEMU reads them. Copied out of the
 * guest root at build time and again by `vm refresh-kernel` after the guest installed a new kernel.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { GuestRoot } from '../exec/guestfs/guest-root.js';
import { invalidInput } from '../errors.js';

/** Larger than any kernel or initrd; a bigger "kernel" is not one. */
const MAX_BOOT_FILE_BYTES = 512 * 1024 * 1024;

/**
 * Copies a file of the guest (symlinks resolved inside the guest root) to `hostPath`, replacing it atomically.
 * Mode 0644: QEMU runs unprivileged and must read it.
 */
export async function copyOutOfGuest(guest: GuestRoot, guestPath: string, hostPath: string): Promise<number> {
  const data = await guest.readHead(guestPath, MAX_BOOT_FILE_BYTES + 1);
  if (!data) throw invalidInput(`the guest has no regular file ${guestPath}`, 'the bundle must contain the kernel its manifest lists');
  if (data.length > MAX_BOOT_FILE_BYTES) throw invalidInput(`${guestPath} in the guest is larger than 512 MiB; that is no kernel or initrd`);
  const tmp = `${hostPath}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, data, { mode: 0o644, flag: 'wx' });
    await rename(tmp, hostPath);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return data.length;
}
