/**
 * The smallest root tree that `bundle import` detects as Debian and a build can adapt and boot-configure (no real
 * kernel: the files only have to exist). Tests add what they are about on top.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function writeMinimalDebianRoot(dir: string): Promise<void> {
  const files: Record<string, string> = {
    'etc/default/grub': 'GRUB_TIMEOUT=5\n',
    'etc/shadow': 'root:*:19000:0:99999:7:::\n',
    'etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
    'boot/vmlinuz-6.1.0-1-amd64': 'kernel',
    'boot/initrd.img-6.1.0-1-amd64': 'initrd',
  };
  for (const [f, text] of Object.entries(files)) {
    await mkdir(join(dir, f, '..'), { recursive: true });
    await writeFile(join(dir, f), text);
  }
  await mkdir(join(dir, 'bin'), { recursive: true });
  await writeFile(join(dir, 'bin/sh'), (await readFile('/bin/sh')).subarray(0, 64));
}
