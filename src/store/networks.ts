/**
 * Networks and their leases. A lease is one VM's IPv4 address (and IPv6 address, when the network has a
 * prefix) plus its MAC. Uniqueness is the database's job: UNIQUE(network, ip), UNIQUE(mac), UNIQUE(vm_name);
 * allocation reads the taken addresses and inserts the lease in one BEGIN IMMEDIATE transaction, so concurrent
 * vmforge processes are serialized and never hand out the same address or MAC.
 */
import type { Kysely } from 'kysely';
import { conflict, notFound, VmforgeError } from '../errors.js';
import { validateVmName } from '../core/names.js';
import { normalizeMac } from '../core/ipam/mac.js';
import { ipv6FromMac } from '../core/ipam/ipv6.js';
import { checkRequestedIp, compilePool, lowestFree, poolExhausted } from '../core/ipam/pool.js';
import { cidrsOverlap, defineNetwork, formatDhcp, parseDhcp, type DhcpMode, type NetworkDef, type NetworkInput } from '../core/ipam/network.js';
import { parseIpv4 } from '../core/ipam/ipv4.js';
import type { Db } from './db.js';
import type { Database, LeasesTable, NetworksTable } from './schema.js';
import { inWriteTransaction, uniqueViolation } from './write-txn.js';

export interface Network extends NetworkDef {
  createdAt: string;
}

/** Everything a VM's NIC and guest network config need, from the lease and its network. */
export interface Lease {
  network: string;
  vmName: string;
  ipv4: string;
  prefix: number;
  gateway: string;
  dnsServers: string[];
  dnsZone: string | null;
  /** Address without prefix, or null when the network has no IPv6 prefix. */
  ipv6: string | null;
  ipv6Prefix: number | null;
  mac: string;
  bridge: string;
  vlan: number | null;
  dhcp: DhcpMode;
  createdAt: string;
}

export interface AllocateRequest {
  network: string;
  vmName: string;
  /** A specific address (validated against the pool); default: the lowest free one in the range. */
  ip?: string;
  /**
   * The VM's MAC, or a picker called (again) until it returns one not in use. It is given the MACs in use in
   * the inventory (leases and VMs), e.g. `(inUse) => pickMac(MAC_PREFIX.qemu, inUse, randomBytes)`.
   */
  mac: string | ((inUse: ReadonlySet<string>) => string);
}

type Trx = Kysely<Database>;

const now = () => new Date().toISOString();

function toNetwork(r: NetworksTable): Network {
  return {
    name: r.name,
    cidr: r.cidr,
    gateway: r.gateway,
    range: r.range,
    excludes: JSON.parse(r.excludes) as string[],
    bridge: r.bridge,
    vlan: r.vlan,
    dnsServers: JSON.parse(r.dns_servers) as string[],
    dnsZone: r.dns_zone,
    ipv6: r.ipv6,
    dhcp: parseDhcp(r.dhcp),
    createdAt: r.created_at,
  };
}

function toLease(n: Network, l: Pick<LeasesTable, 'vm_name' | 'ip' | 'ipv6' | 'mac' | 'created_at'>): Lease {
  return {
    network: n.name,
    vmName: l.vm_name,
    ipv4: l.ip,
    prefix: Number(n.cidr.split('/')[1]),
    gateway: n.gateway,
    dnsServers: n.dnsServers,
    dnsZone: n.dnsZone,
    ipv6: l.ipv6,
    ipv6Prefix: l.ipv6 === null || n.ipv6 === null ? null : Number(n.ipv6.split('/')[1]),
    mac: l.mac,
    bridge: n.bridge,
    vlan: n.vlan,
    dhcp: n.dhcp,
    createdAt: l.created_at,
  };
}

const byIp = (a: { ipv4: string }, b: { ipv4: string }) => parseIpv4(a.ipv4) - parseIpv4(b.ipv4);

async function getNetwork(db: Trx, name: string): Promise<Network | undefined> {
  const row = await db.selectFrom('networks').selectAll().where('name', '=', name).executeTakeFirst();
  return row && toNetwork(row);
}

function noSuchNetwork(name: string): VmforgeError {
  return notFound(`network '${name}' does not exist`, "see 'vmforge network list', or create it with 'vmforge network create'");
}

