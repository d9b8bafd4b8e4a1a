import { describe, expect, it } from 'vitest';
import { SAMPLE_UUID_1, sampleBuildFacts, sampleManifest } from '../../../test/harness/manifest-fixture.js';
import { planGrow } from '../disk/grow.js';
import { rootPartition, swapPartition } from '../disk/layout.js';
import { GiB, MiB } from '../units.js';
import { planBuild, requireDiskFitsBundle, type BuildFacts } from './build-plan.js';
import { goldenKey, planGolden } from './golden-plan.js';
import type { VmSpec } from '../model/spec.js';

const manifest = sampleManifest();
const U1 = SAMPLE_UUID_1;

describe('golden images', () => {
  it('keys by content, fs, layout version and boot mode', () => {
    expect(goldenKey({ bundleSha256: 'a'.repeat(64), fs: 'ext4' })).toBe(`${'a'.repeat(64)}-ext4-l1-bios-f2`);
    expect(goldenKey({ bundleSha256: 'a'.repeat(64), fs: 'xfs' })).not.toBe(goldenKey({ bundleSha256: 'a'.repeat(64), fs: 'ext4' }));
    expect(() => goldenKey({ bundleSha256: '../x', fs: 'ext4' })).toThrow();
  });

  it.each(['ext4', 'xfs'] as const)('%s: the golden root is the smallest any VM of the bundle may have, so every clone can grow', (fs) => {
    const g = planGolden({ manifest, fs, rootFsUuid: U1, diskSignature: 1 });
    expect(swapPartition(g.layout)).toBeUndefined();
    expect(g.grubCfg).toContain(`--fs-uuid --set=root ${U1}`);
    // The smallest disk requireDiskFitsBundle accepts, with and without swap, grows from it.
    for (const swapBytes of [0, 128 * MiB, 512 * MiB]) {
      let disk = 256 * MiB;
      for (;;) {
        try {
          requireDiskFitsBundle({ diskBytes: disk, swapBytes }, manifest.unpackedBytes, 'x');
          if (fs === 'xfs' && disk - swapBytes - MiB < 300 * MiB) throw new Error('xfs minimum');
          break;
        } catch {
          disk += MiB;
        }
      }
      const grown = planGrow({ golden: g.layout, targetDiskBytes: disk, swapBytes, fs });
      expect(grown.root.newSizeBytes).toBeGreaterThanOrEqual(grown.root.oldSizeBytes);
    }
  });
});

describe('planBuild, warm variant', () => {
  const spec = {
    name: 'web1', bundle: 'debian-bookworm', cpus: 1, memoryMiB: 512, diskBytes: 4 * GiB, swapBytes: 512 * MiB, fs: 'ext4',
    net: { mode: 'dhcp' }, nic: { type: 'none' }, start: false, autostart: false, selinux: 'relabel', dnsForce: false,
  } as unknown as VmSpec;
  const facts = (over: Partial<BuildFacts> = {}): BuildFacts => sampleBuildFacts({ domainType: 'qemu', nic: { type: 'none' }, ...over });

  it('qcow2: overlay disk, qcow2 domain disk, warm steps', () => {
    const p = planBuild(spec, false, facts({ clone: { strategy: 'qcow2', goldenKey: 'k' } }));
    expect(p.paths.disk).toBe('/srv/disks/web1.qcow2');
    expect(p.clone).toEqual({ strategy: 'qcow2', goldenKey: 'k', goldenPath: '/srv/disks/golden/k.img', exportPath: '/run/vmforge/export/web1.raw' });
    expect(p.domainXml).toContain("type='qcow2'");
    expect(p.steps.map((s) => s.id)).toEqual([
      'inventory.reserve', 'golden.ensure', 'clone.create', 'clone.attach', 'disk.grow', 'root.reuuid', 'root.mount',
      'guest.configure', 'boot.configure', 'root.release', 'domain.define', 'inventory.commit',
    ]);
    expect(rootPartition(p.layout).offsetBytes).toBe(MiB);
  });

  it('xfs grows after mounting; reflink keeps a raw disk', () => {
    const p = planBuild({ ...spec, fs: 'xfs' }, false, facts({ clone: { strategy: 'reflink', goldenKey: 'k' } }));
    expect(p.paths.disk).toBe('/srv/disks/web1.img');
    expect(p.clone?.exportPath).toBeNull();
    expect(p.domainXml).toContain("type='raw'");
    const ids = p.steps.map((s) => s.id);
    expect(ids.indexOf('root.reuuid')).toBeLessThan(ids.indexOf('root.mount'));
    expect(ids.indexOf('root.mount')).toBeLessThan(ids.indexOf('disk.grow'));
  });

  it('without a clone the plan is the cold one', () => {
    const p = planBuild(spec, false, facts());
    expect(p.clone).toBeNull();
    expect(p.paths.disk).toBe('/srv/disks/web1.img');
    expect(p.steps.map((s) => s.id)).toContain('bundle.extract');
  });
});
