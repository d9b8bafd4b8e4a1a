/** The registrar the `dns` config section describes. */
import { parseDnsServer, type DnsSettings } from '../../core/dns/index.js';
import type { CommandRunner } from '../runner.js';
import { NsupdateRegistrar } from './nsupdate-registrar.js';
import type { DnsRegistrar } from './registrar.js';

export function dnsRegistrarFor(runner: CommandRunner, settings: DnsSettings, opts: { timeoutSeconds?: number } = {}): DnsRegistrar {
  return new NsupdateRegistrar(runner, { server: parseDnsServer(settings.server), keyFile: settings.keyFile, ...opts });
}
