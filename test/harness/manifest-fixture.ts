/** The Debian template's manifest as unit tests of planning and manifests use it (no file behind it). */
import type { Manifest } from '../../src/bundles/manifest.js';

export function sampleManifest(over: Partial<Manifest> = {}): Manifest {
  return {
    schemaVersion: 1,
    name: 'debian-bookworm',
    version: '1',
    created: '2026-01-02T03:04:05.000Z',
    os: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)', family: 'debian' },
    arch: 'x86_64',
    kernels: [{ version: '6.1.0-9-cloud-amd64', kernel: '/boot/vmlinuz-6.1.0-9-cloud-amd64', initrd: '/boot/initrd.img-6.1.0-9-cloud-amd64' }],
    unpackedBytes: 300_000_000,
    fileCount: 12_345,
    compressedBytes: 100_000_000,
    compression: 'zstd',
    sha256: 'a'.repeat(64),
    excludes: [],
    ...over,
  };
}
