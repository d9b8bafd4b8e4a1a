import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { matchGolden } from '../../../test/harness/golden.js';
import { errorCode } from '../../../test/harness/error-code.js';
import { cloudInitNetworkConfig, cloudInitSeedFiles, type CloudInitSeedFiles, type CloudInitSeedInput } from './cloud-init-seed.js';

const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZtZm9yZ2UtdGVzdC1rZXktbm90LWEtcmVhbC1vbmU admin@example.com';
const RSA_WITH_OPTIONS = 'from="192.0.2.0/24",no-pty ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCw admin: #1';

const STATIC: CloudInitSeedInput = {
  instanceId: '6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f',
  hostname: 'web01',
  domain: 'example.com',
  sshAuthorizedKeys: [ED25519, RSA_WITH_OPTIONS],
  keepHostKeys: true,
  network: {
    mac: '52:54:00:AB:CD:EF',
    net: { mode: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1', dns: ['192.0.2.53', '2001:db8::53'] },
    ipv6: { address: '2001:db8::10', prefix: 64 },
  },
};

const MINIMAL: CloudInitSeedInput = { instanceId: '11111111-2222-4333-8444-555555555555', hostname: 'db01', keepHostKeys: false };

const render = (files: CloudInitSeedFiles) =>
  Object.entries(files)
    .map(([name, text]) => `==> ${name}\n${text}`)
    .join('');

describe('cloudInitSeedFiles', () => {
  it('static lease, keys, host keys kept (golden)', () => {
    matchGolden(import.meta.dirname, 'cloud-init-seed-static.txt', render(cloudInitSeedFiles(STATIC)));
  });

  it('no network, no keys (golden)', () => {
    const files = cloudInitSeedFiles(MINIMAL);
    expect(Object.keys(files)).toEqual(['meta-data', 'user-data']);
    matchGolden(import.meta.dirname, 'cloud-init-seed-minimal.txt', render(files));
  });

  it('parses back as YAML with the values given', () => {
    const files = cloudInitSeedFiles(STATIC);
    expect(parse(files['meta-data'])).toEqual({ 'instance-id': '6f1c2a4e-8d3b-4c5a-9e7f-0a1b2c3d4e5f', 'local-hostname': 'web01' });
    expect(files['user-data'].startsWith('#cloud-config\n')).toBe(true);
    expect(parse(files['user-data'])).toEqual({
      hostname: 'web01',
      fqdn: 'web01.example.com',
      ssh_authorized_keys: [ED25519, RSA_WITH_OPTIONS],
      disable_root: false,
      ssh_deletekeys: false,
    });
    expect(parse(files['network-config']!)).toEqual({
      version: 2,
      ethernets: {
        eth0: {
          match: { macaddress: '52:54:00:ab:cd:ef' },
          'set-name': 'eth0',
          dhcp4: false,
          addresses: ['192.0.2.10/24', '2001:db8::10/64'],
          routes: [{ to: '0.0.0.0/0', via: '192.0.2.1' }],
          nameservers: { addresses: ['192.0.2.53', '2001:db8::53'], search: ['example.com'] },
        },
      },
    });
    expect(parse(cloudInitSeedFiles(MINIMAL)['user-data'])).toEqual({ hostname: 'db01', disable_root: false });
  });

  it('keeps a host name YAML would read as another type a string', () => {
    // 'true', 'null' and '1e3' are valid host names and YAML 1.1 booleans/nulls/numbers when unquoted.
    for (const hostname of ['true', 'null', 'no', '1e3', '0x1f']) {
      const files = cloudInitSeedFiles({ ...MINIMAL, hostname });
      expect(parse(files['meta-data'])['local-hostname']).toBe(hostname);
      expect(parse(files['user-data']).hostname).toBe(hostname);
    }
  });

  it('writes DHCP as dhcp4', () => {
    expect(parse(cloudInitNetworkConfig({ mac: '52:54:00:00:00:01', net: { mode: 'dhcp' } }))).toEqual({
      version: 2,
      ethernets: { eth0: { match: { macaddress: '52:54:00:00:00:01' }, 'set-name': 'eth0', dhcp4: true } },
    });
  });

  it('refuses bad input before writing anything', () => {
    expect(errorCode(() => cloudInitSeedFiles({ ...MINIMAL, instanceId: 'web01' }))).toBe('INVALID_INPUT');
    expect(errorCode(() => cloudInitSeedFiles({ ...MINIMAL, hostname: 'a b' }))).toBe('INVALID_INPUT');
    expect(errorCode(() => cloudInitSeedFiles({ ...MINIMAL, sshAuthorizedKeys: ['-----BEGIN OPENSSH PRIVATE KEY-----'] }))).toBe('INVALID_INPUT');
    expect(errorCode(() => cloudInitSeedFiles({ ...MINIMAL, sshAuthorizedKeys: [`${ED25519}\nssh-ed25519 AAAA`] }))).toBe('INVALID_INPUT');
    expect(errorCode(() => cloudInitNetworkConfig({ ...STATIC.network!, mac: '01:00:5e:00:00:01' }))).toBe('INVALID_INPUT');
    expect(errorCode(() => cloudInitNetworkConfig({ ...STATIC.network!, iface: 'eth0:\n  x' }))).toBe('INVALID_INPUT');
    expect(errorCode(() => cloudInitNetworkConfig({ ...STATIC.network!, ipv6: { address: '192.0.2.1', prefix: 64 } }))).toBe('INVALID_INPUT');
    expect(errorCode(() => cloudInitNetworkConfig({ ...STATIC.network!, net: { mode: 'static', address: '192.0.2.10', prefix: 24, gateway: '198.51.100.1', dns: [] } }))).toBe(
      'INVALID_INPUT',
    );
  });
});
