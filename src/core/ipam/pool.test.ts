import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../../errors.js';
import { checkRequestedIp, compilePool, definePool, leasableIntervals, lowestFree, parseIpv4Network, parseRange, poolCapacity, poolExhausted, reservedReason, type PoolInput } from './pool.js';
import { parseIpv4 } from './ipv4.js';

const pool = (input: Omit<PoolInput, 'name'>) => compilePool(definePool({ name: 'lab', ...input }));
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as VmforgeError).code;
  }
  return 'no error';
};

describe('definePool', () => {
  it('defaults gateway to the first host and range to gateway+1 .. last host', () => {
    expect(definePool({ name: 'lab', cidr: '10.20.0.0/24' })).toEqual({ name: 'lab', cidr: '10.20.0.0/24', gateway: '10.20.0.1', range: '10.20.0.2-10.20.0.254', excludes: [] });
    expect(definePool({ name: 'lab', cidr: '10.20.0.0/24', gateway: '10.20.0.200' }).range).toBe('10.20.0.201-10.20.0.254');
  });
  it('a gateway at the top leaves no default range', () => {
    expect(() => definePool({ name: 'lab', cidr: '10.20.0.0/24', gateway: '10.20.0.254' })).toThrow(/no addresses after the gateway 10.20.0.254/);
  });
  it('rejects a CIDR with host bits and suggests the network', () => {
    expect(() => definePool({ name: 'lab', cidr: '10.20.0.5/24' })).toThrow(/network 'lab'.*host bits set/);
    try {
      parseIpv4Network('10.20.0.5/24');
    } catch (e) {
      expect((e as VmforgeError).hint).toMatch(/10\.20\.0\.0\/24/);
    }
  });
  it('rejects a range outside the CIDR, or partly outside', () => {
    expect(() => definePool({ name: 'lab', cidr: '10.20.0.0/24', range: '10.30.0.10-10.30.0.20' })).toThrow(/network 'lab': range 10.30.0.10-10.30.0.20 is not inside 10.20.0.0\/24/);
    expect(() => definePool({ name: 'lab', cidr: '10.20.0.0/24', range: '10.20.0.200-10.20.1.5' })).toThrow(/not inside/);
  });
  it('rejects a reversed range and a gateway outside or on the network/broadcast address', () => {
    expect(() => definePool({ name: 'lab', cidr: '10.20.0.0/24', range: '10.20.0.20-10.20.0.10' })).toThrow(/ends before it starts/);
    expect(() => definePool({ name: 'lab', cidr: '10.20.0.0/24', gateway: '10.21.0.1' })).toThrow(/gateway 10.21.0.1 is outside 10.20.0.0\/24/);
    expect(() => definePool({ name: 'lab', cidr: '10.20.0.0/24', gateway: '10.20.0.0' })).toThrow(/network address/);
    expect(() => definePool({ name: 'lab', cidr: '10.20.0.0/24', gateway: '10.20.0.255' })).toThrow(/broadcast address/);
  });
  it('accepts the gateway inside the range and skips it', () => {
    const p = pool({ cidr: '10.20.0.0/24', gateway: '10.20.0.10', range: '10.20.0.9-10.20.0.11' });
    expect(leasableIntervals(p)).toEqual([
      { first: parseIpv4('10.20.0.9'), last: parseIpv4('10.20.0.9') },
      { first: parseIpv4('10.20.0.11'), last: parseIpv4('10.20.0.11') },
    ]);
    expect(lowestFree(p, ['10.20.0.9'])).toBe('10.20.0.11');
  });
  it('accepts excludes overlapping the range (and each other) and skips them', () => {
    const p = pool({ cidr: '10.20.0.0/24', range: '10.20.0.10-10.20.0.20', excludes: ['10.20.0.5-10.20.0.12', '10.20.0.12-10.20.0.14', '10.20.0.20'] });
    expect(poolCapacity(p)).toBe(5); // .15 .. .19
    expect(lowestFree(p, [])).toBe('10.20.0.15');
    expect(lowestFree(p, ['10.20.0.15', '10.20.0.16'])).toBe('10.20.0.17');
  });
  it('rejects excludes outside the CIDR and a pool left empty', () => {
    expect(() => definePool({ name: 'lab', cidr: '10.20.0.0/24', excludes: ['10.20.1.1'] })).toThrow(/exclude 10.20.1.1 is not inside/);
    expect(() => definePool({ name: 'lab', cidr: '10.20.0.0/24', range: '10.20.0.10-10.20.0.12', excludes: ['10.20.0.10-10.20.0.12'] })).toThrow(/no leasable address/);
    expect(() => definePool({ name: 'lab', cidr: '10.20.0.0/24', range: '10.20.0.1-10.20.0.1' })).toThrow(/no leasable address/);
  });
  it('normalizes and de-duplicates excludes', () => {
    expect(definePool({ name: 'lab', cidr: '10.20.0.0/24', excludes: ['10.20.0.7 - 10.20.0.9', '10.20.0.7-10.20.0.9', '10.20.0.3-10.20.0.3'] }).excludes).toEqual(['10.20.0.7-10.20.0.9', '10.20.0.3']);
  });
  it('/31: both addresses are hosts; the gateway takes one, one VM the other', () => {
    const def = definePool({ name: 'p2p', cidr: '10.0.0.0/31' });
    expect(def).toMatchObject({ gateway: '10.0.0.0', range: '10.0.0.1-10.0.0.1' });
    const p = compilePool(def);
    expect(poolCapacity(p)).toBe(1);
    expect(reservedReason(p, parseIpv4('10.0.0.1'))).toBeNull();
    expect(lowestFree(p, [])).toBe('10.0.0.1');
    expect(lowestFree(p, ['10.0.0.1'])).toBeNull();
  });
  it('/32: refused, there is no room for a VM', () => {
    expect(() => definePool({ name: 'one', cidr: '10.0.0.5/32' })).toThrow(/network 'one': 10.0.0.5\/32 holds a single address/);
  });
  it('/30: two hosts, gateway one of them', () => {
    const p = pool({ cidr: '192.168.1.0/30' });
    expect(poolCapacity(p)).toBe(1);
    expect(lowestFree(p, [])).toBe('192.168.1.2');
  });
  it('an explicit range over the whole CIDR skips network, broadcast and gateway', () => {
    const p = pool({ cidr: '10.20.0.0/29', range: '10.20.0.0-10.20.0.7' });
    expect(poolCapacity(p)).toBe(5);
    expect(lowestFree(p, [])).toBe('10.20.0.2');
    expect(lowestFree(p, ['10.20.0.2', '10.20.0.3', '10.20.0.4', '10.20.0.5', '10.20.0.6'])).toBeNull();
  });
});

