/**
 * Xen (PV pygrub, PV direct kernel, HVM) and the KVM direct-kernel / UEFI domain XML against real libvirt:
 * libvirt's own schema (virt-xml-validate), then define, start, inspect, destroy and undefine on the test
 * driver. No Xen host is needed: test:///default accepts domain type 'xen' and parses the XML with libvirt's
 * common domain parser, which is where an unknown element, a bad target or a bad combination is refused.
 *
 * test:///default is a fresh in-memory hypervisor per connection, and every virsh process is a new
 * connection, so each domain's whole lifecycle runs as ONE virsh process with ';'-separated commands. virsh
 * carries on after a failed command and exits with the last command's status, so every step is checked by
 * its own section of the output (split on `echo` markers) and stderr must stay empty.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDomainXml, domainModelFor, readDomainFacts, type DomainInput } from '../../src/core/domain-xml/index.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { requireRoot } from '../harness/env.js';

requireRoot();

const GOLDEN_DIR = join(import.meta.dirname, '../../src/core/domain-xml/__golden__');
const GOLDENS = ['xen-pv-pygrub-partitions', 'xen-pv-direct-kernel', 'xen-hvm-whole-disk', 'kvm-direct-kernel', 'kvm-uefi'];

const runner = new HostProcessRunner();
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmforge-domxml-xen-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Quote one argument for virsh's own command parser. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface Lifecycle {
  sections: Record<string, string>;
  stderr: string;
}

async function lifecycle(file: string, name: string): Promise<Lifecycle> {
  const steps: Array<[string, string]> = [
    ['define', `define ${q(file)}`],
    ['state0', `domstate ${q(name)}`],
    ['start', `start ${q(name)}`],
    ['dominfo', `dominfo ${q(name)}`],
    ['dumpxml', `dumpxml ${q(name)}`],
    ['destroy', `destroy ${q(name)}`],
    ['state1', `domstate ${q(name)}`],
    ['undefine', `undefine ${q(name)}`],
    ['list', 'list --all --name'],
  ];
  const script = steps.map(([id, cmd]) => `echo @@${id}; ${cmd}`).join('; ');
  const res = await runner.run(['virsh', '-c', 'test:///default', script]);
  const sections: Record<string, string> = {};
  for (const part of res.stdout.split('@@').slice(1)) {
    const nl = part.indexOf('\n');
    sections[part.slice(0, nl)] = part.slice(nl + 1).trim();
  }
  return { sections, stderr: res.stderr };
}

function field(dominfo: string, key: string): string | undefined {
  return new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(dominfo)?.[1]?.trim();
}

async function checkDomain(file: string, expected: { domainType: string; osType: string }): Promise<string> {
  const xml = await readFile(file, 'utf8');
  const facts = readDomainFacts(xml);

  const v = await runner.run(['virt-xml-validate', file, 'domain']);
  expect(v.stdout + v.stderr).toMatch(/validates/);

  const { sections: s, stderr } = await lifecycle(file, facts.name);
  expect(stderr).toBe('');
  expect(s.define).toMatch(new RegExp(`^Domain '${facts.name}' defined from `));
  expect(s.state0).toBe('shut off');
  expect(s.start).toBe(`Domain '${facts.name}' started`);
  expect(field(s.dominfo!, 'Name')).toBe(facts.name);
  expect(field(s.dominfo!, 'UUID')).toBe(facts.uuid);
  // The test driver's dominfo always says 'linux' (a constant in its GetOSType), so the OS type is read from the XML.
  expect(field(s.dominfo!, 'State')).toBe('running');
  const live = s.dumpxml!;
  expect(live).toMatch(new RegExp(`^<domain type='${expected.domainType}' id='\\d+'>`));
  expect(live).toMatch(new RegExp(`<type arch='x86_64' machine='[a-z0-9.-]+'>${expected.osType}</type>`));
  expect(readDomainFacts(live)).toEqual(facts);
  expect(s.destroy).toBe(`Domain '${facts.name}' destroyed`);
  expect(s.state1).toBe('shut off');
  expect(s.undefine).toBe(`Domain '${facts.name}' has been undefined`);
  expect(s.list!.split('\n')).not.toContain(facts.name);
  return live;
}

describe('golden domain XML on libvirt (schema + test driver)', () => {
  const expectations: Record<string, { domainType: string; osType: string }> = {
    'xen-pv-pygrub-partitions': { domainType: 'xen', osType: 'linux' },
    'xen-pv-direct-kernel': { domainType: 'xen', osType: 'linux' },
    'xen-hvm-whole-disk': { domainType: 'xen', osType: 'hvm' },
    'kvm-direct-kernel': { domainType: 'kvm', osType: 'hvm' },
    'kvm-uefi': { domainType: 'kvm', osType: 'hvm' },
  };
  for (const name of GOLDENS) {
    it(name, async () => {
      const live = await checkDomain(join(GOLDEN_DIR, `${name}.xml`), expectations[name]!);
      switch (name) {
        case 'xen-pv-pygrub-partitions':
          expect(live).toContain('<bootloader>/usr/lib/xen-4.17/bin/pygrub</bootloader>');
          expect(live).toContain("<target dev='xvda1' bus='xen'/>");
          expect(live).toContain("<target dev='xvda2' bus='xen'/>");
          expect(live).toContain("<script path='vif-bridge'/>");
          expect(live).toContain("<target type='xen' port='0'/>");
          break;
        case 'xen-pv-direct-kernel':
          expect(live).toContain('<cmdline>root=/dev/xvda1 ro console=hvc0</cmdline>');
          break;
        case 'xen-hvm-whole-disk':
          expect(live).toContain("<loader type='rom'>/usr/lib/xen-4.17/boot/hvmloader</loader>");
          expect(live).toContain("<target dev='xvda' bus='xen'/>");
          break;
        case 'kvm-uefi':
          expect(live).toContain("<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>");
          expect(live).toContain("<nvram template='/usr/share/OVMF/OVMF_VARS.fd'>/var/lib/vmforge/nvram/kvm2_VARS.fd</nvram>");
          break;
      }
    });
  }
});

describe('more generated Xen and UEFI domains on libvirt', () => {
  const xen: DomainInput = {
    name: 'xen-gen',
    uuid: '9e3d2c1b-0a4f-4e5d-8c7b-6a5f4e3d2c1b',
    hypervisor: 'xen',
    cpus: 1,
    memoryMiB: 256,
    diskPath: "/srv/it's here/root.img",
    diskFormat: 'raw',
    nic: { type: 'none' },
    serialLogPath: '/unused',
  };
  const variants: Array<[string, DomainInput, { domainType: string; osType: string }]> = [
    ['Xen PV, image files, no NIC, no swap', { ...xen, diskLayout: { kind: 'partitions' } }, { domainType: 'xen', osType: 'linux' }],
    [
      'Xen PV whole qcow2 disk on a libvirt network, custom pygrub',
      {
        ...xen,
        name: 'xen-gen-2',
        diskFormat: 'qcow2',
        nic: { type: 'network', network: 'default' },
        mac: '00:16:3e:00:00:01',
        boot: { kind: 'pygrub', bootloader: '/usr/bin/pygrub', args: '--entry=0' },
      },
      { domainType: 'xen', osType: 'linux' },
    ],
    [
      'Xen HVM with a custom hvmloader, block device',
      { ...xen, name: 'xen-gen-3', diskPath: '/dev/vg0/lv3', diskSourceType: 'block', boot: { kind: 'hvmloader', loader: '/usr/lib/xen/boot/hvmloader' } },
      { domainType: 'xen', osType: 'hvm' },
    ],
    [
      'QEMU (TCG) UEFI on machine pc',
      {
        ...xen,
        name: 'qemu-uefi',
        hypervisor: 'qemu',
        serialLogPath: '/var/log/x.log',
        nic: { type: 'user' },
        mac: '52:54:00:00:00:09',
        boot: { kind: 'uefi', nvramPath: '/var/lib/vmforge/nvram/q.fd', loader: '/usr/share/OVMF/OVMF_CODE_4M.fd', nvramTemplate: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
      },
      { domainType: 'qemu', osType: 'hvm' },
    ],
  ];
  for (const [what, input, expected] of variants) {
    it(what, async () => {
      const file = join(work, `${input.name}.xml`);
      await writeFile(file, buildDomainXml(domainModelFor(input)));
      await checkDomain(file, expected);
    });
  }
});

describe('the checks above can fail', () => {
  it('libvirt refuses a Xen domain with a duplicated partition target, and the schema an unknown balloon', async () => {
    const golden = await readFile(join(GOLDEN_DIR, 'xen-pv-pygrub-partitions.xml'), 'utf8');
    const dup = join(work, 'dup-target.xml');
    await writeFile(dup, golden.replace("<target dev='xvda2' bus='xen'/>", "<target dev='xvda1' bus='xen'/>"));
    const d = await runner.run(['virsh', '-c', 'test:///default', `define ${q(dup)}`], { okCodes: [1] });
    expect(d.exitCode).toBe(1);
    expect(d.stderr).toMatch(/target 'xvda1' duplicated/);

    const balloon = join(work, 'bad-balloon.xml');
    await writeFile(balloon, golden.replace("<memballoon model='xen'/>", "<memballoon model='bogus'/>"));
    const v = await runner.run(['virt-xml-validate', balloon, 'domain'], { okCodes: [1, 3] });
    expect(v.stdout + v.stderr).toMatch(/fails to validate/);
  });
});
