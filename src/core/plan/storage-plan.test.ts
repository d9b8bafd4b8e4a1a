import { describe, expect, it } from 'vitest';
import { matchGolden } from '../../../test/harness/golden.js';
import { sampleManifest } from '../../../test/harness/manifest-fixture.js';
import type { Config } from '../../config/schema.js';
import { GiB, MiB } from '../units.js';
import type { VmSpec } from '../model/spec.js';
import { describePlan, planBuild, type BuildFacts } from './build-plan.js';
import { specFromRequest, type BuildRequest } from './build-request.js';
import { planStorageDestroy } from './storage-plan.js';

const manifest = sampleManifest();

const config = {
  libvirt: { uri: 'qemu:///system', domainType: 'auto', hypervisor: 'kvm' },
  storage: { type: 'file', backend: 'file', dir: '/var/lib/vmforge/disks', partitionAccess: 'loop-offset', clone: 'off' },
  defaults: { cpus: 1, memory: '1G', disk: '4G', swap: '512M', fs: 'ext4', net: 'none', firmware: 'bios' },
  network: {},
} as unknown as Config;

function facts(domainType: BuildFacts['domainType'], lvm?: BuildFacts['lvm']): BuildFacts {
  return {
    domainType,
    bundleRef: 'debian-bookworm:1',
    manifest,
    storageDir: '/var/lib/vmforge/disks',
    consoleDir: '/var/lib/vmforge/console',
    runDir: '/run/vmforge',
    partitionAccess: 'loop-offset',
    nic: { type: 'bridge', bridge: 'br0' },
    ids: {
      uuid: '11111111-1111-4111-8111-111111111111',
      mac: domainType === 'xen' ? '00:16:3e:12:34:56' : '52:54:00:12:34:56',
      diskSignature: 0x12345678,
      rootFsUuid: '22222222-2222-4222-8222-222222222222',
      swapFsUuid: '33333333-3333-4333-8333-333333333333',
    },
    ...(lvm ? { lvm } : {}),
  };
}

function spec(req: Partial<BuildRequest>): VmSpec {
  // A Xen guest is built on a Xen connection (a qemu:// URI refuses --hypervisor xen).
  const cfg = req.hypervisor === 'xen' ? ({ ...config, libvirt: { ...config.libvirt, uri: 'xen:///system' } } as Config) : config;
  const { nicRequest: _n, ...s } = specFromRequest({ name: 'web1', bundle: 'debian-bookworm', ...req }, cfg);
  return { ...s, nic: { type: 'bridge', bridge: 'br0' } };
}

const VG = { vgFreeBytes: 100 * GiB, extentBytes: 4 * MiB };
const POOL = { ...VG, poolFreeBytes: 50 * GiB };

/** The whole dry-run output: plan text, then the domain XML. */
const dryRun = (s: VmSpec, f: BuildFacts) => {
  const p = planBuild(s, false, f);
  return `${describePlan(p)}\n\n${p.domainXml}`;
};

describe('build plans per hypervisor and storage: goldens', () => {
  const cases: Array<[string, Partial<BuildRequest>, BuildFacts]> = [
    ['kvm-lvm', { storage: 'lvm:vg0', disk: '4G', swap: '512M' }, facts('kvm', VG)],
    ['xen-partitions-lvm', { hypervisor: 'xen', storage: 'lvm:vg0', disk: '4G', swap: '512M' }, facts('xen', VG)],
    ['xen-partitions-thin', { hypervisor: 'xen', storage: 'lvm:vg0/pool0', disk: '4G', swap: '512M' }, facts('xen', POOL)],
    ['kvm-thin', { storage: 'lvm:vg0/pool0', disk: '4G', swap: '512M' }, facts('kvm', POOL)],
    ['xen-partitions-file', { hypervisor: 'xen', disk: '4G', swap: '512M' }, facts('xen')],
    ['xen-pv-kernel-file', { hypervisor: 'xen', boot: 'kernel', disk: '4G', swap: '512M' }, facts('xen')],
    ['xen-hvm-file', { hypervisor: 'xen', xenMode: 'hvm', disk: '4G', swap: '512M' }, facts('xen')],
    ['kvm-uefi-kernel', { firmware: 'uefi', boot: 'kernel', disk: '4G', swap: '512M' }, facts('kvm')],
  ];
  it.each(cases)('%s', (name, req, f) => {
    matchGolden(import.meta.dirname, `plan-${name}.txt`, dryRun(spec(req), f));
  });

  it('destroy plans: lvremove argv in reverse creation order, image files for Xen partitions', () => {
    const out = {
      'kvm-lvm': planStorageDestroy(spec({ storage: 'lvm:vg0' }), '/d', '/dev/vg0/vmf-web1'),
      'xen-partitions-lvm': planStorageDestroy(spec({ hypervisor: 'xen', storage: 'lvm:vg0' }), '/d', '/dev/vg0/vmf-web1-root'),
      'xen-partitions-thin': planStorageDestroy(spec({ hypervisor: 'xen', storage: 'lvm:vg0/pool0' }), '/d', '/dev/vg0/vmf-web1-root'),
      'xen-partitions-file': planStorageDestroy(spec({ hypervisor: 'xen' }), '/d', '/d/web1.img'),
      'kvm-file': planStorageDestroy(spec({}), '/d', '/d/web1.img'),
    };
    matchGolden(import.meta.dirname, 'destroy-plans.json', `${JSON.stringify(out, null, 2)}\n`);
    expect(out['xen-partitions-lvm'].lvremove).toEqual([
      ['lvremove', '-y', 'vg0/vmf-web1-swap'],
      ['lvremove', '-y', 'vg0/vmf-web1-root'],
    ]);
  });
});

describe('checks before anything exists', () => {
  it('a disk larger than the VG is refused naming the VG and the sizes', () => {
    expect(() => planBuild(spec({ storage: 'lvm:vg0', disk: '8G' }), false, facts('kvm', { vgFreeBytes: 2 * GiB, extentBytes: 4 * MiB }))).toThrow(
      /volume group vg0 has 2\.0 GiB free; VM web1 needs 8\.0 GiB/,
    );
  });
  it('refuses combinations that cannot boot', () => {
    expect(() => spec({ hypervisor: 'xen', xenMode: 'hvm', xenDisk: 'partitions' })).toThrow(/needs a PV guest/);
    expect(() => spec({ firmware: 'uefi' })).toThrow(/--firmware uefi needs --boot kernel/);
    expect(() => spec({ hypervisor: 'xen', firmware: 'uefi', boot: 'kernel' })).toThrow(/KVM\/QEMU/);
    expect(() => spec({ xenMode: 'pv' })).toThrow(/need --hypervisor xen/);
    expect(() => spec({ storage: 'lvm:' })).toThrow(/volume group name is empty/);
  });
  it('plain builds keep their spec as before (no new fields)', () => {
    const s = spec({});
    expect(Object.keys(s)).not.toEqual(expect.arrayContaining(['hypervisor']));
    expect(s.storage).toBeUndefined();
    expect(s.firmware).toBeUndefined();
  });
});
