/** The DHCP reservation store a network's `--dhcp` setting names. */
import type { DhcpMode } from '../core/ipam/network.js';
import { DnsmasqHostsDir } from '../exec/dhcp/dnsmasq-hostsdir.js';
import { LibvirtNetworkDhcp } from '../exec/dhcp/libvirt-network.js';
import type { DhcpReservations } from '../exec/dhcp/reservations.js';
import { VmforgeError } from '../errors.js';
import type { AppContext } from './context.js';

export function dhcpReservationsFor(ctx: Pick<AppContext, 'runner'>, mode: DhcpMode, uri: string): DhcpReservations {
  switch (mode.mode) {
    case 'libvirt':
      return new LibvirtNetworkDhcp(ctx.runner, uri, mode.network);
    case 'dnsmasq':
      return new DnsmasqHostsDir(mode.dir);
    case 'none':
      throw new VmforgeError('INTERNAL', 'no DHCP reservations for a network with --dhcp none');
  }
}
