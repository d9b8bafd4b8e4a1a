import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import { matchGolden as matchGoldenIn } from '../../../test/harness/golden.js';
import { buildDomainXml } from '../domain-xml/build.js';
import { domainModelFor } from '../domain-xml/defaults.js';
import { readDomainFacts } from '../domain-xml/facts.js';
import { GiB, MiB } from '../units.js';
import {
  dmName,
  parseLvmStorageSpec,
  parseStorageSpec,
  parseThinPoolLvsOutput,
  parseVgsOutput,
  planLvmStorage,
  thinPoolLvsArgv,
  validateLvmName,
  vgsArgv,
  type LvmPlanInput,
} from './lvm-plan.js';

const matchGolden = (file: string, actual: unknown) => matchGoldenIn(import.meta.dirname, file, JSON.stringify(actual, null, 2) + '\n');

const EXTENT = 4 * MiB;
const kvm: LvmPlanInput = {
  vg: 'vg0',
  vmName: 'web1',
  hypervisor: 'kvm',
  diskBytes: 4 * GiB,
  swapBytes: 256 * MiB,
  fs: 'ext4',
  vgFreeBytes: 50 * GiB,
  extentBytes: EXTENT,
};
const xen: LvmPlanInput = { ...kvm, vmName: 'xen1', hypervisor: 'xen', diskBytes: 4 * GiB + 3 * MiB, swapBytes: 510 * MiB };

/** The golden form: argv and paths as they will run, the layout reduced to what the MBR says. */
function goldenView(input: LvmPlanInput) {
  const p = planLvmStorage(input);
  return {
    input,
    probe: p.thinPool === null ? [vgsArgv(p.vg)] : [vgsArgv(p.vg), thinPoolLvsArgv(p.vg, p.thinPool)],
    create: p.volumes.map((v) => v.create),
    undo: p.undo,
    volumes: p.volumes.map(({ role, lv, sizeBytes, device }) => ({ role, lv, sizeBytes, device })),
    totalBytes: p.totalBytes,
    partitionTable: p.diskLayout && p.diskLayout.partitions.map(({ index, role, startLba, sectors }) => ({ index, role, startLba, sectors })),
    domain: p.domain,
  };
}

function errorOf(f: () => unknown): { code: string; message: string; hint: string | null } {
  try {
    f();
  } catch (e) {
    if (!(e instanceof VmforgeError)) throw e;
    return { code: e.code, message: e.message, hint: e.hint ?? null };
  }
  throw new Error('expected an error');
}

describe('planLvmStorage goldens', () => {
  it('kvm-lvm: one linear LV holding the whole disk and its MBR', () => {
    matchGolden('kvm-lvm.json', goldenView(kvm));
  });

  it('kvm-lvm-thin: one thin LV from the pool', () => {
    matchGolden('kvm-lvm-thin.json', goldenView({ ...kvm, thinPool: 'pool0', vgFreeBytes: 0, poolFreeBytes: 20 * GiB }));
  });

  it('xen-lvm-partitions: one LV per partition, sizes rounded up to extents', () => {
    matchGolden('xen-lvm-partitions.json', goldenView(xen));
  });

  it('errors', () => {
    const cases: Record<string, () => unknown> = {
      'linear: more than the VG has free': () => planLvmStorage({ ...kvm, vgFreeBytes: 3 * GiB + 2 * MiB }),
      'thin: more than the pool has free': () => planLvmStorage({ ...kvm, thinPool: 'pool0', poolFreeBytes: 1 * GiB + 5 * MiB }),
      'xen: root plus swap more than the VG has free': () => planLvmStorage({ ...xen, vgFreeBytes: 2 * GiB }),
      'xen: VG full': () => planLvmStorage({ ...xen, vgFreeBytes: 0 }),
      'xen: VG holds only the swap': () => planLvmStorage({ ...xen, vgFreeBytes: 600 * MiB }),
      'kvm: partitions layout': () => planLvmStorage({ ...kvm, layout: 'partitions' }),
      'xen: swap leaves no root': () => planLvmStorage({ ...xen, diskBytes: 512 * MiB, swapBytes: 500 * MiB }),
      'bad VG name': () => planLvmStorage({ ...kvm, vg: '-vg' }),
      'reserved thin pool name': () => planLvmStorage({ ...kvm, thinPool: 'pool_tmeta' }),
      'bad extent size': () => planLvmStorage({ ...kvm, extentBytes: 3 * MiB }),
      'bad VM name': () => planLvmStorage({ ...kvm, vmName: 'Web_1' }),
      'device-mapper name too long': () => planLvmStorage({ ...kvm, vg: 'v-'.repeat(31) + 'g', vmName: 'a'.repeat(30) + '-' + 'b'.repeat(30) }),
      'spec without lvm:': () => parseStorageSpec('lvm2:vg0'),
      'spec with two slashes': () => parseLvmStorageSpec('lvm:vg0/pool/x'),
      'spec with an empty VG': () => parseLvmStorageSpec('lvm:/pool'),
      'spec with a bad character': () => parseLvmStorageSpec('lvm:vg 0'),
    };
    matchGolden(
      'lvm-errors.json',
      Object.fromEntries(Object.entries(cases).map(([k, f]) => [k, errorOf(f)])),
    );
  });
});

