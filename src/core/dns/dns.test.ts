import { describe, expect, it } from 'vitest';
import { matchGolden as matchGoldenIn } from '../../../test/harness/golden.js';
import {
  canonicalIpv6,
  describeConflict,
  dnsRecordsFor,
  hostFqdn,
  nsupdateScript,
  parseDigOutput,
  parseDnsServer,
  parseTsigKeyFile,
  planDnsRecords,
  planRegistration,
  planRemoval,
  redactSecret,
  reverseNameV4,
  reverseNameV6,
  reverseZoneV4,
  reverseZoneV6,
  type DnsAnswer,
} from './index.js';

const matchGolden = (file: string, actual: string) => matchGoldenIn(import.meta.dirname, file, actual);
const server = { host: '192.0.2.53', port: 5353 };
const scripts = (zus: ReturnType<typeof planRemoval>) => zus.map((z) => nsupdateScript(server, z)).join('');

const web1 = planDnsRecords({ name: 'web1', zone: 'Example.com', ipv4: '10.20.0.5', ipv4Prefix: 16, ipv6: '2001:DB8:0:0::5', ttl: 300 });

describe('dns names', () => {
  it('makes absolute host names below the zone', () => {
    expect(hostFqdn('web1', 'example.com')).toBe('web1.example.com.');
    expect(hostFqdn('Web1.Lab.example.com.', 'example.com.')).toBe('web1.lab.example.com.');
    expect(() => hostFqdn('web1.other.org', 'example.com')).toThrow(/not below zone 'example.com.'/);
    expect(() => hostFqdn('example.com', 'example.com')).toThrow(/not below zone/);
    expect(() => hostFqdn('-bad', 'example.com')).toThrow(/invalid label '-bad'/);
    expect(() => hostFqdn('a_b', 'example.com')).toThrow(/invalid label/);
  });
  it('computes reverse names and zones', () => {
    expect(reverseNameV4('10.20.0.5')).toBe('5.0.20.10.in-addr.arpa.');
    expect(reverseZoneV4('10.20.0.5', 24)).toBe('0.20.10.in-addr.arpa.');
    expect(reverseZoneV4('10.20.0.5', 20)).toBe('20.10.in-addr.arpa.');
    expect(reverseZoneV4('10.20.0.5', 28)).toBe('0.20.10.in-addr.arpa.');
    expect(reverseZoneV4('10.20.0.5', 8)).toBe('10.in-addr.arpa.');
    expect(() => reverseZoneV4('10.20.0.5', 4)).toThrow(/prefix \/4/);
    expect(reverseNameV6('2001:db8::5')).toBe('5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.');
    expect(reverseZoneV6('2001:db8::5', 64)).toBe('0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.');
    expect(reverseZoneV6('2001:db8::5', 50)).toBe('0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.');
  });
  it('canonicalizes IPv6 text', () => {
    expect(canonicalIpv6('2001:DB8:0:0:0:0:0:5')).toBe('2001:db8::5');
    expect(canonicalIpv6('::1')).toBe('::1');
    expect(canonicalIpv6('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3');
    expect(canonicalIpv6('::ffff:10.0.0.1')).toBe('::ffff:a00:1');
    expect(() => canonicalIpv6('1::2::3')).toThrow(/not an IPv6/);
    expect(() => canonicalIpv6('1:2:3')).toThrow(/not an IPv6/);
  });
  it('parses the server', () => {
    expect(parseDnsServer('ns1.example.com')).toEqual({ host: 'ns1.example.com', port: 53 });
    expect(parseDnsServer('127.0.0.1:5353')).toEqual({ host: '127.0.0.1', port: 5353 });
    expect(parseDnsServer('[2001:db8::53]:54')).toEqual({ host: '2001:db8::53', port: 54 });
    expect(() => parseDnsServer('a b')).toThrow(/HOST:PORT/);
    expect(() => parseDnsServer('h:70000')).toThrow(/HOST:PORT/);
  });
});

describe('dns records', () => {
  it('plans A, AAAA and both PTRs, forward zone first', () => {
    matchGolden('records-web1.json', `${JSON.stringify(web1, null, 2)}\n`);
  });
  it('uses a configured reverse zone and checks the address is in it', () => {
    const rs = planDnsRecords({ name: 'db', zone: 'lab.test', ipv4: '10.20.0.9', reverseZone: '20.10.in-addr.arpa', ttl: 60 });
    expect(rs.map((r) => [r.zone, r.name, r.type, r.value])).toEqual([
      ['lab.test.', 'db.lab.test.', 'A', '10.20.0.9'],
      ['20.10.in-addr.arpa.', '9.0.20.10.in-addr.arpa.', 'PTR', 'db.lab.test.'],
    ]);
    expect(() => planDnsRecords({ name: 'db', zone: 'lab.test', ipv4: '10.30.0.9', reverseZone: '20.10.in-addr.arpa', ttl: 60 })).toThrow(
      /10.30.0.9 is not in reverse zone 20.10.in-addr.arpa./,
    );
    expect(planDnsRecords({ name: 'db', zone: 'lab.test', ipv4: '10.20.0.9', reverseZone: null, ttl: 60 })).toHaveLength(1);
  });
  it('rejects bad input', () => {
    expect(() => planDnsRecords({ name: 'db', zone: 'lab.test', ttl: 60 })).toThrow(/no address/);
    expect(() => planDnsRecords({ name: 'db', zone: 'lab.test', ipv4: '10.0.0.1', ttl: -1 })).toThrow(/TTL -1/);
    expect(() => planDnsRecords({ name: 'db', zone: 'lab..test', ipv4: '10.0.0.1', ttl: 1 })).toThrow(/invalid label ''/);
    expect(() => planDnsRecords({ name: 'db', zone: 'lab.test', ipv4: '10.0.0.256', ttl: 1 })).toThrow(/not an IPv4/);
  });
  it('derives prefixes from CIDR addresses in settings', () => {
    const rs = dnsRecordsFor({ server: 'x', zone: 'lab.test', keyFile: '/k', ttl: 120 }, { name: 'a1', ipv4: '172.16.5.4/16', ipv6: 'fd00:1::4/48' });
    expect(rs.filter((r) => r.type === 'PTR').map((r) => r.zone)).toEqual(['16.172.in-addr.arpa.', '0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa.']);
  });
});

describe('dns change sets', () => {
  it('registers into empty zones with nxrrset prerequisites', () => {
    const plan = planRegistration(web1, []);
    expect(plan.conflicts).toEqual([]);
    matchGolden('register-fresh.nsupdate', scripts(plan.updates));
  });
  it('is a no-op with a value prerequisite when the records are already ours', () => {
    const observed: DnsAnswer[] = web1.map((r) => ({ name: r.name, type: r.type, ttl: 300, value: r.type === 'AAAA' ? '2001:db8:0::5' : r.value }));
    const plan = planRegistration(web1, observed);
    expect(plan.conflicts).toEqual([]);
    expect(plan.present).toHaveLength(4);
    expect(plan.updates.flatMap((u) => u.records)).toEqual([]);
    matchGolden('register-present.nsupdate', scripts(plan.updates));
  });
  const taken: DnsAnswer[] = [
    { name: 'web1.example.com.', type: 'A', ttl: 300, value: '10.20.0.9' },
    { name: 'web1.example.com.', type: 'TXT', ttl: 300, value: '"owner=ops"' },
    { name: '5.0.20.10.in-addr.arpa.', type: 'PTR', ttl: 300, value: 'old.example.com.' },
  ];
  it('reports which record is in the way', () => {
    const plan = planRegistration(web1, taken);
    expect(plan.conflicts.map(describeConflict)).toEqual(['web1.example.com. A 10.20.0.9 exists', '5.0.20.10.in-addr.arpa. PTR old.example.com. exists']);
  });
  it('replaces only the same-type RRset when forced', () => {
    const plan = planRegistration(web1, taken, { force: true });
    expect(plan.conflicts).toEqual([]);
    matchGolden('register-force.nsupdate', scripts(plan.updates));
  });
  it('never forces over a CNAME', () => {
    const plan = planRegistration(web1, [{ name: 'web1.example.com.', type: 'CNAME', ttl: 1, value: 'lb.example.com.' }], { force: true });
    expect(plan.conflicts.map(describeConflict)).toContain('web1.example.com. CNAME lb.example.com. exists');
  });
  it('refuses records that would inject script lines', () => {
    const bad = { ...web1[0]!, value: '10.20.0.5\nupdate delete example.com. IN ANY' };
    expect(() => planRemoval([bad])).toThrow(/not a well-formed DNS record/);
    expect(() => planRegistration([{ ...web1[0]!, name: 'a b.example.com.' }], [])).toThrow(/not a well-formed/);
  });
  it('removes exactly the records, per zone', () => {
    matchGolden('unregister.nsupdate', scripts(planRemoval(web1)));
  });
});

describe('dns tool output', () => {
  it('parses dig answers and status', () => {
    const out = [
      ';; Got answer:',
      ';; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 33068',
      ';; flags: qr aa; QUERY: 1, ANSWER: 2',
      '',
      ';; ANSWER SECTION:',
      'web1.vmforge.test.\t300\tIN\tA\t10.20.0.5',
      'WEB1.vmforge.test.\t300\tIN\tTXT\t"a b"',
      'k.\t0\tANY\tTSIG\thmac-sha256. 1 300 32 xx',
    ].join('\n');
    expect(parseDigOutput(out)).toEqual({
      status: 'NOERROR',
      statuses: ['NOERROR'],
      tsigError: false,
      answers: [
        { name: 'web1.vmforge.test.', ttl: 300, type: 'A', value: '10.20.0.5' },
        { name: 'web1.vmforge.test.', ttl: 300, type: 'TXT', value: '"a b"' },
      ],
    });
    expect(parseDigOutput(';; Couldn\'t verify signature: tsig indicates error\n;; ->>HEADER<<- opcode: QUERY, status: NOTAUTH, id: 1')).toMatchObject({ status: 'NOTAUTH', tsigError: true });
  });
  it('reads BIND key files and redacts the secret', () => {
    const text = '// made by tsig-keygen\nkey "VMForge-Key" {\n\talgorithm hmac-sha256;\n\tsecret "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";\n};\n';
    const key = parseTsigKeyFile(text, '/etc/vmforge/dns.key');
    expect(key).toMatchObject({ name: 'vmforge-key', algorithm: 'hmac-sha256' });
    expect(redactSecret(`bad ${key.secret}!`, key)).toBe('bad [secret]!');
    const md5 = text.replace('hmac-sha256', 'hmac-md5');
    expect(() => parseTsigKeyFile(md5, '/k')).toThrow(/uses hmac-md5/);
    let msg = '';
    try {
      parseTsigKeyFile(text.replace('algorithm hmac-sha256;', ''), '/k');
    } catch (e) {
      msg = String(e) + String((e as { hint?: string }).hint);
    }
    expect(msg).toMatch(/no algorithm/);
    expect(msg).not.toContain(key.secret);
    expect(() => parseTsigKeyFile('nothing', '/k')).toThrow(/no key "NAME"/);
    // base64 holds '/', so '//' inside the secret is not a comment.
    const slashes = 'key "k" { # c\n algorithm hmac-sha512; /* x */ secret "ab//cd/+=="; // y\n};';
    expect(parseTsigKeyFile(slashes, '/k')).toEqual({ name: 'k', algorithm: 'hmac-sha512', secret: 'ab//cd/+==' });
  });
});
