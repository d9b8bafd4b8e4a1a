import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import { matchGolden as matchGoldenIn } from '../../../test/harness/golden.js';
import { buildDomainXml } from './build.js';
import { domainModelFor, type DomainInput } from './defaults.js';
import { readDomainFacts } from './facts.js';
import type { DomainModel } from './model.js';

const matchGolden = (file: string, actual: string) => matchGoldenIn(import.meta.dirname, file, actual);

const kvm: DomainInput = {
  name: 'kvm1',
  uuid: '0b7c1e52-3f0a-4d8e-9b6a-2c4d6e8f0a1b',
  hypervisor: 'kvm',
  cpus: 2,
  memoryMiB: 1024,
  diskPath: '/var/lib/vmforge/vms/kvm1.img',
  diskFormat: 'raw',
  nic: { type: 'bridge', bridge: 'br0' },
  mac: '52:54:00:0a:0b:0c',
  serialLogPath: '/var/lib/vmforge/console/kvm1.log',
};

const xen: DomainInput = {
  name: 'xen1',
  uuid: '5d2f8a14-6b3c-4e7d-8f9a-0b1c2d3e4f50',
  hypervisor: 'xen',
  cpus: 2,
  memoryMiB: 1024,
  diskPath: '/dev/vg0/vmf-xen1-root',
  diskFormat: 'raw',
  diskSourceType: 'block',
  diskLayout: { kind: 'partitions', swapPath: '/dev/vg0/vmf-xen1-swap' },
  nic: { type: 'bridge', bridge: 'xenbr0' },
  mac: '00:16:3e:1a:2b:3c',
  serialLogPath: '/var/lib/vmforge/console/xen1.log',
};

/** Each golden: the input and the disk sources the XML must name, in order. */
const cases: Record<string, [DomainInput, string[]]> = {
  'xen-pv-pygrub-partitions': [xen, ['/dev/vg0/vmf-xen1-root', '/dev/vg0/vmf-xen1-swap']],
  'xen-pv-direct-kernel': [
    {
      ...xen,
      name: 'xen2',
      uuid: '5d2f8a14-6b3c-4e7d-8f9a-0b1c2d3e4f51',
      diskPath: '/var/lib/vmforge/vms/xen2-root.img',
      diskSourceType: 'file',
      diskLayout: { kind: 'partitions', swapPath: '/var/lib/vmforge/vms/xen2-swap.img' },
      nic: { type: 'network', network: 'default' },
      mac: '00:16:3e:1a:2b:3d',
      boot: {
        kind: 'kernel',
        kernel: '/var/lib/vmforge/boot/xen2/vmlinuz',
        initrd: '/var/lib/vmforge/boot/xen2/initrd.img',
        cmdline: 'root=/dev/xvda1 ro console=hvc0',
      },
    },
    ['/var/lib/vmforge/vms/xen2-root.img', '/var/lib/vmforge/vms/xen2-swap.img'],
  ],
  'xen-hvm-whole-disk': [
    {
      ...xen,
      name: 'xen3',
      uuid: '5d2f8a14-6b3c-4e7d-8f9a-0b1c2d3e4f52',
      diskPath: '/dev/vg0/vmf-xen3',
      diskLayout: { kind: 'whole-disk' },
      mac: '00:16:3e:1a:2b:3e',
      boot: { kind: 'hvmloader' },
    },
    ['/dev/vg0/vmf-xen3'],
  ],
  'kvm-direct-kernel': [
    {
      ...kvm,
      boot: {
        kind: 'kernel',
        kernel: '/var/lib/vmforge/boot/kvm1/vmlinuz',
        initrd: '/var/lib/vmforge/boot/kvm1/initrd.img',
        cmdline: 'root=/dev/vda1 ro console=ttyS0,115200n8',
      },
    },
    ['/var/lib/vmforge/vms/kvm1.img'],
  ],
  'kvm-uefi': [
    {
      ...kvm,
      name: 'kvm2',
      uuid: '0b7c1e52-3f0a-4d8e-9b6a-2c4d6e8f0a1c',
      diskPath: '/dev/vg0/vmf-kvm2',
      diskSourceType: 'block',
      mac: '52:54:00:0a:0b:0d',
      serialLogPath: '/var/lib/vmforge/console/kvm2.log',
      machine: 'q35',
      boot: { kind: 'uefi', nvramPath: '/var/lib/vmforge/nvram/kvm2_VARS.fd' },
    },
    ['/dev/vg0/vmf-kvm2'],
  ],
};