describe('allocation', () => {
  const p = pool({ cidr: '10.20.0.0/24', range: '10.20.0.100-10.20.0.199', excludes: ['10.20.0.50', '10.20.0.150-10.20.0.160'] });
  it('takes the lowest free address of the range, filling holes', () => {
    expect(lowestFree(p, [])).toBe('10.20.0.100');
    expect(lowestFree(p, ['10.20.0.100', '10.20.0.102'])).toBe('10.20.0.101');
    const taken = Array.from({ length: 50 }, (_, i) => `10.20.0.${100 + i}`);
    expect(lowestFree(p, taken)).toBe('10.20.0.161');
  });
  it('ignores leases outside the range when looking for a free address', () => {
    expect(lowestFree(p, ['10.20.0.7'])).toBe('10.20.0.100');
  });
  it('validates a requested address: outside range is fine, reserved ones are not', () => {
    const none = new Map<string, string>();
    expect(checkRequestedIp(p, '10.20.0.7', none)).toBe('10.20.0.7');
    expect(() => checkRequestedIp(p, '10.20.1.7', none)).toThrow(/network 'lab': 10.20.1.7 is outside the network 10.20.0.0\/24/);
    expect(() => checkRequestedIp(p, '10.20.0.0', none)).toThrow(/network 'lab': 10.20.0.0 is the network address/);
    expect(() => checkRequestedIp(p, '10.20.0.255', none)).toThrow(/broadcast address/);
    expect(() => checkRequestedIp(p, '10.20.0.1', none)).toThrow(/is the gateway/);
    expect(() => checkRequestedIp(p, '10.20.0.155', none)).toThrow(/is excluded/);
    expect(() => checkRequestedIp(p, '10.20.0.50', none)).toThrow(/is excluded/);
    expect(() => checkRequestedIp(p, '10.20.0.x', none)).toThrow(/not an IPv4 address/);
    expect(codeOf(() => checkRequestedIp(p, '10.20.0.1', none))).toBe('INVALID_INPUT');
  });
  it('a taken address is a conflict naming the holder', () => {
    const taken = new Map([['10.20.0.120', 'web1']]);
    expect(() => checkRequestedIp(p, '10.20.0.120', taken)).toThrow(/network 'lab': 10.20.0.120 is already leased to VM web1/);
    expect(codeOf(() => checkRequestedIp(p, '10.20.0.120', taken))).toBe('CONFLICT');
  });
  it('exhaustion names the pool', () => {
    const e = poolExhausted(p, 89);
    expect(e.code).toBe('POOL_EXHAUSTED');
    expect(e.message).toMatch(/network 'lab': no free address left in range 10.20.0.100-10.20.0.199 \(89 leased, capacity 89\)/);
    expect(e.hint).toMatch(/network show lab/);
  });
  it('is fast on a big pool', () => {
    const big = pool({ cidr: '10.0.0.0/8' });
    expect(poolCapacity(big)).toBe(2 ** 24 - 3);
    expect(lowestFree(big, ['10.0.0.2', '10.0.0.3'])).toBe('10.0.0.4');
  });
});

describe('parseRange', () => {
  it('reads one address or FIRST-LAST', () => {
    expect(parseRange('10.0.0.1')).toEqual({ first: parseIpv4('10.0.0.1'), last: parseIpv4('10.0.0.1') });
    expect(() => parseRange('10.0.0.1-')).toThrow(/not an address or a range/);
    expect(() => parseRange('10.0.0.1-10.0.0.2-10.0.0.3')).toThrow(/not an address or a range/);
  });
});
