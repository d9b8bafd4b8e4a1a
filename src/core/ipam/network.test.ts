import { describe, expect, it } from 'vitest';
import { cidrsOverlap, defineNetwork, formatDhcp, parseDhcp } from './network.js';
import { eui64, formatIpv6, ipv6FromMac, parseIpv6, parseIpv6Network } from './ipv6.js';
import { validateMac } from './mac.js';

describe('defineNetwork', () => {
  it('fills defaults and normalizes', () => {
    expect(defineNetwork({ name: 'lab', cidr: '10.20.0.0/24', bridge: 'br0', dnsServers: '10.20.0.1, 1.1.1.1,10.20.0.1', dnsZone: 'Lab.Example.com', ipv6: 'FD00:20:0:0::/64', dhcp: 'dnsmasq:/var/lib/vmforge/dhcp/', vlan: '20' })).toEqual({
      name: 'lab',
      cidr: '10.20.0.0/24',
      gateway: '10.20.0.1',
      range: '10.20.0.2-10.20.0.254',
      excludes: [],
      bridge: 'br0',
      vlan: 20,
      dnsServers: ['10.20.0.1', '1.1.1.1'],
      dnsZone: 'lab.example.com',
      ipv6: 'fd00:20::/64',
      dhcp: { mode: 'dnsmasq', dir: '/var/lib/vmforge/dhcp' },
    });
    expect(defineNetwork({ name: 'lab', cidr: '10.20.0.0/24', bridge: 'br0' })).toMatchObject({ vlan: null, dnsServers: [], dnsZone: null, ipv6: null, dhcp: { mode: 'none' } });
  });
  it('rejects bad values with the network named', () => {
    const base = { name: 'lab', cidr: '10.20.0.0/24', bridge: 'br0' };
    expect(() => defineNetwork({ ...base, name: 'Lab' })).toThrow(/network name 'Lab'/);
    expect(() => defineNetwork({ ...base, bridge: 'a-very-long-bridge-name' })).toThrow(/network 'lab': bridge/);
    expect(() => defineNetwork({ ...base, vlan: '4095' })).toThrow(/network 'lab': VLAN '4095'/);
    expect(() => defineNetwork({ ...base, vlan: '1x' })).toThrow(/VLAN/);
    expect(() => defineNetwork({ ...base, dnsServers: '10.20.0.300' })).toThrow(/network 'lab': DNS server/);
    expect(() => defineNetwork({ ...base, dnsZone: 'bad_zone.com' })).toThrow(/DNS zone/);
    expect(() => defineNetwork({ ...base, ipv6: 'fd00:20::1/64' })).toThrow(/host bits set/);
    expect(() => defineNetwork({ ...base, ipv6: 'fd00:20::/96' })).toThrow(/prefix \/96/);
    expect(() => defineNetwork({ ...base, dhcp: 'dhcpd' })).toThrow(/DHCP mode 'dhcpd' is unknown/);
  });
  it('parses and formats DHCP modes', () => {
    expect(parseDhcp('libvirt:default')).toEqual({ mode: 'libvirt', network: 'default' });
    expect(() => parseDhcp('libvirt:')).toThrow(/libvirt network name/);
    expect(() => parseDhcp('dnsmasq:relative/dir')).toThrow(/absolute directory/);
    expect(() => parseDhcp('dnsmasq:/a/../b')).toThrow(/absolute directory/);
    for (const t of ['none', 'libvirt:default', 'dnsmasq:/run/dhcp']) expect(formatDhcp(parseDhcp(t))).toBe(t);
  });
  it('detects overlapping CIDRs', () => {
    expect(cidrsOverlap('10.20.0.0/24', '10.20.0.128/25')).toBe(true);
    expect(cidrsOverlap('10.20.0.0/24', '10.20.1.0/24')).toBe(false);
    expect(cidrsOverlap('10.0.0.0/8', '10.255.255.0/24')).toBe(true);
  });
});

describe('ipv6', () => {
  it('parses and formats (RFC 5952)', () => {
    expect(formatIpv6(parseIpv6('2001:0db8:0000:0000:0000:ff00:0042:8329'))).toBe('2001:db8::ff00:42:8329');
    expect(formatIpv6(parseIpv6('::'))).toBe('::');
    expect(formatIpv6(parseIpv6('::1'))).toBe('::1');
    expect(formatIpv6(parseIpv6('2001:db8:0:1:0:0:0:1'))).toBe('2001:db8:0:1::1');
    expect(formatIpv6(parseIpv6('2001:db8:0:0:1:0:0:1'))).toBe('2001:db8::1:0:0:1');
    expect(formatIpv6(parseIpv6('2001:db8:1:1:1:1:0:1'))).toBe('2001:db8:1:1:1:1:0:1');
    for (const bad of ['1::2::3', '12345::', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', 'g::', '1:2:3:4:5:6:7::8']) expect(() => parseIpv6(bad)).toThrow(/not an IPv6 address/);
  });
  it('derives EUI-64 addresses from MACs', () => {
    expect(formatIpv6(eui64('52:54:00:12:34:56'))).toBe('::5054:ff:fe12:3456');
    expect(ipv6FromMac('fd00:20::/64', '52:54:00:12:34:56')).toBe('fd00:20::5054:ff:fe12:3456');
    expect(parseIpv6Network('fd00:20::/48').text).toBe('fd00:20::/48');
    expect(() => parseIpv6Network('ff02::/16')).toThrow(/multicast/);
  });
});

describe('validateMac', () => {
  it('normalizes and checks the prefix when given', () => {
    expect(validateMac('52-54-00-AA-BB-CC')).toBe('52:54:00:aa:bb:cc');
    expect(validateMac('52:54:00:aa:bb:cc', '52:54:00')).toBe('52:54:00:aa:bb:cc');
    expect(() => validateMac('00:16:3e:aa:bb:cc', '52:54:00')).toThrow(/not under the hypervisor's prefix 52:54:00/);
    expect(() => validateMac('00:00:00:00:00:00')).toThrow(/all-zero/);
    expect(() => validateMac('01:00:5e:00:00:01')).toThrow(/multicast/);
  });
});
