/**
 * The RHEL families' network files read by real readers, not only compared with goldens:
 *
 * - NetworkManager keyfiles (rhel9, and rhel8 on a template without ifcfg profiles) by libnm's own keyfile reader
 *   (nm_keyfile_read, what NetworkManager and `nmcli --offline` use) through test/harness/nm-keyfile-read.py;
 *   every reader warning fails the test, and the connection must verify and mean what vmforge was asked for.
 * - ifcfg files and /etc/sysconfig/network (rhel-legacy, rhel8 with ifcfg) by bash, the way initscripts source
 *   them, under bubblewrap (test/harness/sourced-by-bash.ts), and by the subset NetworkManager's ifcfg-rh reader
 *   documents (test/harness/ifcfg-rules.ts): both readings must agree and mean what vmforge was asked for.
 *
 * The adapters run on the release fixtures in src/core/guest/__fixtures__, as in adapter.test.ts.
 * Needs python3-gi, gir1.2-nm-1.0 and bubblewrap (scripts/install-deps.sh); no root.
 */
import { execa } from 'execa';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { guestAdapterFor, readGuestFiles, type GuestEditInput, type GuestFamily } from '../../src/core/guest/adapter.js';
import type { FileEdit } from '../../src/core/model/spec.js';
import { fixtureSnapshot } from '../harness/guest-fixtures.js';
import { readShellVarsStrictly } from '../harness/ifcfg-rules.js';
import { sourcedByBash } from '../harness/sourced-by-bash.js';

