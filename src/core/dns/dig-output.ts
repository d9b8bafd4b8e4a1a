/**
 * Reading `dig +noall +comments +answer` output: the response status and the answer records. Only what a
 * registration needs; anything unparsable is left out rather than guessed at.
 */
import type { DnsAnswer } from './change-set.js';

export interface DigResult {
  /** NOERROR, NXDOMAIN, REFUSED, NOTAUTH, SERVFAIL...; null when no response header was printed. */
  status: string | null;
  /** One status per response (dig prints one header per query on its command line). */
  statuses: string[];
  /** dig could not verify the response's TSIG (wrong key or secret). */
  tsigError: boolean;
  answers: DnsAnswer[];
}

export function parseDigOutput(text: string): DigResult {
  const statuses = [...text.matchAll(/->>HEADER<<- opcode: \w+, status: ([A-Z]+)/g)].map((m) => m[1] as string);
  // The worst one wins: any status other than NOERROR/NXDOMAIN is what the caller must report.
  const status = statuses.find((s) => s !== 'NOERROR' && s !== 'NXDOMAIN') ?? statuses[0] ?? null;
  const tsigError = /Couldn't verify signature|tsig indicates error|TSIG error/i.test(text);
  const answers: DnsAnswer[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith(';')) continue;
    const m = /^(\S+)\s+(\d+)\s+IN\s+([A-Z0-9]+)\s+(.+)$/.exec(line.trim());
    if (!m) continue;
    const type = m[3] as string;
    if (type === 'TSIG' || type === 'OPT' || type === 'RRSIG') continue;
    answers.push({ name: (m[1] as string).toLowerCase(), ttl: Number(m[2]), type, value: (m[4] as string).trim() });
  }
  return { status, statuses, tsigError, answers };
}
