import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import { buildDomainXml } from './build.js';
import { domainModelFor, type DomainInput } from './defaults.js';
import { readDomainFacts } from './facts.js';
import type { DomainModel } from './model.js';
import { matchGolden as matchGoldenIn } from '../../../test/harness/golden.js';


const matchGolden = (file: string, actual: string) => matchGoldenIn(import.meta.dirname, file, actual);

const pathsFor = (name: string) => ({
  diskPath: `/var/lib/vmforge/vms/${name}/disk.qcow2`,
  serialSocketPath: `/run/vmforge/${name}/serial.sock`,
  serialLogPath: `/var/lib/vmforge/vms/${name}/serial.log`,
});

const base: DomainInput = {
  name: 'web1',
  uuid: '6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f',
  hypervisor: 'kvm',
  cpus: 2,
  memoryMiB: 2048,
  diskFormat: 'qcow2',
  nic: { type: 'bridge', bridge: 'br0' },
  mac: '52:54:00:12:34:56',
  ...pathsFor('web1'),
};

const cases: Record<string, DomainInput> = {
  'kvm-bridge': base,
  'qemu-user-nic': {
    ...base,
    name: 'tcg1',
    ...pathsFor('tcg1'),
    uuid: '11111111-2222-4333-8444-555555555555',
    hypervisor: 'qemu',
    cpus: 1,
    memoryMiB: 512,
    nic: { type: 'user' },
    mac: '52:54:00:AB:CD:EF',
    serialSocketPath: undefined, // a pty console, as vm build makes
  },
  'direct-kernel': {
    ...base,
    name: 'dk1',
    ...pathsFor('dk1'),
    uuid: 'a0a0a0a0-b1b1-4c2c-8d3d-e4e4e4e4e4e4',
    hypervisor: 'qemu',
    nic: { type: 'network', network: 'default' },
    diskPath: '/var/lib/vmforge/vms/dk1/disk.raw',
    diskFormat: 'raw',
    diskCache: 'unsafe',
    kernelBoot: {
      kernel: '/var/lib/vmforge/vms/dk1/vmlinuz',
      initrd: '/var/lib/vmforge/vms/dk1/initrd.img',
      cmdline: 'root=/dev/vda1 ro console=ttyS0,115200n8 quiet',
    },
  },
  'no-nic': {
    ...base,
    name: 'isolated',
    ...pathsFor('isolated'),
    uuid: 'ffffffff-0000-4000-8000-000000000001',
    nic: { type: 'none' },
    mac: undefined,
    discard: false,
  },
};

describe('buildDomainXml goldens', () => {
  for (const [name, input] of Object.entries(cases)) {
    it(name, () => {
      const xml = buildDomainXml(domainModelFor(input));
      matchGolden(`${name}.xml`, xml);
      const facts = readDomainFacts(xml);
      expect(facts.name).toBe(input.name);
      expect(facts.uuid).toBe(input.uuid);
      expect(facts.diskSources).toEqual([input.diskPath]);
      expect(facts.macs).toEqual(input.nic.type === 'none' ? [] : [input.mac?.toLowerCase()]);
    });
  }
});

describe('cloud-init seed CD-ROM', () => {
  const seed = '/var/lib/vmforge/vms/web1/seed.iso';

  it('is a read-only SATA CD-ROM after the disk (golden)', () => {
    const xml = buildDomainXml(domainModelFor({ ...base, cdromPath: seed }));
    matchGolden('kvm-cloud-init-seed.xml', xml);
    expect(xml).toContain(
      `    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n      <source file='${seed}'/>\n` +
        "      <target dev='sda' bus='sata'/>\n      <readonly/>\n    </disk>\n",
    );
    // Cleanup after a failed build finds the seed with the disk.
    expect(readDomainFacts(xml).diskSources).toEqual([base.diskPath, seed]);
  });

  it('is refused under Xen and when it is not a read-only raw file on SATA/SCSI', () => {
    expect(() => domainModelFor({ ...base, hypervisor: 'xen', mac: '00:16:3e:12:34:56', cdromPath: seed })).toThrow(VmforgeError);
    const model = () => domainModelFor({ ...base, cdromPath: seed });
    const bad: Array<(m: DomainModel) => void> = [
      (m) => (m.disks[1]!.bus = 'virtio'),
      (m) => (m.disks[1]!.readonly = false),
      (m) => (m.disks[1]!.format = 'qcow2'),
      (m) => (m.disks[1]!.target = 'vdb'),
      (m) => (m.disks[1]!.target = 'vda'),
    ];
    for (const mutate of bad) {
      const m = model();
      mutate(m);
      expect(() => buildDomainXml(m)).toThrow(VmforgeError);
    }
  });
});

