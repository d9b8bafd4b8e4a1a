/**
 * Reservations as files in a dnsmasq --dhcp-hostsdir: one file per host (`NAME.conf`, one `MAC,IP,NAME`
 * line). dnsmasq re-reads the directory on change (inotify), so a file appears whole: it is written as a dot
 * file, which dnsmasq ignores, and renamed into place. Another file holding the same MAC, IP or name is a
 * CONFLICT: files vmforge did not write are never edited.
 */
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  describeEntry,
  dnsmasqHostFileName,
  dnsmasqHostLine,
  parseDnsmasqHosts,
  sameReservation,
  validateReservation,
  type DhcpHostEntry,
  type DhcpReservation,
} from '../../core/dhcp/reservation.js';
import { VmforgeError } from '../../errors.js';
import type { DhcpReservations, ReserveResult } from './reservations.js';

export class DnsmasqHostsDir implements DhcpReservations {
  constructor(readonly dir: string) {}

  async reserve(res: DhcpReservation): Promise<ReserveResult> {
    const r = validateReservation(res);
    const file = dnsmasqHostFileName(r.name);
    const files = await this.files();
    const clashes: string[] = [];
    for (const [f, entries] of files) {
      if (f === file) continue;
      for (const e of entries) {
        if (e.mac === r.mac || e.ip === r.ip || e.name === r.name) clashes.push(`${join(this.dir, f)}: ${describeEntry(e)}`);
      }
    }
    if (clashes.length) {
      throw new VmforgeError('CONFLICT', `DHCP reservation ${r.mac} ${r.ip} ${r.name} clashes with ${clashes.join('; ')}`, {
        hint: 'pick another address or name, or remove the other reservation first',
      });
    }
    const mine = files.get(file) ?? [];
    const alreadyPresent = mine.length === 1 && sameReservation(mine[0] as DhcpHostEntry, r);
    if (!alreadyPresent) {
      const tmp = join(this.dir, `.${file}.${process.pid}.tmp`);
      try {
        await writeFile(tmp, dnsmasqHostLine(r), { mode: 0o644 });
        await rename(tmp, join(this.dir, file));
      } catch (e) {
        await rm(tmp, { force: true });
        throw dirError(this.dir, e);
      }
    }
    return { removedStale: alreadyPresent ? [] : mine, alreadyPresent };
  }

  async release(res: DhcpReservation): Promise<void> {
    const r = validateReservation(res);
    const path = join(this.dir, dnsmasqHostFileName(r.name));
    const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw dirError(this.dir, e);
    });
    // Only our exact reservation is removed: a file rewritten since for another MAC/IP stays.
    if (text === null || !parseDnsmasqHosts(text).every((e) => sameReservation(e, r))) return;
    await rm(path, { force: true });
  }

  async list(): Promise<DhcpHostEntry[]> {
    return [...(await this.files()).values()].flat();
  }

  private async files(): Promise<Map<string, DhcpHostEntry[]>> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((n) => !n.startsWith('.') && !n.endsWith('~') && !/^#.*#$/.test(n)).sort();
    } catch (e) {
      throw dirError(this.dir, e);
    }
    const out = new Map<string, DhcpHostEntry[]>();
    for (const n of names) {
      const text = await readFile(join(this.dir, n), 'utf8').catch(() => null);
      if (text !== null) out.set(n, parseDnsmasqHosts(text));
    }
    return out;
  }
}

function dirError(dir: string, e: unknown): VmforgeError {
  const code = (e as NodeJS.ErrnoException).code ?? String(e);
  return new VmforgeError(code === 'ENOENT' ? 'NOT_FOUND' : 'COMMAND_FAILED', `dnsmasq hosts dir ${dir}: ${code}`, {
    hint: 'create it and start dnsmasq with --dhcp-hostsdir pointing at it',
  });
}
