import { describe, expect, it } from 'vitest';
import { parseIpv4Cidr } from './ipv4.js';
import { parseIpv6Network } from './ipv6.js';
import { parseIpv4Network } from './pool.js';

describe('CIDR text is read strictly', () => {
  it('refuses a prefix with a leading zero', () => {
    expect(() => parseIpv4Network('10.0.0.0/08')).toThrow("CIDR: prefix '/08' has a leading zero");
    expect(() => parseIpv4Cidr('10.0.0.5/024', '--ip')).toThrow("--ip: prefix '/024' has a leading zero");
    expect(() => parseIpv6Network('fd00:20::/064')).toThrow("IPv6 network: prefix '/064' has a leading zero");
  });

  it('refuses white space around or inside', () => {
    for (const t of [' 10.0.0.0/24', '10.0.0.0/24 ', '10.0.0.0/ 24', '10.0.0.0\t/24']) {
      expect(() => parseIpv4Network(t), JSON.stringify(t)).toThrow(/contains white space/);
    }
    expect(() => parseIpv4Cidr(' 10.0.0.5/24', '--ip')).toThrow(/contains white space/);
    expect(() => parseIpv6Network('fd00:20::/64\n')).toThrow(/contains white space/);
  });

  it('still reads the plain forms', () => {
    expect(parseIpv4Network('10.0.0.0/8')).toEqual({ network: 10 * 2 ** 24, prefix: 8 });
    expect(parseIpv4Cidr('10.0.0.5/24')).toEqual({ address: '10.0.0.5', prefix: 24 });
    expect(parseIpv6Network('fd00:20::/64').prefix).toBe(64);
  });
});
