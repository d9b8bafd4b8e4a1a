/**
 * Wrong combinations refused by the pure checks (so before any disk work, in a dry run as in a build): the libvirt
 * URI against the hypervisor and this host, --ip without a NIC, unknown time zones, a guest family that does not
 * fit the bundle; and the plan text saying only what the build will do.
 */
import { describe, expect, it } from 'vitest';
import { sampleManifest } from '../../../test/harness/manifest-fixture.js';
import type { Config } from '../../config/schema.js';
import { VmforgeError } from '../../errors.js';
import type { VmSpec } from '../model/spec.js';
import { describePlan, planBuild, type BuildFacts } from './build-plan.js';
import { specFromRequest, type BuildRequest } from './build-request.js';

const configFor = (uri: string) =>
  ({
    libvirt: { uri, domainType: 'auto', hypervisor: 'kvm' },
    storage: { type: 'file', backend: 'file', dir: '/var/lib/vmforge/disks', partitionAccess: 'loop-offset', clone: 'off' },
    defaults: { cpus: 1, memory: '1G', disk: '4G', swap: '512M', fs: 'ext4', net: 'none', firmware: 'bios' },
    network: {},
  }) as unknown as Config;

const request = (req: Partial<BuildRequest>, uri = 'qemu:///system') => specFromRequest({ name: 'web1', bundle: 'debian-bookworm', ...req }, configFor(uri));

function refusal(fn: () => unknown): VmforgeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof VmforgeError) return e;
    throw e;
  }
  throw new Error('not refused');
}

describe('the libvirt URI', () => {
  it('--hypervisor xen on a KVM/QEMU connection is refused, naming the URI', () => {
    for (const uri of ['qemu:///system', 'qemu+unix:///system?socket=/run/libvirt/libvirt-sock']) {
      const e = refusal(() => request({ hypervisor: 'xen' }, uri));
      expect(e.code).toBe('INVALID_INPUT');
      expect(e.message).toContain(`'${uri}'`);
      expect(e.message).toMatch(/--hypervisor xen needs a Xen libvirt connection/);
      expect(e.hint).toMatch(/--connect xen:\/\/\/system/);
    }
  });

  it('--hypervisor xen on a Xen (or the test driver) connection is accepted', () => {
    expect(request({ hypervisor: 'xen' }, 'xen:///system').hypervisor).toBe('xen');
    expect(request({ hypervisor: 'xen' }, 'test+unix:///default').hypervisor).toBe('xen');
  });

  it('a remote URI is refused: a host part or a remote transport', () => {
    for (const [uri, why] of [
      ['qemu+ssh://otherhost/system', /names the host 'otherhost'/],
      ['qemu://root@10.0.0.2:16509/system', /names the host '10\.0\.0\.2'/],
      ['qemu+tls://h.example/system', /names the host 'h\.example'/],
      ['qemu+ssh:///system', /uses the remote transport '\+ssh'/],
      ['xen+tcp:///system', /uses the remote transport '\+tcp'/],
    ] as const) {
      const e = refusal(() => request({}, uri));
      expect(e.code, uri).toBe('INVALID_INPUT');
      expect(e.message, uri).toMatch(why);
      expect(e.hint, uri).toMatch(/disks are made on this host/);
    }
  });

  it('local URIs are accepted', () => {
    for (const uri of ['qemu:///system', 'qemu:///session', 'qemu+unix:///system?socket=/x/sock', 'test:///default']) expect(request({}, uri).name).toBe('web1');
  });
});

describe('--ip needs a NIC', () => {
  it('--ip with --net none is refused', () => {
    const e = refusal(() => request({ ip: '10.0.0.5/24', net: 'none' }));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toBe('--ip 10.0.0.5/24 needs a NIC, but --net none gives the VM none');
    expect(e.hint).toMatch(/--bridge NAME/);
  });

  it('--ip with a bridge is fine', () => {
    expect(request({ ip: '10.0.0.5/24', bridge: 'br0' }).net).toMatchObject({ mode: 'static', address: '10.0.0.5' });
  });
});

