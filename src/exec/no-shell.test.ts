import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { refuseShell } from './no-shell.js';
import { HostProcessRunner } from './runner.js';

describe('no shell, ever', () => {
  it('refuses shells by name or path, in run, pipeline and daemon', async () => {
    for (const sh of ['sh', '/bin/sh', '/usr/bin/bash', 'dash', 'busybox']) {
      expect(() => refuseShell([sh, '-c', 'echo hi'])).toThrow(/refusing to start a shell/);
    }
    expect(() => refuseShell(['shred', '-u', 'f'])).not.toThrow();
    expect(() => refuseShell(['/usr/sbin/sshd'])).not.toThrow();
    const r = new HostProcessRunner();
    await expect(r.run(['/bin/sh', '-c', 'true'])).rejects.toThrow(/refusing to start a shell/);
    expect(() => r.pipeline({ stages: [{ argv: ['cat'] }, { argv: ['bash', '-c', 'cat'] }] } as never)).toThrow(/refusing to start a shell/);
    expect(() => r.spawnDaemon({ argv: ['sh', '-c', 'sleep 1'] } as never)).toThrow(/refusing to start a shell/);
  });

  it('no source file spawns through a shell string', async () => {
    const root = path.resolve(import.meta.dirname, '..');
    const files: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) files.push(p);
      }
    };
    await walk(root);
    expect(files.length).toBeGreaterThan(50);
    const bad: string[] = [];
    for (const f of files) {
      const text = await readFile(f, 'utf8');
      if (/shell:\s*true|execSync\(|\bexec\(\s*['"`]|\[\s*['"](?:\/bin\/)?(?:ba)?sh['"]\s*,\s*['"]-c['"]/.test(text)) bad.push(path.relative(root, f));
    }
    expect(bad).toEqual([]);
  });
});
