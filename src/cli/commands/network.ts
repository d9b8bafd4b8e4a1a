import type { Command } from 'commander';
import { collect, withContext } from './shared.js';
import { table } from '../render.js';

export function registerNetworkCommands(program: Command): void {
  const network = program
    .command('network')
    .description('networks: address pools VMs lease their IPv4 (and IPv6) address and MAC from')
    .addHelpText(
      'after',
      '\nExamples:\n  vmforge network create lab --cidr 10.20.0.0/24 --bridge br0\n  vmforge network list\n  vmforge network show lab\n  vmforge network rm lab\n\nSee docs/network.md.',
    );

  network
    .command('create')
    .description('define a network and its address pool (nothing on the host changes: the bridge must exist when VMs use it)')
    .argument('<name>', 'network name: an RFC 1123 label (a-z, 0-9, hyphen)')
    .requiredOption('--cidr <cidr>', 'IPv4 network, e.g. 10.20.0.0/24')
    .requiredOption('--bridge <name>', 'host bridge VMs on this network attach to')
    .option('--gateway <ip>', 'default gateway (default: the first host address)')
    .option('--range <first-last>', 'addresses handed out automatically (default: gateway+1 to the last host)')
    .option('--exclude <ip|first-last>', 'never hand out these addresses (repeatable)', collect)
    .option('--dns-servers <ip,ip>', 'DNS servers for guests, comma-separated')
    .option('--dns-zone <domain>', 'DNS domain of the VMs, e.g. lab.example.com')
    .option('--ipv6 <cidr>', 'IPv6 prefix (/64 or shorter); VMs get the EUI-64 address of their MAC')
    .option('--dhcp <mode>', 'none, libvirt:NETWORK or dnsmasq:/DIR (default none: static addresses)')
    .option('--vlan <id>', '802.1Q VLAN id 1-4094')
    .option('--json', 'JSON output')
    .addHelpText(
      'after',
      `
Examples:
  vmforge network create lab --cidr 10.20.0.0/24 --bridge br0
  vmforge network create dmz --cidr 192.168.50.0/24 --bridge br1 --gateway 192.168.50.254 \\
      --range 192.168.50.100-192.168.50.199 --exclude 192.168.50.150 --exclude 192.168.50.160-192.168.50.169 \\
      --dns-servers 192.168.50.254,1.1.1.1 --dns-zone dmz.example.com --ipv6 fd00:50::/64 --vlan 50
  vmforge network create p2p --cidr 10.99.0.0/31 --bridge br9      (gateway 10.99.0.0, one VM: 10.99.0.1)`,
    )
    .action(async (name: string, opts: Record<string, unknown>, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { createNetwork } = await import('../../app/networks.js');
        const n = await createNetwork(ctx, {
          name,
          cidr: opts.cidr as string,
          bridge: opts.bridge as string,
          gateway: opts.gateway as string | undefined,
          range: opts.range as string | undefined,
          excludes: opts.exclude as string[] | undefined,
          dnsServers: opts.dnsServers as string | undefined,
          dnsZone: opts.dnsZone as string | undefined,
          ipv6: opts.ipv6 as string | undefined,
          dhcp: opts.dhcp as string | undefined,
          vlan: opts.vlan as string | undefined,
        });
        if (opts.json) return void process.stdout.write(`${JSON.stringify(n, null, 2)}\n`);
        process.stdout.write(
          `network ${n.name} created: ${n.cidr} on bridge ${n.bridge}${n.vlan === null ? '' : ` VLAN ${n.vlan}`}, gateway ${n.gateway}, range ${n.range}` +
            `${n.excludes.length ? ` minus ${n.excludes.join(', ')}` : ''} (${n.capacity} address${n.capacity === 1 ? '' : 'es'})${n.ipv6 ? `, IPv6 ${n.ipv6}` : ''}\n`,
        );
      });
    });

  network
    .command('list')
    .description('list networks with their pool usage')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge network list\n  vmforge network list --json | jq -r \'.[] | "\\(.name) \\(.free)"\'')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { listNetworks } = await import('../../app/networks.js');
        const nets = await listNetworks(ctx);
        if (opts.json) return void process.stdout.write(`${JSON.stringify(nets, null, 2)}\n`);
        if (!nets.length) return void process.stdout.write('no networks\n');
        process.stdout.write(
          `${table(
            nets.map((n) => [n.name, n.cidr, n.gateway, n.range, n.bridge, n.vlan === null ? '-' : String(n.vlan), n.ipv6 ?? '-', n.dhcpText, String(n.leased), String(n.free)]),
            ['NAME', 'CIDR', 'GATEWAY', 'RANGE', 'BRIDGE', 'VLAN', 'IPV6', 'DHCP', 'LEASED', 'FREE'],
          )}\n`,
        );
      }, { readOnly: true });
    });

  network
    .command('show')
    .description('show one network: pool, DNS, DHCP and its leases')
    .argument('<name>', 'network name')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge network show lab\n  vmforge network show lab --json')
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { showNetwork } = await import('../../app/networks.js');
        const n = await showNetwork(ctx, name);
        if (opts.json) return void process.stdout.write(`${JSON.stringify(n, null, 2)}\n`);
        const lines = [
          `name:        ${n.name}`,
          `cidr:        ${n.cidr}`,
          `gateway:     ${n.gateway}`,
          `range:       ${n.range}`,
          `excludes:    ${n.excludes.length ? n.excludes.join(', ') : '-'}`,
          `addresses:   ${n.capacity} in the pool, ${n.leased} leased, ${n.free} free`,
          `bridge:      ${n.bridge}${n.vlan === null ? '' : ` (VLAN ${n.vlan})`}`,
          `ipv6:        ${n.ipv6 ?? '-'}`,
          `dns servers: ${n.dnsServers.length ? n.dnsServers.join(', ') : '-'}`,
          `dns zone:    ${n.dnsZone ?? '-'}`,
          `dhcp:        ${n.dhcpText}`,
          `created:     ${n.createdAt}`,
        ];
        if (n.leases.length) {
          lines.push('leases:');
          const rows = n.leases.map((l) => [l.vmName, l.ipv4, l.ipv6 ?? '-', l.mac, l.createdAt]);
          lines.push(...table(rows, ['VM', 'IPV4', 'IPV6', 'MAC', 'SINCE']).split('\n').map((l) => `  ${l}`));
        } else {
          lines.push('leases:      none');
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      }, { readOnly: true });
    });

  network
    .command('rm')
    .description('remove a network (refused while any of its addresses is leased)')
    .argument('<name>', 'network name')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge network rm lab\n\nDestroy the VMs holding leases first; the error lists them.')
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { removeNetwork } = await import('../../app/networks.js');
        await removeNetwork(ctx, name);
        process.stdout.write(opts.json ? `${JSON.stringify({ removed: name })}\n` : `network ${name} removed\n`);
      });
    });
}