describe('planLvmStorage', () => {
  it('rounds every LV up to whole extents and lays the MBR out on the rounded size', () => {
    const p = planLvmStorage({ ...kvm, diskBytes: 4 * GiB + 1 });
    expect(p.volumes[0]!.sizeBytes).toBe(4 * GiB + EXTENT);
    expect(p.diskLayout!.diskBytes).toBe(4 * GiB + EXTENT);
    expect(p.volumes[0]!.create).toEqual(['lvcreate', '-n', 'vmf-web1', '-L', `${4 * GiB + EXTENT}b`, 'vg0', '-y', '--wipesignatures', 'y']);
  });

  it('gives Xen no swap LV without swap', () => {
    const p = planLvmStorage({ ...xen, swapBytes: 0 });
    expect(p.volumes.map((v) => v.lv)).toEqual(['vmf-xen1-root']);
    expect(p.domain.diskLayout).toEqual({ kind: 'partitions' });
  });

  it('plans a whole disk for Xen HVM when asked', () => {
    const p = planLvmStorage({ ...xen, layout: 'whole-disk' });
    expect(p.volumes.map((v) => v.lv)).toEqual(['vmf-xen1']);
    expect(p.diskLayout?.partitions.map((x) => x.role)).toEqual(['root', 'swap']);
  });

  it('fits exactly when the free space equals the need', () => {
    expect(planLvmStorage({ ...kvm, vgFreeBytes: 4 * GiB }).totalBytes).toBe(4 * GiB);
    expect(() => planLvmStorage({ ...kvm, vgFreeBytes: 4 * GiB - EXTENT })).toThrow(/needs 4.0 GiB/);
  });

  it('checks thin volumes against the pool, not the VG, and not at all when the pool is unknown', () => {
    expect(planLvmStorage({ ...kvm, thinPool: 'pool0', vgFreeBytes: 0 }).volumes).toHaveLength(1);
    expect(() => planLvmStorage({ ...kvm, thinPool: 'pool0', vgFreeBytes: 100 * GiB, poolFreeBytes: GiB })).toThrow(/thin pool vg0\/pool0 has 1.0 GiB free/);
  });

  it('suggests a --disk that then fits', () => {
    for (const input of [
      { ...kvm, vgFreeBytes: 3 * GiB + 2 * MiB },
      { ...xen, vgFreeBytes: 2 * GiB + 7 * MiB },
      { ...kvm, thinPool: 'pool0', poolFreeBytes: 1234 * MiB + 77 },
    ]) {
      const err = errorOf(() => planLvmStorage(input));
      expect(err.code).toBe('INSUFFICIENT_SPACE');
      const mib = Number(/--disk (\d+)M/.exec(err.hint ?? '')?.[1]);
      expect(mib).toBeGreaterThan(0);
      expect(() => planLvmStorage({ ...input, diskBytes: mib * MiB })).not.toThrow();
      expect(() => planLvmStorage({ ...input, diskBytes: (mib + 1) * MiB + EXTENT })).toThrow(VmforgeError);
    }
  });

  it('feeds the domain XML: block disks, xvda1 + xvda2 under Xen, vda under KVM', () => {
    const base = { uuid: '5d2f8a14-6b3c-4e7d-8f9a-0b1c2d3e4f50', cpus: 1, memoryMiB: 512, nic: { type: 'none' } as const, serialLogPath: '/l' };
    const x = planLvmStorage(xen);
    const xml = buildDomainXml(domainModelFor({ ...base, name: 'xen1', hypervisor: 'xen', ...x.domain }));
    expect(readDomainFacts(xml).diskSources).toEqual(['/dev/vg0/vmf-xen1-root', '/dev/vg0/vmf-xen1-swap']);
    expect(xml).toContain("<target dev='xvda2' bus='xen'/>");
    const k = planLvmStorage(kvm);
    const kxml = buildDomainXml(domainModelFor({ ...base, name: 'web1', hypervisor: 'kvm', ...k.domain }));
    expect(kxml).toContain("<source dev='/dev/vg0/vmf-web1'/>\n      <target dev='vda' bus='virtio'/>");
  });
});