describe('boot modes and Xen: goldens', () => {
  for (const [name, [input, sources]] of Object.entries(cases)) {
    it(name, () => {
      const xml = buildDomainXml(domainModelFor(input));
      matchGolden(`${name}.xml`, xml);
      const facts = readDomainFacts(xml);
      expect(facts.name).toBe(input.name);
      expect(facts.diskSources).toEqual(sources);
      expect(facts.macs).toEqual([input.mac]);
    });
  }
});

describe('domainModelFor under Xen', () => {
  it('makes a PV guest with pygrub by default, with the PV console and no emulated devices', () => {
    const m = domainModelFor(xen);
    expect(m.os).toEqual({ type: 'linux', arch: 'x86_64', machine: 'xenpv', boot: { kind: 'pygrub', bootloader: '/usr/lib/xen-4.17/bin/pygrub' } });
    expect(m.features).toEqual({ acpi: false, apic: false });
    expect(m.serial).toBeNull();
    expect(m.xenConsole).toBe(true);
    expect(m.rng).toBeNull();
    expect(m.cpu).toBeNull();
    expect(m.disks.map((d) => [d.target, d.bus, d.driver, d.sourceType])).toEqual([
      ['xvda1', 'xen', 'phy', 'block'],
      ['xvda2', 'xen', 'phy', 'block'],
    ]);
    expect(m.interfaces).toEqual([{ kind: 'bridge', source: 'xenbr0', mac: '00:16:3e:1a:2b:3c', script: 'vif-bridge' }]);
  });

  it('takes another pygrub path and arguments', () => {
    const xml = buildDomainXml(domainModelFor({ ...xen, boot: { kind: 'pygrub', bootloader: '/usr/bin/pygrub', args: '--entry=1' } }));
    expect(xml).toContain('<bootloader>/usr/bin/pygrub</bootloader>\n  <bootloader_args>--entry=1</bootloader_args>\n  <os>');
  });

  it('leaves swap out when the partition layout has none', () => {
    const m = domainModelFor({ ...xen, diskLayout: { kind: 'partitions' } });
    expect(m.disks.map((d) => d.target)).toEqual(['xvda1']);
  });

  it('uses the qdisk backend for image files and a qcow2 image', () => {
    const m = domainModelFor({ ...xen, diskSourceType: undefined, diskFormat: 'qcow2', diskLayout: undefined, diskPath: '/srv/x.qcow2' });
    expect(m.disks).toEqual([{ sourceFile: '/srv/x.qcow2', format: 'qcow2', target: 'xvda', bus: 'xen', discard: 'unmap' }]);
  });

  const refusals: Array<[string, Partial<DomainInput>, RegExp]> = [
    ['a MAC outside 00:16:3e', { mac: '52:54:00:01:02:03' }, /00:16:3e/],
    ['user networking', { nic: { type: 'user' } }, /'user' networking/],
    ['a serial socket', { serialSocketPath: '/run/x.sock' }, /UNIX socket/],
    ['HVM with the partition layout', { boot: { kind: 'hvmloader' } }, /partition table/],
    ['BIOS disk boot', { boot: { kind: 'disk' } }, /KVM\/QEMU/],
    ['UEFI boot', { boot: { kind: 'uefi', nvramPath: '/x' } }, /KVM\/QEMU/],
  ];
  for (const [what, change, re] of refusals) {
    it(`refuses ${what}`, () => {
      expect(() => buildDomainXml(domainModelFor({ ...xen, ...change }))).toThrow(re);
    });
  }
});