export class NetworkRepo {
  constructor(private readonly db: Db) {}

  /** Validates and stores a network. Refuses a taken name and a CIDR overlapping another network on the same bridge and VLAN. */
  async create(input: NetworkInput): Promise<Network> {
    const def = defineNetwork(input);
    return inWriteTransaction(this.db, async (trx) => {
      if (await getNetwork(trx, def.name)) throw conflict(`network '${def.name}' exists already`, `pick another name, or remove it first: vmforge network rm ${def.name}`);
      const peers = (await trx.selectFrom('networks').selectAll().where('bridge', '=', def.bridge).execute()).map(toNetwork);
      const clash = peers.find((p) => p.vlan === def.vlan && cidrsOverlap(p.cidr, def.cidr));
      if (clash) {
        throw conflict(
          `network '${def.name}': ${def.cidr} overlaps network '${clash.name}' (${clash.cidr}) on bridge ${def.bridge}${def.vlan === null ? '' : ` VLAN ${def.vlan}`}`,
          'two pools on one segment would hand out the same addresses; use a disjoint CIDR or another bridge/VLAN',
        );
      }
      const row: NetworksTable = {
        name: def.name,
        cidr: def.cidr,
        gateway: def.gateway,
        range: def.range,
        excludes: JSON.stringify(def.excludes),
        bridge: def.bridge,
        vlan: def.vlan,
        dns_servers: JSON.stringify(def.dnsServers),
        dns_zone: def.dnsZone,
        ipv6: def.ipv6,
        dhcp: formatDhcp(def.dhcp),
        created_at: now(),
      };
      await trx.insertInto('networks').values(row).execute();
      return toNetwork(row);
    });
  }

  async get(name: string): Promise<Network | undefined> {
    return getNetwork(this.db, name);
  }

  /** Like get, but a missing network is a NOT_FOUND error. */
  async require(name: string): Promise<Network> {
    const n = await this.get(name);
    if (!n) throw noSuchNetwork(name);
    return n;
  }

  async list(): Promise<Network[]> {
    return (await this.db.selectFrom('networks').selectAll().orderBy('name').execute()).map(toNetwork);
  }

  /** Removes a network; refused (CONFLICT, naming them) while any address of it is leased. */
  async remove(name: string): Promise<void> {
    await inWriteTransaction(this.db, async (trx) => {
      if (!(await getNetwork(trx, name))) throw noSuchNetwork(name);
      const leases = await trx.selectFrom('leases').select(['vm_name', 'ip']).where('network', '=', name).execute();
      if (leases.length) {
        const list = leases
          .sort((a, b) => parseIpv4(a.ip) - parseIpv4(b.ip))
          .map((l) => `${l.vm_name} (${l.ip})`)
          .join(', ');
        throw conflict(`network '${name}' still has ${leases.length} leased address(es): ${list}`, 'destroy those VMs first (vmforge vm destroy NAME)');
      }
      await trx.deleteFrom('networks').where('name', '=', name).execute();
    });
  }
}

export class LeaseRepo {
  constructor(private readonly db: Db) {}

  /**
   * Leases an address (and the MAC) to a VM. Idempotent for a VM that already holds a matching lease in this
   * network (returned as it is); a VM holding another lease is a CONFLICT. Errors: NOT_FOUND (network),
   * INVALID_INPUT / CONFLICT (requested address or MAC), POOL_EXHAUSTED.
   */
  async allocate(req: AllocateRequest): Promise<Lease> {
    validateVmName(req.vmName);
    const fixedMac = typeof req.mac === 'string' ? normalizeMac(req.mac) : null;
    // Under BEGIN IMMEDIATE nothing can take the address between our read and our insert; a unique violation
    // can still come from a MAC picker racing the vms table, or from a future multi-writer backend: retried.
    for (let attempt = 0; ; attempt++) {
      try {
        return await inWriteTransaction(this.db, (trx) => this.allocateIn(trx, req, fixedMac));
      } catch (e) {
        const cols = uniqueViolation(e);
        if (cols === null || attempt >= 8) throw e;
        if (cols.includes('leases.mac') && fixedMac !== null) throw conflict(`MAC ${fixedMac} is already in use`, 'give another --mac, or leave it out to have one picked');
      }
    }
  }

