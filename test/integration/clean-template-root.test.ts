/**
 * cleanTemplateRoot on a root without /etc/fstab writes a placeholder, a new file owned by root:root: giving it
 * that owner needs root, so this case lives here rather than with the unit tests in src/bundles/bootstrap.test.ts.
 */
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanTemplateRoot } from '../../src/bundles/bootstrap.js';
import { requireRoot } from '../harness/env.js';

requireRoot();

let tmp: string;
let root: string;
const inRoot = (p: string) => path.join(root, p);

beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'vmforge-clean-'));
  root = path.join(tmp, 'root');
  await fsp.mkdir(path.join(root, 'etc/ssh'), { recursive: true });
  await fsp.writeFile(inRoot('etc/hostname'), 'buildhost\n');
  await fsp.writeFile(inRoot('etc/resolv.conf'), 'nameserver 10.0.0.1\n');
  await fsp.writeFile(inRoot('etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
  await fsp.writeFile(inRoot('etc/ssh/sshd_config'), '');
});

afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

describe('cleanTemplateRoot', () => {
  it('writes a placeholder fstab, root-owned, when there is none', async () => {
    await cleanTemplateRoot(root);
    expect(await fsp.readFile(inRoot('etc/fstab'), 'utf8')).toBe('# /etc/fstab: written when a VM is provisioned\n');
    const st = await fsp.stat(inRoot('etc/fstab'));
    expect(st.mode & 0o7777).toBe(0o644);
    expect([st.uid, st.gid]).toEqual([0, 0]);
  });
});