describe('domainModelFor', () => {
  it('passes the host CPU through under KVM only', () => {
    expect(domainModelFor(base).cpu).toEqual({ mode: 'host-passthrough' });
    expect(domainModelFor({ ...base, hypervisor: 'qemu' }).cpu).toBeNull();
    expect(domainModelFor({ ...base, hypervisor: 'qemu', cpu: { mode: 'maximum' } }).cpu).toEqual({ mode: 'maximum' });
  });

  it('needs a MAC for a NIC', () => {
    expect(() => domainModelFor({ ...base, mac: undefined })).toThrow(VmforgeError);
  });
});

describe('escaping', () => {
  const odd = "we<b>&'\"x";
  const model = (): DomainModel =>
    domainModelFor({
      ...base,
      name: odd,
      description: 'line1\nline2 & <tag>',
      diskPath: `/srv/a b/${odd}.qcow2`,
      serialSocketPath: '/run/x/s"ock',
      serialLogPath: "/run/x/l'og",
      kernelBoot: { kernel: '/k', cmdline: `init=/bin/sh x="a b" y='c' z=<&>\ttab` },
    });

  it('escapes text and attributes so values read back unchanged', () => {
    const xml = buildDomainXml(model());
    expect(xml).toContain('<name>we&lt;b&gt;&amp;\'"x</name>');
    expect(xml).toContain("<source file='/srv/a b/we&lt;b&gt;&amp;&apos;&quot;x.qcow2'/>");
    expect(xml).toContain("path='/run/x/s&quot;ock'");
    expect(xml).toContain("file='/run/x/l&apos;og'");
    expect(xml).toContain('<cmdline>init=/bin/sh x="a b" y=\'c\' z=&lt;&amp;&gt;\ttab</cmdline>');
    const facts = readDomainFacts(xml);
    expect(facts.name).toBe(odd);
    expect(facts.diskSources).toEqual([`/srv/a b/${odd}.qcow2`]);
  });

  it('rejects control characters XML cannot carry', () => {
    const m = model();
    m.os.boot = { kind: 'kernel', kernel: '/k', cmdline: 'a\u0001b' };
    expect(() => buildDomainXml(m)).toThrow(/control character/);
  });
});

describe('validation', () => {
  const cases: Array<[string, (m: DomainModel) => void, RegExp]> = [
    ['slash in name', (m) => (m.name = 'a/b'), /contains '\/'/],
    ['empty name', (m) => (m.name = ''), /name/],
    ['bad uuid', (m) => (m.uuid = 'nope'), /uuid/],
    ['zero vcpus', (m) => (m.vcpus = 0), /vcpus/],
    ['fractional memory', (m) => (m.memoryMiB = 1.5), /memoryMiB/],
    ['relative disk', (m) => (m.disks[0]!.sourceFile = 'disk.qcow2'), /absolute/],
    ['multicast mac', (m) => (m.interfaces[0]!.mac = '01:00:5e:00:00:01'), /multicast/],
    ['malformed mac', (m) => (m.interfaces[0]!.mac = '52:54:00:12:34'), /MAC/],
    ['duplicate disk target', (m) => m.disks.push({ ...m.disks[0]! }), /used twice/],
    ['io native without O_DIRECT cache', (m) => (m.disks[0]!.io = 'native'), /native/],
    ['long socket path', (m) => (m.serial!.socketPath = '/' + 'x'.repeat(120)), /UNIX socket/],
    ['bad machine', (m) => (m.os.machine = 'pc q35'), /machine/],
  ];
  for (const [what, mutate, re] of cases) {
    it(`rejects ${what}`, () => {
      const m = domainModelFor(base);
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