  private async allocateIn(trx: Trx, req: AllocateRequest, fixedMac: string | null): Promise<Lease> {
    const net = await getNetwork(trx, req.network);
    if (!net) throw noSuchNetwork(req.network);
    const pool = compilePool(net);

    const held = await trx.selectFrom('leases').selectAll().where('vm_name', '=', req.vmName).executeTakeFirst();
    if (held) {
      const same =
        held.network === req.network &&
        (req.ip === undefined || safeIpEquals(req.ip, held.ip)) &&
        (fixedMac === null || fixedMac === held.mac);
      if (same) return toLease(net, held);
      throw conflict(`VM ${req.vmName} already holds ${held.ip} in network '${held.network}' (MAC ${held.mac})`, 'release that lease first (vmforge vm destroy NAME), or ask for the same address');
    }

    const leased = await trx.selectFrom('leases').select(['ip', 'vm_name']).where('network', '=', req.network).execute();
    const taken = new Map(leased.map((l) => [l.ip, l.vm_name]));
    let ip: string;
    if (req.ip !== undefined) {
      ip = checkRequestedIp(pool, req.ip, taken);
    } else {
      const free = lowestFree(pool, taken.keys());
      if (free === null) throw poolExhausted(pool, leased.length);
      ip = free;
    }

    const macOwners = new Map<string, string>();
    for (const r of await trx.selectFrom('vms').select(['mac', 'name']).where('mac', 'is not', null).execute()) macOwners.set(r.mac as string, r.name);
    for (const r of await trx.selectFrom('leases').select(['mac', 'vm_name']).execute()) macOwners.set(r.mac, r.vm_name);
    const ownedByOther = (m: string) => {
      const owner = macOwners.get(m);
      return owner !== undefined && owner !== req.vmName;
    };
    let mac: string;
    if (fixedMac !== null) {
      if (ownedByOther(fixedMac)) throw conflict(`MAC ${fixedMac} is already used by VM ${macOwners.get(fixedMac)}`, 'give another --mac, or leave it out to have one picked');
      mac = fixedMac;
    } else {
      const pick = req.mac as (inUse: ReadonlySet<string>) => string;
      const inUse = new Set([...macOwners].filter(([, owner]) => owner !== req.vmName).map(([m]) => m));
      let tries = 0;
      do {
        if (++tries > 32) throw conflict('could not pick a MAC address that is not in use after 32 tries');
        mac = normalizeMac(pick(inUse));
      } while (ownedByOther(mac));
    }

    const row = { network: net.name, vm_name: req.vmName, ip, ipv6: net.ipv6 === null ? null : ipv6FromMac(net.ipv6, mac), mac, created_at: now() };
    await trx.insertInto('leases').values(row).execute();
    return toLease(net, row);
  }

  /** Drops the VM's lease; returns it, or null when it held none (idempotent). */
  async release(vmName: string): Promise<Lease | null> {
    return inWriteTransaction(this.db, async (trx) => {
      const held = await trx.selectFrom('leases').selectAll().where('vm_name', '=', vmName).executeTakeFirst();
      if (!held) return null;
      const net = await getNetwork(trx, held.network);
      await trx.deleteFrom('leases').where('id', '=', held.id).execute();
      return net ? toLease(net, held) : null;
    });
  }

  async forVm(vmName: string): Promise<Lease | undefined> {
    const held = await this.db.selectFrom('leases').selectAll().where('vm_name', '=', vmName).executeTakeFirst();
    if (!held) return undefined;
    const net = await getNetwork(this.db, held.network);
    return net && toLease(net, held);
  }

  /** The network's leases, by address. */
  async inNetwork(name: string): Promise<Lease[]> {
    const net = await getNetwork(this.db, name);
    if (!net) throw noSuchNetwork(name);
    const rows = await this.db.selectFrom('leases').selectAll().where('network', '=', name).execute();
    return rows.map((r) => toLease(net, r)).sort(byIp);
  }

  /** Every leased MAC (to keep other MAC pickers away from them). */
  async macsInUse(): Promise<string[]> {
    return (await this.db.selectFrom('leases').select('mac').execute()).map((r) => r.mac);
  }
}

function safeIpEquals(requested: string, held: string): boolean {
  try {
    return parseIpv4(requested) === parseIpv4(held);
  } catch {
    return false;
  }
}