describe('domainModelFor under KVM', () => {
  it('defaults UEFI to OVMF with a per-VM variable store from the template', () => {
    expect(domainModelFor({ ...kvm, boot: { kind: 'uefi', nvramPath: '/n/VARS.fd' } }).os.boot).toEqual({
      kind: 'uefi',
      loader: '/usr/share/OVMF/OVMF_CODE.fd',
      nvram: '/n/VARS.fd',
      nvramTemplate: '/usr/share/OVMF/OVMF_VARS.fd',
    });
  });

  it('refuses Xen boots, the Xen partition layout, and kernelBoot together with boot', () => {
    expect(() => domainModelFor({ ...kvm, boot: { kind: 'pygrub' } })).toThrow(/Xen/);
    expect(() => domainModelFor({ ...kvm, boot: { kind: 'hvmloader' } })).toThrow(/Xen/);
    expect(() => domainModelFor({ ...kvm, diskLayout: { kind: 'partitions' } })).toThrow(/Xen PV layout/);
    expect(() => domainModelFor({ ...kvm, kernelBoot: { kernel: '/k' }, boot: { kind: 'disk' } })).toThrow(/not both/);
  });

  it('writes a block device as <disk type=block> with <source dev>', () => {
    const xml = buildDomainXml(domainModelFor({ ...kvm, diskPath: '/dev/vg0/lv', diskSourceType: 'block' }));
    expect(xml).toContain("<disk type='block' device='disk'>\n      <driver name='qemu' type='raw' discard='unmap'/>\n      <source dev='/dev/vg0/lv'/>");
  });
});

describe('validation of boot and bus combinations', () => {
  const cases: Array<[string, DomainInput, (m: DomainModel) => void, RegExp]> = [
    ['PV os type under KVM', kvm, (m) => (m.os.type = 'linux'), /needs a Xen domain/],
    ['pygrub under KVM', kvm, (m) => (m.os.boot = { kind: 'pygrub', bootloader: '/p' }), /pygrub/],
    ['hvmloader for a PV guest', xen, (m) => (m.os.boot = { kind: 'hvmloader', loader: '/h' }), /hvmloader/],
    ['relative pygrub path', xen, (m) => (m.os.boot = { kind: 'pygrub', bootloader: 'pygrub' }), /absolute/],
    ['relative UEFI nvram', kvm, (m) => (m.os.boot = { kind: 'uefi', loader: '/c.fd', nvram: 'v.fd' }), /nvram must be an absolute/],
    ['UEFI under Xen', xen, (m) => (m.os.boot = { kind: 'uefi', loader: '/c.fd', nvram: '/v.fd' }), /QEMU only/],
    ['virtio disk under Xen', xen, (m) => (m.disks[0]!.bus = 'virtio'), /not a Xen disk bus/],
    ['xen bus under KVM', kvm, (m) => (m.disks[0]!.bus = 'xen'), /needs a Xen domain/],
    ['vda on the xen bus', xen, (m) => (m.disks[0]!.target = 'vda'), /does not match bus/],
    ['a partition target under KVM', kvm, (m) => (m.disks[0]!.target = 'xvda1'), /does not match bus/],
    ['phy with an image file', xen, (m) => (m.disks[0]!.sourceType = 'file'), /'phy' takes a raw block device/],
    ['phy with qcow2', xen, (m) => (m.disks[0]!.format = 'qcow2'), /'phy' takes a raw block device/],
    ['user NIC under Xen', xen, (m) => (m.interfaces[0] = { kind: 'user', mac: '00:16:3e:00:00:02' }), /'user' networking/],
    ['a script with spaces', xen, (m) => (m.interfaces[0] = { kind: 'bridge', source: 'b', mac: '00:16:3e:00:00:02', script: 'vif bridge' }), /script/],
    ['a serial log under Xen', xen, (m) => (m.serial = { logFile: '/l', logAppend: false }), /plain pty/],
    ['the Xen console under KVM', kvm, (m) => (m.xenConsole = true), /console/],
    ['a virtio balloon under Xen', xen, (m) => (m.memballoon = { model: 'virtio' }), /memballoon/],
    ['virtio-rng under Xen', xen, (m) => (m.rng = { model: 'virtio', backend: '/dev/urandom' }), /rng/],
  ];
  for (const [what, input, mutate, re] of cases) {
    it(`rejects ${what}`, () => {
      const m = domainModelFor(input);
      mutate(m);
      let err: unknown;
      try {
        buildDomainXml(m);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VmforgeError);
      expect((err as VmforgeError).code).toBe('INVALID_INPUT');
      expect((err as VmforgeError).message).toMatch(re);
    });
  }
});
