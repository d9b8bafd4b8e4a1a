/**
 * Networks: each vmforge network's bridge on this host, the default NIC's bridge, and the DNS server with its
 * TSIG key for every zone a build would update (a signed SOA query per zone, the same key and tool a build uses).
 */
import { access, readFile } from 'node:fs/promises';
import { dnsRecordsFor, parseTsigKeyFile, type DnsSettings } from '../../core/dns/index.js';
import { VmforgeError } from '../../errors.js';
import { hostBridges } from '../../exec/host/bridges.js';
import { dnsRegistrarFor } from '../../exec/dns/from-config.js';
import { findingOf, type CheckEnv, type Finding } from '../host-check.js';

export async function networkChecks(env: CheckEnv): Promise<Finding[]> {
  const { config, networks } = env.ctx;
  const bridges = await hostBridges();
  const nets = await networks.list();
  const out: Finding[] = [];
  for (const n of nets) {
    const ok = bridges.includes(n.bridge);
    out.push({
      id: `network.${n.name}.bridge`,
      title: `bridge ${n.bridge} (network ${n.name}, ${n.cidr})`,
      status: ok ? 'ok' : 'fail',
      detail: ok ? 'present' : `no bridge named ${n.bridge} on this host: builds on network ${n.name} are refused`,
      ...(ok ? {} : { fix: `ip link add ${n.bridge} type bridge && ip link set ${n.bridge} up (make it permanent in /etc/network/interfaces or systemd-networkd), or fix the network: vmforge network rm ${n.name} and create it again` }),
    });
  }
  const defNet = config.defaults.net;
  if (defNet.startsWith('bridge:')) {
    const br = defNet.slice('bridge:'.length);
    const ok = bridges.includes(br);
    out.push({
      id: 'network.default-bridge',
      title: `bridge ${br} (defaults.net)`,
      status: ok ? 'ok' : 'fail',
      detail: ok ? 'present' : `no bridge named ${br}: builds without --net/--network are refused`,
      ...(ok ? {} : { fix: `ip link add ${br} type bridge && ip link set ${br} up, or change defaults.net` }),
    });
  }
  if (config.network.default && !nets.some((n) => n.name === config.network.default)) {
    out.push({
      id: 'network.default',
      title: `network ${config.network.default} (network.default)`,
      status: 'fail',
      detail: 'no such vmforge network',
      fix: `vmforge network create ${config.network.default} --cidr CIDR --bridge BRIDGE, or change network.default`,
    });
  }
  if (config.dns) out.push(...(await dnsChecks(env, config.dns, nets.map((n) => ({ name: n.name, cidr: n.cidr, gateway: n.gateway, ipv6: n.ipv6 })))));
  else out.push({ id: 'dns', title: 'DNS registration', status: 'ok', detail: 'not configured (no dns section): VMs are not registered in DNS' });
  return out;
}

async function dnsChecks(env: CheckEnv, dns: DnsSettings, nets: { name: string; cidr: string; gateway: string; ipv6: string | null }[]): Promise<Finding[]> {
  const key = await findingOf('dns.key', `TSIG key file ${dns.keyFile}`, async () => {
    await access(dns.keyFile).catch(() => {
      throw new VmforgeError('INVALID_CONFIG', `${dns.keyFile} does not exist or cannot be read`, { hint: 'make one with tsig-keygen -a hmac-sha256 NAME > FILE (0600) and give the server the same key' });
    });
    const k = parseTsigKeyFile(await readFile(dns.keyFile, 'utf8'), dns.keyFile);
    return { detail: `key '${k.name}' (${k.algorithm})` };
  });
  if (key.status === 'fail') return [key];
  // The zones a build updates: the forward zone, and each network's reverse zones (configured or derived).
  const zones = new Map<string, string>([[normal(dns.zone), 'forward zone']]);
  for (const n of nets) {
    const prefix = n.cidr.split('/')[1];
    const v6 = n.ipv6 ? `${n.ipv6.split('/')[0]}1/${n.ipv6.split('/')[1]}` : undefined;
    for (const r of dnsRecordsFor(dns, { name: 'host-check', ipv4: `${n.gateway}/${prefix}`, ...(v6 ? { ipv6: v6 } : {}) })) {
      if (r.type === 'PTR' && !zones.has(r.zone)) zones.set(r.zone, `reverse zone of network ${n.name}`);
    }
  }
  if (!nets.length && dns.reverseZone) zones.set(normal(dns.reverseZone), 'dns.reverseZone');
  const registrar = dnsRegistrarFor(env.ctx.runner, dns, { timeoutSeconds: 3 });
  const out: Finding[] = [key];
  for (const [zone, why] of zones) {
    out.push(
      await findingOf(`dns.zone.${zone}`, `DNS ${dns.server}: ${zone} (${why})`, async () => {
        const soa = (await registrar.lookup(zone, ['SOA'], { signal: env.signal })).find((a) => a.type === 'SOA');
        if (!soa) {
          return { status: 'fail', detail: `the server does not serve ${zone} (no SOA)`, fix: `make ${dns.server} authoritative for ${zone}, or fix dns.zone / dns.reverseZone` };
        }
        return { detail: `SOA ${soa.value.split(/\s+/).slice(0, 2).join(' ')}, signed query accepted` };
      }),
    );
  }
  return out;
}

const normal = (z: string) => (z.endsWith('.') ? z.toLowerCase() : `${z.toLowerCase()}.`);
