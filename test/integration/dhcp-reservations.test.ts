/**
 * DHCP reservations for real: (a) a libvirt network on qemu:///system that is defined but never started (no
 * bridge, no dnsmasq, no traffic), plus libvirt's test driver for the live+config path; (b) a dnsmasq
 * --dhcp-hostsdir read by a real dnsmasq in its own network namespace (DNS off, DHCP on unprivileged
 * alternate ports, no interface but a down lo), so it proves dnsmasq reads what is written and nothing leaves.
 */
import { execa, type ResultPromise } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNetworkDhcpHosts } from '../../src/core/dhcp/reservation.js';
import { DnsmasqHostsDir } from '../../src/exec/dhcp/dnsmasq-hostsdir.js';
import { LibvirtNetworkDhcp } from '../../src/exec/dhcp/libvirt-network.js';
import { HostProcessRunner } from '../../src/exec/runner.js';
import { VmforgeError } from '../../src/errors.js';
import { ensureLibvirt, requireRoot, uniqueName } from '../harness/env.js';

requireRoot();

const URI = 'qemu:///system';
const runner = new HostProcessRunner();
const TMP_PREFIX = process.env.VMFORGE_DHCP_TMP_PREFIX ?? '/var/tmp/vmforge-dhcp-';

const until = async (what: () => Promise<boolean>, ms = 10_000) => {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (await what()) return;
  throw new Error('condition not met in time');
};

async function rejection(p: Promise<unknown>): Promise<VmforgeError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  if (!(e instanceof VmforgeError)) throw new Error(`expected a VmforgeError, got ${String(e)}`);
  return e;
}

