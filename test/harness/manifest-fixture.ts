/** The Debian template's manifest and build facts as unit tests of planning and manifests use them (no file behind them). */
import type { Manifest } from '../../src/bundles/manifest.js';
import type { BuildFacts } from '../../src/core/plan/build-plan.js';

export const SAMPLE_UUID_1 = '11111111-1111-4111-8111-111111111111';
export const SAMPLE_UUID_2 = '22222222-2222-4222-8222-222222222222';

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

/** Host facts for planBuild with fixed identifiers; `over` sets what a test is about (domain type, NIC, clone). */
export function sampleBuildFacts(over: Partial<BuildFacts> = {}): BuildFacts {
  return {
    domainType: 'kvm',
    bundleRef: 'debian-bookworm:1',
    manifest: sampleManifest(),
    storageDir: '/srv/disks',
    consoleDir: '/srv/console',
    runDir: '/run/vmforge',
    partitionAccess: 'loop-offset',
    nic: { type: 'user' },
    ids: { uuid: SAMPLE_UUID_1, mac: '52:54:00:00:00:01', diskSignature: 1, rootFsUuid: SAMPLE_UUID_1, swapFsUuid: SAMPLE_UUID_2 },
    ...over,
  };
}
