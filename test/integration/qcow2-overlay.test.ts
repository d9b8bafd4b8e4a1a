import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow2OverlayBytes } from '../../src/core/disk/qcow2-overlay.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { createOverlay } from '../../src/exec/tools/qcow2.js';

// The overlay header vmforge writes itself must be what qemu-img writes: compared byte for byte with the
// installed qemu-img, then read back through qemu (check, info, and a guest read falling through to the backing).
describe('qcow2 overlay written natively vs qemu-img create', () => {
  const runner = new HostProcessRunner();
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp('/var/tmp/vmforge-qcow2-');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const [label, size] of [
    ['4 GiB', 4 * 1024 ** 3],
    ['4 GiB + 512', 4 * 1024 ** 3 + 512],
    ['40 GiB', 40 * 1024 ** 3],
    ['1 TiB', 1024 ** 4],
    ['8 TiB (two L1 clusters)', 8 * 1024 ** 4],
    ['1 MiB', 1024 ** 2],
  ] as const) {
    for (const format of ['raw', 'qcow2'] as const) {
      it(`${label} on a ${format} backing image: identical bytes`, async () => {
        const backing = join(dir, `golden-${format}-with a space.img`);
        await runner.run(['qemu-img', 'create', '-q', '-f', format, backing, '1M']);
        const theirs = join(dir, `theirs-${format}-${size}.qcow2`);
        await runner.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', format, '-b', backing, theirs, String(size)]);
        expect(qcow2OverlayBytes({ backing, backingFormat: format, sizeBytes: size }).equals(await readFile(theirs))).toBe(true);
      });
    }
  }

  it('qemu reads a native overlay: check passes, info names the backing, reads fall through, writes stay in it', async () => {
    const backing = join(dir, 'golden.raw');
    const data = randomBytes(65536);
    await writeFile(backing, Buffer.concat([data, Buffer.alloc(1024 * 1024 - data.length)]));
    const overlay = join(dir, 'vm.qcow2');
    await createOverlay({ backing, overlay, sizeBytes: 8 * 1024 ** 3 });
    await runner.run(['qemu-img', 'check', '-q', overlay]);
    const info = JSON.parse((await runner.run(['qemu-img', 'info', '--output=json', overlay])).stdout) as Record<string, unknown>;
    expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': 8 * 1024 ** 3, 'backing-filename': backing, 'backing-filename-format': 'raw' });
    const out = join(dir, 'read.raw');
    await runner.run(['qemu-img', 'dd', '-f', 'qcow2', '-O', 'raw', 'bs=65536', 'count=1', `if=${overlay}`, `of=${out}`]);
    expect((await readFile(out)).equals(data)).toBe(true);
    await runner.run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x5a 0 4096', overlay]);
    await runner.run(['qemu-img', 'check', '-q', overlay]);
    expect((await readFile(backing)).subarray(0, 65536).equals(data)).toBe(true);
  });
});