describe('storage specs and names', () => {
  it('parses file, lvm:VG and lvm:VG/POOL', () => {
    expect(parseStorageSpec('file')).toEqual({ backend: 'file' });
    expect(parseStorageSpec('lvm:vg0')).toEqual({ backend: 'lvm', vg: 'vg0' });
    expect(parseStorageSpec(' lvm:vg.data+1/thin_pool-0 ')).toEqual({ backend: 'lvm', vg: 'vg.data+1', thinPool: 'thin_pool-0' });
  });

  const bad: Array<[string, string, RegExp]> = [
    ['volume group', '', /empty/],
    ['volume group', '.', /reserved/],
    ['volume group', '..', /reserved/],
    ['volume group', '-x', /starts with '-'/],
    ['volume group', 'a/b', /characters/],
    ['volume group', 'vg:0', /characters/],
    ['volume group', 'ä', /characters/],
    ['volume group', 'x'.repeat(128), /127/],
    ['logical volume', 'snapshot1', /'snapshot'/],
    ['logical volume', 'pvmove0', /'pvmove'/],
    ['logical volume', 'a_rimage_0', /'_rimage'/],
    ['thin pool', 'p_tdata', /'_tdata'/],
  ];
  for (const [kind, name, re] of bad) {
    it(`rejects ${kind} name ${JSON.stringify(name.slice(0, 12))}`, () => {
      expect(() => validateLvmName(kind as 'volume group', name)).toThrow(re);
    });
  }

  it('allows in a VG name what is reserved only for LVs', () => {
    expect(validateLvmName('volume group', 'snapshot_tmeta')).toBe('snapshot_tmeta');
  });

  it('doubles dashes in device-mapper names', () => {
    expect(dmName('vg-a', 'vmf-web1-root')).toBe('vg--a-vmf--web1--root');
  });
});

describe('vgs and lvs output', () => {
  it('reads vg_free and vg_extent_size', () => {
    expect(parseVgsOutput('  53682896896   4194304\n', 'vg0')).toEqual({ freeBytes: 53682896896, extentBytes: 4194304 });
    expect(parseVgsOutput('  0 4194304', 'vg0')).toEqual({ freeBytes: 0, extentBytes: 4194304 });
  });

  it('rejects what it cannot read', () => {
    expect(() => parseVgsOutput('', 'vg0')).toThrow(/0 lines/);
    expect(() => parseVgsOutput('  1 4194304\n  2 4194304\n', 'vg0')).toThrow(/2 lines/);
    expect(() => parseVgsOutput('  50.00g 4.00m\n', 'vg0')).toThrow(/vg_free/);
    expect(() => parseVgsOutput('  1 4194304 x\n', 'vg0')).toThrow(/more fields/);
    expect(() => parseVgsOutput('  1 3000\n', 'vg0')).toThrow(/power of two/);
  });

  it('reads a thin pool and computes its free bytes exactly', () => {
    expect(parseThinPoolLvsOutput('  10737418240 12.34 twi-aotz--\n', 'vg0', 'pool0')).toEqual({
      sizeBytes: 10737418240,
      dataPercent: 12.34,
      freeBytes: 9412420829,
    });
    expect(parseThinPoolLvsOutput('  1099511627776 0.00 twi-a-tz--', 'vg0', 'pool0').freeBytes).toBe(1099511627776);
    expect(parseThinPoolLvsOutput('  4194304 100.00 twi-aotzD-', 'vg0', 'pool0').freeBytes).toBe(0);
  });

  it('refuses an LV that is not a thin pool, and odd percentages', () => {
    expect(() => parseThinPoolLvsOutput('  10737418240  -wi-a-----\n', 'vg0', 'lv0')).toThrow(/unexpected lvs output/);
    expect(() => parseThinPoolLvsOutput('  10737418240 0.00 -wi-a-----\n', 'vg0', 'lv0')).toThrow(/not a thin pool/);
    expect(() => parseThinPoolLvsOutput('  10737418240 12,34 twi-aotz--\n', 'vg0', 'pool0')).toThrow(/data_percent/);
    expect(() => parseThinPoolLvsOutput('  10737418240 100.01 twi-aotz--\n', 'vg0', 'pool0')).toThrow(/over 100/);
  });

  it('asks vgs and lvs for exactly what the parsers read', () => {
    expect(vgsArgv('vg0')).toEqual(['vgs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'vg_free,vg_extent_size', 'vg0']);
    expect(thinPoolLvsArgv('vg0', 'pool0')).toEqual(['lvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'lv_size,data_percent,lv_attr', 'vg0/pool0']);
    expect(() => vgsArgv('--all')).toThrow(/starts with '-'/);
  });
});
