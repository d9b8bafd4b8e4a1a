/**
 * Reservations in a libvirt network's DHCP (`virsh net-update NET add-last|delete ip-dhcp-host`). The running
 * network (--live, dnsmasq is told at once) and its persistent definition (--config) are both updated when
 * they exist; an inactive network only has --config, a transient one only --live.
 */
import {
  hostElementXml,
  parseNetworkDhcpHosts,
  sameReservation,
  staleEntries,
  validateReservation,
  type DhcpHostEntry,
  type DhcpReservation,
} from '../../core/dhcp/reservation.js';
import { VmforgeError } from '../../errors.js';
import type { CommandRunner } from '../runner.js';
import type { DhcpReservations, ReserveResult } from './reservations.js';

type Scope = '--live' | '--config';

const NOT_FOUND_RE = /failed to get network|Network not found|no network with matching/i;
const UNREACHABLE_RE = /failed to connect to the hypervisor/i;
const UNSUPPORTED_FLAGS_RE = /unsupported flags/i;
const NO_MATCH_RE = /couldn't locate a matching dhcp host entry/i;

export class LibvirtNetworkDhcp implements DhcpReservations {
  constructor(
    private readonly runner: CommandRunner,
    readonly uri: string,
    readonly network: string,
    private readonly opts: { timeoutMs?: number } = {},
  ) {}

  async reserve(res: DhcpReservation, opts: { signal?: AbortSignal } = {}): Promise<ReserveResult> {
    const r = validateReservation(res);
    const removedStale: DhcpHostEntry[] = [];
    const missingIn: Scope[] = [];
    for (const scope of await this.scopes(opts.signal)) {
      const entries = await this.entries(scope, opts.signal);
      for (const e of staleEntries(entries, r)) {
        await this.update('delete', e, [scope], opts.signal);
        if (!removedStale.some((x) => x.mac === e.mac && x.ip === e.ip && x.name === e.name)) removedStale.push(e);
      }
      if (!entries.some((e) => sameReservation(e, r))) missingIn.push(scope);
    }
    const alreadyPresent = missingIn.length === 0;
    // Added in one call when both lack it, so live and config cannot end up differing by a half-done add.
    if (missingIn.length) await this.update('add-last', r, missingIn, opts.signal);
    return { removedStale, alreadyPresent };
  }

  async release(res: DhcpReservation, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const r = validateReservation(res);
    for (const scope of await this.scopes(opts.signal, true)) {
      if (!(await this.entries(scope, opts.signal)).some((e) => sameReservation(e, r))) continue;
      try {
        await this.update('delete', r, [scope], opts.signal);
      } catch (e) {
        if (!(e instanceof VmforgeError && NO_MATCH_RE.test(e.message))) throw e;
      }
    }
  }

  async list(opts: { signal?: AbortSignal } = {}): Promise<DhcpHostEntry[]> {
    const scopes = await this.scopes(opts.signal);
    return this.entries(scopes[0] ?? '--config', opts.signal);
  }

  /** Which states exist: --live when active, --config when persistent. A missing network is NOT_FOUND. */
  private async scopes(signal?: AbortSignal, missingOk = false): Promise<Scope[]> {
    let out: string;
    try {
      out = (await this.virsh(['net-info', this.network], signal)).stdout;
    } catch (e) {
      if (missingOk && e instanceof VmforgeError && e.code === 'NOT_FOUND') return [];
      throw e;
    }
    const flag = (k: string) => new RegExp(`^${k}:\\s+yes`, 'mi').test(out);
    const scopes: Scope[] = [];
    if (flag('Active')) scopes.push('--live');
    if (flag('Persistent')) scopes.push('--config');
    return scopes;
  }

  private async entries(scope: Scope, signal?: AbortSignal): Promise<DhcpHostEntry[]> {
    if (scope === '--config') {
      try {
        return parseNetworkDhcpHosts((await this.virsh(['net-dumpxml', '--inactive', this.network], signal)).stdout);
      } catch (e) {
        // Drivers without the flag (test:///) have one definition only: the plain dump is it.
        if (!(e instanceof VmforgeError && UNSUPPORTED_FLAGS_RE.test(e.message))) throw e;
      }
    }
    return parseNetworkDhcpHosts((await this.virsh(['net-dumpxml', this.network], signal)).stdout);
  }

  private async update(cmd: 'add-last' | 'delete', e: DhcpHostEntry, scopes: Scope[], signal?: AbortSignal): Promise<void> {
    await this.virsh(['net-update', this.network, cmd, 'ip-dhcp-host', hostElementXml(e), ...scopes], signal);
  }

  private async virsh(args: string[], signal?: AbortSignal) {
    try {
      return await this.runner.run(['virsh', '-q', '-c', this.uri, ...args], { timeoutMs: this.opts.timeoutMs ?? 60_000, signal });
    } catch (e) {
      if (e instanceof VmforgeError && e.code === 'COMMAND_FAILED') {
        if (NOT_FOUND_RE.test(e.message)) {
          throw new VmforgeError('NOT_FOUND', `libvirt network '${this.network}' does not exist on ${this.uri}`, {
            hint: `list networks with: virsh -c ${this.uri} net-list --all`,
          });
        }
        if (UNREACHABLE_RE.test(e.message)) {
          throw new VmforgeError('HYPERVISOR_UNREACHABLE', `cannot connect to libvirt at ${this.uri}`, { hint: 'is libvirtd (or virtqemud/virtnetworkd) running?' });
        }
      }
      throw e;
    }
  }
}