const CONNECTION_UUID = '7d0c1b2a-3e4f-4a5b-9c6d-0e1f2a3b4c5d';
const FSTAB = 'UUID=0b7c2f3e-58d5-4c0b-9c55-3f1f3e0f6a11 / ext4 errors=remount-ro 0 1\n';
const base = { fstabText: FSTAB, rootFsUuid: '0b7c2f3e-58d5-4c0b-9c55-3f1f3e0f6a11', connectionUuid: CONNECTION_UUID, iface: 'eth0' as const };
const STATIC: GuestEditInput = {
  ...base,
  hostname: 'web01',
  domain: 'example.com',
  net: { mode: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1', dns: ['192.0.2.53', '2001:db8::53'] },
};
const DHCP: GuestEditInput = { ...base, hostname: 'db01', net: { mode: 'dhcp' } };
const INPUTS = [
  ['static', STATIC],
  ['dhcp', DHCP],
] as const;

async function editsFor(fixture: string, family: GuestFamily, input: GuestEditInput): Promise<FileEdit[]> {
  const adapter = guestAdapterFor(family);
  return adapter.edits(input, await readGuestFiles(adapter, input, fixtureSnapshot(fixture)));
}

function writeOf(edits: readonly FileEdit[], path: string): FileEdit & { kind: 'write' } {
  const w = edits.find((e): e is FileEdit & { kind: 'write' } => e.kind === 'write' && e.path === path);
  if (!w) throw new Error(`no write of ${path} among: ${edits.map((e) => `${e.kind} ${e.path}`).join(', ')}`);
  return w;
}

// --- NetworkManager keyfiles -----------------------------------------------------------------------------------

interface NmIp {
  method: string;
  addresses: string[];
  gateway: string | null;
  dns: string[];
  dnsSearch: string[];
}
interface NmReading {
  warnings: string[];
  verifyError: string | null;
  libnm: string;
  id: string;
  uuid: string;
  type: string;
  interfaceName: string | null;
  autoconnect: boolean;
  macAddress: string | null;
  ipv4: NmIp;
  ipv6: NmIp;
}

const NM_READER = join(import.meta.dirname, '../harness/nm-keyfile-read.py');

async function readByLibnm(text: string): Promise<NmReading> {
  // /usr/bin/python3: the distribution's python has the gi module, a python earlier in PATH may not.
  const r = await execa('/usr/bin/python3', [NM_READER], { input: text, reject: false, timeout: 30_000 });
  if (r.exitCode !== 0) throw new Error(`libnm keyfile reader failed (needs python3-gi and gir1.2-nm-1.0, see scripts/install-deps.sh): ${String(r.stderr)}`);
  return JSON.parse(String(r.stdout)) as NmReading;
}

const KEYFILE_CASES: { fixture: string; family: GuestFamily }[] = [
  { fixture: 'rocky-9', family: 'rhel9' },
  { fixture: 'fedora-39', family: 'rhel9' },
  // A RHEL 8 template without ifcfg NIC profiles gets a keyfile (the other rhel8 output is ifcfg, below).
  { fixture: 'fedora-39', family: 'rhel8' },
];

describe('NetworkManager keyfiles, read by libnm', () => {
  for (const { fixture, family } of KEYFILE_CASES) {
    for (const [kind, input] of INPUTS) {
      it(`${fixture} as ${family}, ${kind}: no reader warning, verifies, means what was asked`, async () => {
        const w = writeOf(await editsFor(fixture, family, input), '/etc/NetworkManager/system-connections/eth0.nmconnection');
        // NetworkManager skips a keyfile that anyone but root can read.
        expect(w.mode).toBe(0o600);
        const nm = await readByLibnm(w.content);
        expect(nm.warnings).toEqual([]);
        expect(nm.verifyError).toBeNull();
        expect(nm).toMatchObject({ id: 'eth0', uuid: CONNECTION_UUID, type: '802-3-ethernet', interfaceName: 'eth0', autoconnect: true, macAddress: null });
        if (kind === 'static') {
          expect(nm.ipv4).toEqual({ method: 'manual', addresses: ['192.0.2.10/24'], gateway: '192.0.2.1', dns: ['192.0.2.53'], dnsSearch: ['example.com'] });
          expect(nm.ipv6).toMatchObject({ method: 'auto', addresses: [], dns: ['2001:db8::53'] });
        } else {
          expect(nm.ipv4).toEqual({ method: 'auto', addresses: [], gateway: null, dns: [], dnsSearch: [] });
          expect(nm.ipv6).toMatchObject({ method: 'auto', addresses: [], dns: [] });
        }
      });
    }
  }

  it('the reader is strict enough to catch mistakes (a wrong prefix, an IPv6 server in ipv4, an unknown method)', async () => {
    const good = writeOf(await editsFor('rocky-9', 'rhel9', STATIC), '/etc/NetworkManager/system-connections/eth0.nmconnection').content;
    const prefix = await readByLibnm(good.replace('192.0.2.10/24', '192.0.2.10/33'));
    expect(prefix.warnings.join('\n')).toMatch(/invalid prefix length/);
    const v6InV4 = await readByLibnm(good.replace('dns=192.0.2.53;', 'dns=2001:db8::53;'));
    expect(v6InV4.warnings.join('\n')).toMatch(/invalid DNS server IPv4 address/);
    const method = await readByLibnm(good.replace('method=manual', 'method=static'));
    expect(method.verifyError).toMatch(/ipv4\.method/);
  });
});

// --- ifcfg and /etc/sysconfig/network --------------------------------------------------------------------------

const IFCFG_CASES: { fixture: string; family: GuestFamily; kept: Record<string, string> }[] = [
  { fixture: 'centos-6', family: 'rhel-legacy', kept: { TYPE: 'Ethernet', NM_CONTROLLED: 'no', IPV6INIT: 'no', USERCTL: 'no' } },
  { fixture: 'centos-7', family: 'rhel-legacy', kept: { TYPE: 'Ethernet', IPV6INIT: 'yes', IPV6_ADDR_GEN_MODE: 'stable-privacy', DEFROUTE: 'yes' } },
  { fixture: 'rhel-8', family: 'rhel8', kept: { TYPE: 'Ethernet', MTU: '1450', IPV6INIT: 'yes', DEFROUTE: 'yes' } },
];

/** Both readings of a shell-variable file; they must agree before either is believed. */
async function readShellFile(path: string, text: string): Promise<Map<string, string>> {
  const strict = readShellVarsStrictly(text, path).vars;
  const bash = await sourcedByBash(text, [...strict.keys()]);
  expect(bash.stderr, `bash said something about ${path}`).toBe('');
  expect(bash.vars, `bash reads ${path} differently`).toEqual(strict);
  return strict;
}

describe('ifcfg files, read as initscripts (bash, confined) and as NetworkManager ifcfg-rh documents', () => {
  for (const { fixture, family, kept } of IFCFG_CASES) {
    for (const [kind, input] of INPUTS) {
      it(`${fixture} as ${family}, ${kind}`, async () => {
        const edits = await editsFor(fixture, family, input);
        const ifcfg = await readShellFile('ifcfg-eth0', writeOf(edits, '/etc/sysconfig/network-scripts/ifcfg-eth0').content);
        // initscripts take the device from DEVICE, which must name the file's interface.
        expect(ifcfg.get('DEVICE')).toBe('eth0');
        expect(ifcfg.get('ONBOOT')).toBe('yes');
        expect(ifcfg.get('UUID')).toBe(CONNECTION_UUID);
        // Nothing may tie the profile to the template's NIC or addresses.
        for (const gone of ['HWADDR', 'MACADDR', 'NETMASK', 'NETWORK', 'BROADCAST']) expect(ifcfg.has(gone), gone).toBe(false);
        for (const [k, v] of Object.entries(kept)) expect(ifcfg.get(k), `template's ${k}`).toBe(v);
        if (kind === 'static') {
          expect(ifcfg.get('BOOTPROTO')).toBe('none');
          expect(ifcfg.get('IPADDR')).toBe('192.0.2.10');
          expect(ifcfg.get('PREFIX')).toBe('24');
          expect(ifcfg.get('GATEWAY')).toBe('192.0.2.1');
          expect([ifcfg.get('DNS1'), ifcfg.get('DNS2'), ifcfg.get('DNS3')]).toEqual(['192.0.2.53', '2001:db8::53', undefined]);
          expect(ifcfg.get('DOMAIN')).toBe('example.com');
        } else {
          expect(ifcfg.get('BOOTPROTO')).toBe('dhcp');
          for (const gone of ['IPADDR', 'PREFIX', 'GATEWAY', 'DNS1', 'DOMAIN']) expect(ifcfg.has(gone), gone).toBe(false);
        }
        // /etc/sysconfig/network: a GATEWAY there would override eth0's; RHEL 6 takes its name from HOSTNAME.
        const network = edits.find((e) => e.kind === 'write' && e.path === '/etc/sysconfig/network');
        if (network?.kind === 'write') {
          const vars = await readShellFile('network', network.content);
          expect(vars.has('GATEWAY')).toBe(false);
          if (fixture === 'centos-6') expect(vars.get('HOSTNAME')).toBe(kind === 'static' ? 'web01.example.com' : 'db01');
        }
      });
    }
  }

  it('the strict reader refuses what only a shell would understand, and bash under bwrap cannot write', async () => {
    expect(() => readShellVarsStrictly('X=$(id)\n')).toThrow(/unquoted '\$'/);
    expect(() => readShellVarsStrictly('X="a$HOME"\n')).toThrow(/expansion/);
    expect(() => readShellVarsStrictly('X=a b\n')).toThrow(/after whitespace/);
    expect(() => readShellVarsStrictly('export X=1\n')).toThrow(/not a KEY=VALUE/);
    expect(readShellVarsStrictly(`A='x y'\nB="q\\"z"\nC=a\\ b\n# c\n\n`).vars).toEqual(new Map([['A', 'x y'], ['B', 'q"z'], ['C', 'a b']]));
    const hostile = await sourcedByBash('X=$(echo hi > /vars; echo ran)\nY="$(id -u)"\n');
    expect(hostile.vars.get('X')).toBe('ran');
    // No capabilities and no writable path inside: the write to the bound file failed.
    expect(hostile.stderr).toMatch(/Read-only file system|Permission denied/);
  });
});
