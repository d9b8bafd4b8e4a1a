/** The host's Linux bridges, as the kernel lists them (a directory `bridge/` under the interface's sysfs node). */
import { readdir } from 'node:fs/promises';

export async function hostBridges(sysClassNet = '/sys/class/net'): Promise<string[]> {
  const names = await readdir(sysClassNet).catch(() => [] as string[]);
  const out: string[] = [];
  for (const n of names) {
    if (await readdir(`${sysClassNet}/${n}/bridge`).then(() => true, () => false)) out.push(n);
  }
  return out;
}
