/**
 * What nsupdate and dig print when an update or query fails, mapped to VmforgeError codes with hints. The
 * text is redacted of the TSIG secret before it goes into any message.
 */
import { redactSecret, type TsigKey } from '../../core/dns/index.js';
import { VmforgeError } from '../../errors.js';

export interface FailureContext {
  server: string;
  zone?: string;
  keyName: string;
  key: TsigKey | null;
}

const TAIL = 600;

/** Maps a failed nsupdate run (exit 1 or 2) to an error; `output` is its stderr+stdout. */
export function nsupdateFailure(output: string, ctx: FailureContext): VmforgeError {
  const text = redactSecret(output, ctx.key).trim();
  const where = ctx.zone ? `zone ${ctx.zone} on ${ctx.server}` : ctx.server;
  const rcode = /update failed: ([A-Z]+)(?:\(([A-Z]+)\))?/.exec(text);
  const detail = lastLines(text);
  if (/TSIG error|BADSIG|BADKEY|BADTIME|tsig verify failure/i.test(text) || rcode?.[2]) {
    return new VmforgeError('UNAUTHORIZED', `DNS server ${ctx.server} rejected TSIG key '${ctx.keyName}' for the update of ${where}: ${rcode?.[2] ?? 'TSIG error'}`, {
      hint: "dns.keyFile must hold the key the server knows (same name, algorithm and secret); TSIG also fails when the clocks differ by more than 5 minutes",
    });
  }
  switch (rcode?.[1]) {
    case 'NOTAUTH':
      return new VmforgeError('INVALID_CONFIG', `DNS server ${ctx.server} is not authoritative for ${ctx.zone ?? 'the zone'} (NOTAUTH)`, {
        hint: 'point dns.server at the primary server of the zone, and check dns.zone / dns.reverseZone',
      });
    case 'REFUSED':
      return new VmforgeError('FORBIDDEN', `DNS server ${ctx.server} refused the update of ${where} with key '${ctx.keyName}' (REFUSED)`, {
        hint: `allow the key in the zone's update-policy (e.g. grant ${ctx.keyName} zonesub ANY;) or allow-update { key ${ctx.keyName}; };`,
      });
    case 'YXRRSET':
    case 'NXRRSET':
    case 'YXDOMAIN':
    case 'NXDOMAIN':
      return new VmforgeError('CONFLICT', `the records in ${where} changed while registering (${rcode[1]}); nothing was changed in that zone`, {
        hint: 'run the command again; it looks the names up afresh',
      });
    case 'SERVFAIL':
      return new VmforgeError('COMMAND_FAILED', `DNS server ${ctx.server} failed the update of ${where} (SERVFAIL)`, {
        hint: "see the DNS server's log (a journal it cannot write, or a zone that did not load, are common causes)",
      });
    default:
      break;
  }
  if (/Communication with .* failed|timed out|could not reach|connection refused|couldn't get address|no servers could be reached|network unreachable/i.test(text)) {
    return unreachable(ctx.server, detail);
  }
  if (/could not read key|invalid key|couldn't read|unknown algorithm|key file/i.test(text)) {
    return new VmforgeError('INVALID_CONFIG', `nsupdate could not use dns.keyFile: ${detail}`, {
      hint: 'make it with: tsig-keygen -a hmac-sha256 NAME > FILE',
    });
  }
  return new VmforgeError('COMMAND_FAILED', `nsupdate failed for ${where}${detail ? `: ${detail}` : ''}`);
}

/** Maps a dig lookup that did not give a usable answer. */
export function digFailure(status: string | null, tsigError: boolean, output: string, ctx: FailureContext & { name: string }): VmforgeError {
  const detail = lastLines(redactSecret(output, ctx.key).trim());
  if (tsigError || status === 'NOTAUTH') {
    return new VmforgeError('UNAUTHORIZED', `DNS server ${ctx.server} rejected TSIG key '${ctx.keyName}' when looking up ${ctx.name}`, {
      hint: 'dns.keyFile must hold the key the server knows (same name, algorithm and secret)',
    });
  }
  if (status === 'REFUSED') {
    return new VmforgeError('FORBIDDEN', `DNS server ${ctx.server} refused to answer for ${ctx.name} (REFUSED)`, {
      hint: 'the server must be authoritative for the zone and allow queries from this host',
    });
  }
  if (status === null) return unreachable(ctx.server, detail);
  return new VmforgeError('COMMAND_FAILED', `DNS server ${ctx.server} answered ${status} for ${ctx.name}`, {
    hint: "see the DNS server's log",
  });
}

function unreachable(server: string, detail: string): VmforgeError {
  return new VmforgeError('UNREACHABLE', `DNS server ${server} cannot be reached${detail ? `: ${detail}` : ''}`, {
    hint: 'check dns.server (HOST:PORT), that the server listens there, and that no firewall drops DNS (UDP and TCP)',
  });
}

function lastLines(text: string): string {
  return text.split('\n').filter((l) => l.trim()).slice(-3).join('; ').slice(-TAIL);
}
