/**
 * The guest fixture trees under src/core/guest/__fixtures__ as GuestRoot.snapshot stand-ins, and the readable
 * form of an edit list used in the guest golden files. The same as the helpers inside adapter.test.ts, shared
 * here for tests that need them too.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { GuestFamily } from '../../src/core/guest/adapter.js';
import type { GuestFiles, GuestFilesNeeded } from '../../src/core/guest/current-files.js';
import type { FileEdit } from '../../src/core/model/spec.js';

export const GUEST_FIXTURES_DIR = path.join(import.meta.dirname, '../../src/core/guest/__fixtures__');

function linksOf(root: string): Map<string, string> {
  const file = path.join(root, '__links__');
  if (!existsSync(file)) return new Map();
  return new Map(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.includes(' -> '))
      .map((l) => l.split(' -> ') as [string, string]),
  );
}

export function fixtureSnapshot(name: string): (needs: GuestFilesNeeded) => Promise<GuestFiles> {
  const root = path.join(GUEST_FIXTURES_DIR, name);
  if (!existsSync(root)) throw new Error(`no fixture ${name}`);
  const host = (p: string) => path.join(root, p);
  const links = linksOf(root);
  return (needs) => {
    const files: Record<string, string | null> = {};
    const dirs: Record<string, string[]> = {};
    const linkTargets: Record<string, string | null> = {};
    for (const p of needs.files) files[p] = existsSync(host(p)) && statSync(host(p)).isFile() ? readFileSync(host(p), 'utf8') : null;
    for (const p of needs.dirs) {
      const fromTree = existsSync(host(p)) && statSync(host(p)).isDirectory() ? readdirSync(host(p)) : [];
      const fromLinks = [...links.keys()].filter((l) => path.posix.dirname(l) === p).map((l) => path.posix.basename(l));
      dirs[p] = [...new Set([...fromTree, ...fromLinks])].filter((n) => n !== '.keep').sort();
    }
    for (const p of needs.links) linkTargets[p] = links.get(p) ?? null;
    return Promise.resolve({ files, dirs, links: linkTargets });
  };
}

export function renderEdits(edits: readonly FileEdit[]): string {
  const mode = (m: number | undefined) => (m === undefined ? '' : ` mode=${m.toString(8).padStart(4, '0')}`);
  const out: string[] = [];
  for (const e of edits) {
    switch (e.kind) {
      case 'write':
        out.push(`==> write ${e.path}${mode(e.mode)}`);
        if (e.content === '') out.push('(empty)');
        else out.push(e.content.endsWith('\n') ? e.content.slice(0, -1) : `${e.content}\n\\ no newline at end`);
        break;
      case 'delete':
        out.push(`==> delete ${e.path}`);
        break;
      case 'mkdir':
        out.push(`==> mkdir ${e.path}${mode(e.mode)}`);
        break;
      case 'symlink':
        out.push(`==> symlink ${e.path} -> ${e.target}`);
        break;
    }
  }
  return `${out.join('\n')}\n`;
}

/** Each release fixture and the family it is adapted as (the adapter and host-key tests run them all). */
export const FIXTURE_FAMILIES: readonly { fixture: string; family: GuestFamily }[] = [
  { fixture: 'debian-12', family: 'debian' },
  { fixture: 'ubuntu-22.04', family: 'ubuntu' },
  { fixture: 'arch', family: 'systemd-networkd' },
  { fixture: 'centos-6', family: 'rhel-legacy' },
  { fixture: 'centos-7', family: 'rhel-legacy' },
  { fixture: 'rhel-8', family: 'rhel8' },
  { fixture: 'fedora-39', family: 'rhel9' },
  { fixture: 'rocky-9', family: 'rhel9' },
];