describe('--timezone', () => {
  it('a zone that does not exist is refused from the request alone', () => {
    const e = refusal(() => request({ timezone: 'Europe/Nowhere' }));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toBe("time zone 'Europe/Nowhere' is not a known zone");
    expect(e.hint).toMatch(/timedatectl list-timezones/);
  });

  it('a zone in the wrong case is refused with the right spelling', () => {
    expect(refusal(() => request({ timezone: 'europe/berlin' })).hint).toBe("use 'Europe/Berlin'");
  });

  it('real zones, aliases and the posix/ tree pass', () => {
    for (const tz of ['Europe/Berlin', 'UTC', 'Etc/GMT+5', 'US/Eastern', 'posix/Europe/Berlin', 'America/Argentina/Buenos_Aires']) expect(request({ timezone: tz }).timezone).toBe(tz);
  });
});

const facts = (over: Partial<BuildFacts> = {}): BuildFacts => ({
  domainType: 'qemu',
  bundleRef: 'debian-bookworm:1',
  manifest: sampleManifest(),
  storageDir: '/var/lib/vmforge/disks',
  consoleDir: '/var/lib/vmforge/console',
  runDir: '/run/vmforge',
  partitionAccess: 'loop-offset',
  nic: { type: 'none' },
  ids: {
    uuid: '11111111-1111-4111-8111-111111111111',
    mac: '52:54:00:12:34:56',
    diskSignature: 0x12345678,
    rootFsUuid: '22222222-2222-4222-8222-222222222222',
    swapFsUuid: '33333333-3333-4333-8333-333333333333',
  },
  ...over,
});
const plan = (req: Partial<BuildRequest>, f: BuildFacts = facts(), uri = 'qemu:///system') => {
  const { nicRequest: _n, ...s } = request(req, uri);
  return planBuild({ ...s, nic: { type: 'none' } } as VmSpec, false, f);
};

describe('--guest-family against the bundle', () => {
  it('a family of another OS family than the bundle is refused, naming what fits', () => {
    const e = refusal(() => plan({ guestFamily: 'rhel9' }));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/^--guest-family rhel9 does not fit the bundle's OS \(.*, debian family\)$/);
    expect(e.hint).toBe('drop --guest-family to use the detected one, or give one for this OS: debian, ubuntu, systemd-networkd');
  });

  it('families that fit, and any family for an OS of unknown family', () => {
    for (const g of ['debian', 'ubuntu', 'systemd-networkd']) expect(plan({ guestFamily: g }).guestFamily).toBe(g);
    const other = facts({ manifest: sampleManifest({ os: { id: 'gentoo', versionId: '2', prettyName: 'Gentoo', family: 'other' } }) });
    expect(plan({ guestFamily: 'rhel9' }, other).guestFamily).toBe('rhel9');
  });
});

describe('the plan text', () => {
  it('a Debian guest is not said to be relabelled for SELinux unconditionally', () => {
    const text = describePlan(plan({}));
    expect(text).toMatch(/^ {2}guest: {4}adapted as debian, SELinux relabel only if the guest has a policy \(\/etc\/selinux\/config\)$/m);
  });

  it('a RHEL guest is', () => {
    const rhel = facts({ manifest: sampleManifest({ os: { id: 'rocky', versionId: '9.4', prettyName: 'Rocky Linux 9.4', family: 'rhel' } }) });
    expect(describePlan(plan({}, rhel))).toMatch(/^ {2}guest: {4}adapted as rhel9, SELinux relabel$/m);
  });

  it('a Xen guest shows no console log path; a KVM guest does', () => {
    const xen = describePlan(plan({ hypervisor: 'xen' }, facts({ domainType: 'xen', ids: { ...facts().ids, mac: '00:16:3e:12:34:56' } }), 'xen:///system'));
    expect(xen).toMatch(/^ {2}console: {2}virsh console web1 \(no log file under Xen\)$/m);
    expect(xen).not.toContain('/var/lib/vmforge/console/web1.log');
    expect(describePlan(plan({}))).toMatch(/^ {2}console: {2}\/var\/lib\/vmforge\/console\/web1\.log$/m);
  });
});
