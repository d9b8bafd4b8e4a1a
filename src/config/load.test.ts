import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../errors.js';
import { parseConfig } from './load.js';

describe('config', () => {
  it('works with no file at all', () => {
    const c = parseConfig(null, null);
    expect(c.stateDir).toBe('/var/lib/vmforge');
    expect(c.libvirt.uri).toBe('qemu:///system');
    expect(c.storage.dir).toBe('/var/lib/vmforge/disks');
    expect(c.bundles.dir).toBe('/var/lib/vmforge/bundles');
    expect(c.dbPath).toBe('/var/lib/vmforge/vmforge.db');
    expect(c.defaults.fs).toBe('ext4');
  });

  it('derives paths from stateDir', () => {
    const c = parseConfig('stateDir: /srv/vmf\nstorage: { dir: /data/disks }\n', '/x.yaml');
    expect(c.storage.dir).toBe('/data/disks');
    expect(c.bundles.dir).toBe('/srv/vmf/bundles');
  });

  const invalid = (text: string) => {
    try {
      parseConfig(text, '/etc/vmforge/config.yaml');
    } catch (e) {
      expect(e).toBeInstanceOf(VmforgeError);
      expect((e as VmforgeError).code).toBe('INVALID_CONFIG');
      return (e as Error).message;
    }
    throw new Error('expected rejection');
  };

  it('names the field path and what is expected', () => {
    expect(invalid('defaults: { cpus: "two" }')).toContain('defaults.cpus: expected number, got string');
    expect(invalid('defaults: { fs: btrfs }')).toContain("defaults.fs: expected one of 'ext4', 'xfs', got 'btrfs'");
    expect(invalid('stateDir: relative/dir')).toContain('stateDir: expected an absolute path');
    expect(invalid('libvirt: { url: x }')).toContain("libvirt: unknown field(s) 'url'");
    expect(invalid('defaults: { disk: lots }')).toContain('defaults.disk: expected a size like 512M or 4G');
  });

  it('takes bundles.directIo off or on, off by default, and nothing else', () => {
    expect(parseConfig(null, null).bundles.directIo).toBe('off');
    expect(parseConfig('bundles: { directIo: on }\n', '/x.yaml').bundles.directIo).toBe('on');
    expect(parseConfig('bundles:\n  directIo: off\n', '/x.yaml').bundles.directIo).toBe('off');
    expect(invalid('bundles: { directIo: yes }')).toContain("bundles.directIo: expected one of 'off', 'on', got 'yes'");
    expect(invalid('bundles: { directIo: true }')).toContain("bundles.directIo: expected 'off' | 'on', got boolean");
    expect(invalid('bundles: { directIO: on }')).toContain("bundles: unknown field(s) 'directIO'");
  });

  it('refuses an unknown libvirt.domainType, naming the field and the three values', () => {
    expect(invalid('libvirt:\n  domainType: kvmm\n')).toBe("/etc/vmforge/config.yaml is invalid:\n  libvirt.domainType: expected one of 'auto', 'kvm', 'qemu', got 'kvmm'");
  });

  it('rejects broken YAML with a line number', () => {
    expect(invalid('a: [1, 2\nb: c')).toMatch(/not valid YAML at line \d/);
  });
});
