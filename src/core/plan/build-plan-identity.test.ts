import { describe, expect, it } from 'vitest';
import { sampleBuildFacts } from '../../../test/harness/manifest-fixture.js';
import { readDomainFacts } from '../domain-xml/facts.js';
import type { VmSpec } from '../model/spec.js';
import { GiB, MiB } from '../units.js';
import { describePlan, planBuild, seedPathFor, type BuildFacts } from './build-plan.js';
import { specFromRequest } from './build-request.js';
import { parseConfig } from '../../config/load.js';


const spec = {
  name: 'web1', bundle: 'debian-bookworm', cpus: 1, memoryMiB: 512, diskBytes: 4 * GiB, swapBytes: 512 * MiB, fs: 'ext4',
  net: { mode: 'dhcp' }, nic: { type: 'user' }, start: false, autostart: false, selinux: 'relabel', dnsForce: false, boot: 'grub',
} as unknown as VmSpec;
const facts = (over: Partial<BuildFacts> = {}): BuildFacts => sampleBuildFacts(over);

describe('planBuild: SSH host keys', () => {
  it('are made on the host by default, and said so in the dry run', () => {
    const p = planBuild(spec, false, facts());
    expect(p.hostKeys).toBe(true);
    expect(describePlan(p)).toMatch(/identity: empty machine-id, no persistent NIC rules, new SSH host keys made on the host/);
  });

  it('--no-host-keys leaves them to the guest', () => {
    const p = planBuild({ ...spec, hostKeys: false }, false, facts());
    expect(p.hostKeys).toBe(false);
    expect(describePlan(p)).toMatch(/the guest makes new ones at first boot/);
  });
});

describe('planBuild: --cloud-init', () => {
  it('adds the seed step before the domain is defined, and the seed as a read-only CD-ROM', () => {
    const p = planBuild({ ...spec, cloudInit: true }, false, facts());
    const seed = seedPathFor('/srv/disks', 'web1');
    expect(seed).toBe('/srv/disks/web1.cidata.iso');
    expect(p.cloudInit).toEqual({ seedPath: seed });
    const ids = p.steps.map((s) => s.id);
    expect(ids.indexOf('cloudinit.seed')).toBe(ids.indexOf('domain.define') - 1);
    expect(ids.indexOf('root.release')).toBeLessThan(ids.indexOf('cloudinit.seed'));
    expect(p.domainXml).toMatch(/<disk type='file' device='cdrom'>[\s\S]*<source file='\/srv\/disks\/web1\.cidata\.iso'\/>[\s\S]*<readonly\/>/);
    expect(readDomainFacts(p.domainXml).diskSources).toEqual(['/srv/disks/web1.img', seed]);
    expect(describePlan(p)).toContain(`cloud-init: NoCloud seed ${seed} (meta-data, user-data, network-config), CD-ROM sda`);
  });

  it('the warm path gets it too', () => {
    const p = planBuild({ ...spec, cloudInit: true }, false, facts({ clone: { strategy: 'qcow2', goldenKey: 'k' } }));
    const ids = p.steps.map((s) => s.id);
    expect(ids).toContain('guest.configure');
    expect(ids.indexOf('cloudinit.seed')).toBe(ids.indexOf('domain.define') - 1);
  });

  it('is absent unless asked for', () => {
    const p = planBuild(spec, false, facts());
    expect(p.cloudInit).toBeNull();
    expect(p.steps.map((s) => s.id)).not.toContain('cloudinit.seed');
    expect(p.domainXml).not.toContain('cdrom');
    expect(describePlan(p)).not.toContain('cloud-init');
  });
});

describe('specFromRequest: identity flags', () => {
  const config = parseConfig('', null);
  it('records only what differs from the default', () => {
    const plain = specFromRequest({ name: 'web1', bundle: 'b', net: 'none' }, config);
    expect(plain).not.toHaveProperty('hostKeys');
    expect(plain).not.toHaveProperty('cloudInit');
    const both = specFromRequest({ name: 'web1', bundle: 'b', net: 'none', hostKeys: false, cloudInit: true }, config);
    expect(both.hostKeys).toBe(false);
    expect(both.cloudInit).toBe(true);
  });
});
