import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import type { CommandRunner, RunOptions, RunResult } from '../runner.js';
import { createOverlay, parseQemuImgInfo, resizeImage } from './qcow2.js';
import { qsdFuseArgv } from './qsd-fuse.js';
import { reflinkArgv } from './reflink.js';

class ScriptedRunner implements CommandRunner {
  calls: string[][] = [];
  constructor(private readonly answer: (argv: readonly string[]) => RunResult) {}
  async run(argv: readonly string[], _opts?: RunOptions): Promise<RunResult> {
    this.calls.push([...argv]);
    return this.answer(argv);
  }
}

// Captured from qemu-img 7.2 for an overlay on a raw golden image.
const INFO = `{
    "backing-filename-format": "raw",
    "virtual-size": 2147483648,
    "filename": "/var/tmp/c.qcow2",
    "cluster-size": 65536,
    "format": "qcow2",
    "actual-size": 200704,
    "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "lazy-refcounts": false, "refcount-bits": 16, "corrupt": false, "extended-l2": false}},
    "full-backing-filename": "/var/tmp/golden.raw",
    "backing-filename": "/var/tmp/golden.raw",
    "dirty-flag": false
}`;

describe('parseQemuImgInfo', () => {
  it('reads sizes, format and backing file', () => {
    expect(parseQemuImgInfo(INFO)).toEqual({
      format: 'qcow2',
      virtualSizeBytes: 2147483648,
      actualSizeBytes: 200704,
      backingFile: '/var/tmp/golden.raw',
      fullBackingFile: '/var/tmp/golden.raw',
      backingFormat: 'raw',
      clusterSize: 65536,
      dirty: false,
      corrupt: false,
    });
  });
  it('reads a raw image without backing', () => {
    expect(parseQemuImgInfo('{"virtual-size": 1048576, "filename": "a.raw", "format": "raw", "actual-size": 4096, "dirty-flag": false}')).toMatchObject({
      format: 'raw',
      virtualSizeBytes: 1048576,
      backingFile: undefined,
      corrupt: false,
    });
  });
  it('refuses non-JSON and --backing-chain arrays', () => {
    expect(() => parseQemuImgInfo('qemu-img: error')).toThrow(VmforgeError);
    expect(() => parseQemuImgInfo(`[${INFO}]`)).toThrow(/virtual-size/);
  });
});

describe('createOverlay', () => {
  it('refuses relative backing paths and sizes that are not whole sectors, before touching the disk', async () => {
    await expect(createOverlay({ backing: 'golden.raw', overlay: '/nonexistent/vm.qcow2', sizeBytes: 512 })).rejects.toThrow(/absolute/);
    await expect(createOverlay({ backing: '/g', overlay: '/nonexistent/vm.qcow2', sizeBytes: 1000 })).rejects.toThrow(/multiple of 512/);
  });
  it('refuses to overwrite an existing file (qemu-img would), and leaves it as it was', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmf-qcow2-'));
    try {
      await writeFile(join(dir, 'vm.qcow2'), 'x');
      await expect(createOverlay({ backing: '/g/golden.raw', overlay: join(dir, 'vm.qcow2'), sizeBytes: 4096 })).rejects.toMatchObject({ code: 'CONFLICT' });
      expect(await readFile(join(dir, 'vm.qcow2'), 'utf8')).toBe('x');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('takes the virtual size from a raw backing file when none is given', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmf-qcow2-'));
    try {
      await writeFile(join(dir, 'golden.raw'), Buffer.alloc(3 * 512));
      await createOverlay({ backing: join(dir, 'golden.raw'), overlay: join(dir, 'vm.qcow2') });
      expect((await readFile(join(dir, 'vm.qcow2'))).readBigUInt64BE(24)).toBe(1536n);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('resizeImage', () => {
  const runner = () => new ScriptedRunner((argv) => ({ stdout: argv[1] === 'info' ? INFO : '', stderr: '', exitCode: 0 }));
  it('grows with the image format qemu-img reported', async () => {
    const r = runner();
    await resizeImage(r, { path: '/var/tmp/c.qcow2', sizeBytes: 4 * 1024 ** 3 });
    expect(r.calls.at(-1)).toEqual(['qemu-img', 'resize', '-q', '-f', 'qcow2', '/var/tmp/c.qcow2', '4294967296']);
  });
  it('does nothing at the same size and refuses to shrink', async () => {
    const r = runner();
    await resizeImage(r, { path: '/var/tmp/c.qcow2', sizeBytes: 2147483648 });
    expect(r.calls.map((c) => c[1])).toEqual(['info']);
    await expect(resizeImage(r, { path: '/var/tmp/c.qcow2', sizeBytes: 1024 ** 3 })).rejects.toThrow(/shrink/);
  });
});

describe('qsdFuseArgv', () => {
  it('exports the qcow2 node over FUSE, writable by default', () => {
    expect(qsdFuseArgv({ qcow2Path: '/d/vm.qcow2', exportPath: '/d/vm.raw' })).toEqual([
      'qemu-storage-daemon',
      '--blockdev', 'driver=file,filename=/d/vm.qcow2,node-name=f',
      '--blockdev', 'driver=qcow2,file=f,node-name=q',
      '--export', 'type=fuse,id=e,node-name=q,mountpoint=/d/vm.raw,writable=on',
    ]);
    expect(qsdFuseArgv({ qcow2Path: '/d/vm.qcow2', exportPath: '/d/vm.raw', readOnly: true }).join(' ')).toMatch(/read-only=on.*read-only=on.*writable=off/);
  });
  it('refuses paths with commas (qemu option syntax)', () => {
    expect(() => qsdFuseArgv({ qcow2Path: '/d/a,b.qcow2', exportPath: '/d/vm.raw' })).toThrow(/comma/);
  });
});

describe('reflinkArgv', () => {
  it('asks cp for a clone or nothing, never a full copy', () => {
    expect(reflinkArgv('/a', '/b')).toEqual(['cp', '--reflink=always', '--no-target-directory', '--', '/a', '/b']);
  });
});