describe('libvirt network DHCP reservations', () => {
  const net = uniqueName('vmf-dhcp');
  let dir = '';
  const dumpConfig = async () => parseNetworkDhcpHosts((await execa('virsh', ['-q', '-c', URI, 'net-dumpxml', '--inactive', net])).stdout);

  beforeAll(async () => {
    await ensureLibvirt();
    dir = await mkdtemp(TMP_PREFIX);
    const xml = `<network><name>${net}</name><bridge name='vmfd${net.slice(-5)}'/><ip address='10.77.0.1' netmask='255.255.255.0'>
      <dhcp><range start='10.77.0.100' end='10.77.0.200'/><host name='printer' ip='10.77.0.7'/></dhcp></ip></network>`;
    await writeFile(join(dir, 'net.xml'), xml);
    await execa('virsh', ['-q', '-c', URI, 'net-define', join(dir, 'net.xml')]);
  });
  afterAll(async () => {
    await execa('virsh', ['-q', '-c', URI, 'net-undefine', net], { reject: false });
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('adds, replaces a stale entry for the same MAC, and removes exactly its own', async () => {
    const dhcp = new LibvirtNetworkDhcp(runner, URI, net);
    const first = { mac: '52:54:00:77:00:05', ip: '10.77.0.5', name: 'web1' };
    expect(await dhcp.reserve(first)).toEqual({ alreadyPresent: false, removedStale: [] });
    expect(await dhcp.reserve(first)).toEqual({ alreadyPresent: true, removedStale: [] });
    const moved = { ...first, ip: '10.77.0.6' };
    expect((await dhcp.reserve(moved)).removedStale).toEqual([first]);
    expect(await dumpConfig()).toEqual([{ name: 'printer', ip: '10.77.0.7' }, moved]);
    const other = { mac: '52:54:00:77:00:08', ip: '10.77.0.8', name: 'web2' };
    await dhcp.reserve(other);
    await dhcp.release(moved);
    await dhcp.release(moved);
    expect(await dumpConfig()).toEqual([{ name: 'printer', ip: '10.77.0.7' }, other]);
    await dhcp.release(other);
    expect(await dumpConfig()).toEqual([{ name: 'printer', ip: '10.77.0.7' }]);
  });

  it('says when the network does not exist', async () => {
    const e = await rejection(new LibvirtNetworkDhcp(runner, URI, `${net}-nope`).reserve({ mac: '52:54:00:77:00:09', ip: '10.77.0.9', name: 'x' }));
    expect(e.code).toBe('NOT_FOUND');
    await new LibvirtNetworkDhcp(runner, URI, `${net}-nope`).release({ mac: '52:54:00:77:00:09', ip: '10.77.0.9', name: 'x' });
  });

  it('uses --live --config on an active persistent network (libvirt test driver)', async () => {
    // The test driver keeps state per connection, so only a single reserve can be observed; it proves libvirt
    // accepts the exact argv for an active network.
    const r = await new LibvirtNetworkDhcp(runner, 'test:///default', 'default').reserve({ mac: '52:54:00:77:00:0a', ip: '192.168.122.50', name: 'web3' });
    expect(r).toEqual({ alreadyPresent: false, removedStale: [] });
  });
});

describe('dnsmasq --dhcp-hostsdir reservations', () => {
  let dir = '';
  let hosts = '';
  let dnsmasq: ResultPromise | null = null;
  const log = () => readFile(join(dir, 'dnsmasq.log'), 'utf8').catch(() => '');

  beforeAll(async () => {
    dir = await mkdtemp(TMP_PREFIX);
    hosts = join(dir, 'hosts');
    await mkdir(hosts);
    // Own network namespace: nothing dnsmasq does can reach the host's networks. --port=0 turns DNS off.
    dnsmasq = execa(
      'unshare',
      ['--net', 'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--dhcp-range=10.88.0.0,static', '--dhcp-alternate-port=16767,16768',
        `--dhcp-hostsdir=${hosts}`, `--pid-file=${join(dir, 'dnsmasq.pid')}`, '--log-facility=-', '--user=root'],
      { reject: false, stdout: { file: join(dir, 'dnsmasq.log') }, stderr: { file: join(dir, 'dnsmasq.log') } },
    );
    await until(async () => /static leases only on 10\.88\.0\.0/.test(await log()));
  });
  afterAll(async () => {
    if (dnsmasq) {
      dnsmasq.kill('SIGTERM');
      await dnsmasq;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes one file per host that dnsmasq reads, replaces it atomically, and removes it', async () => {
    const d = new DnsmasqHostsDir(hosts);
    const web1 = { mac: '52:54:00:88:00:05', ip: '10.88.0.5', name: 'web1' };
    expect(await d.reserve(web1)).toEqual({ alreadyPresent: false, removedStale: [] });
    expect(await readFile(join(hosts, 'web1.conf'), 'utf8')).toBe('52:54:00:88:00:05,10.88.0.5,web1\n');
    await until(async () => (await log()).includes(`read ${hosts}/web1.conf`));
    expect(await d.reserve(web1)).toEqual({ alreadyPresent: true, removedStale: [] });
    const moved = { ...web1, ip: '10.88.0.6' };
    expect((await d.reserve(moved)).removedStale).toEqual([web1]);
    expect(await d.list()).toEqual([moved]);
    expect((await readdir(hosts)).filter((f) => f.startsWith('.'))).toEqual([]);

    const clash = await rejection(d.reserve({ mac: '52:54:00:88:00:09', ip: '10.88.0.6', name: 'web2' }));
    expect(clash.code).toBe('CONFLICT');
    expect(clash.message).toContain(`${hosts}/web1.conf: 52:54:00:88:00:05 10.88.0.6 web1`);
    expect(await readdir(hosts)).toEqual(['web1.conf']);

    await d.release(web1); // not ours any more (moved): stays
    expect(await readdir(hosts)).toEqual(['web1.conf']);
    await d.release(moved);
    await d.release(moved);
    expect(await readdir(hosts)).toEqual([]);
    await until(async () => (await log()).includes(`inotify: ${hosts}/web1.conf removed`));
    expect(await log()).not.toMatch(/bad dhcp-host|error|failed/i);
    expect(dnsmasq?.exitCode).toBeNull();
  });
});
