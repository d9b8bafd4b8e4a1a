/**
 * DnsRegistrar on BIND's client tools: `nsupdate -k KEYFILE` for RFC 2136 updates signed with TSIG (the script
 * on stdin), `dig -k KEYFILE` for lookups. The key file's path is the only thing about the key on any argv; the
 * secret is read only to scrub it from whatever the tools print.
 */
import { readFile } from 'node:fs/promises';
import {
  describeConflict,
  formatRecord,
  nsupdateScript,
  parseDigOutput,
  parseTsigKeyFile,
  planRegistration,
  planRemoval,
  redactSecret,
  type DnsAnswer,
  type DnsRecord,
  type DnsRrType,
  type TsigKey,
  type ZoneUpdate,
} from '../../core/dns/index.js';
import { VmforgeError } from '../../errors.js';
import type { CommandRunner } from '../runner.js';
import { digFailure, nsupdateFailure, type FailureContext } from './nsupdate-errors.js';
import type { DnsRegisterResult, DnsRegistrar } from './registrar.js';

export interface NsupdateRegistrarOptions {
  server: { host: string; port: number };
  /** BIND key file (tsig-keygen output). */
  keyFile: string;
  /** Per-message timeout for nsupdate and dig, seconds; default 10. */
  timeoutSeconds?: number;
}

const LOOKUP_TYPES = ['A', 'AAAA', 'PTR', 'CNAME'] as const;

export class NsupdateRegistrar implements DnsRegistrar {
  private key: TsigKey | null = null;
  private readonly timeout: number;
  private readonly serverText: string;

  constructor(
    private readonly runner: CommandRunner,
    private readonly opts: NsupdateRegistrarOptions,
  ) {
    this.timeout = opts.timeoutSeconds ?? 10;
    const h = opts.server.host.includes(':') ? `[${opts.server.host}]` : opts.server.host;
    this.serverText = `${h}:${opts.server.port}`;
  }

  async register(records: readonly DnsRecord[], opts: { force?: boolean; signal?: AbortSignal } = {}): Promise<DnsRegisterResult> {
    await this.loadKey();
    const observed: DnsAnswer[] = [];
    for (const name of new Set(records.map((r) => r.name))) observed.push(...(await this.lookup(name, LOOKUP_TYPES, opts)));
    const plan = planRegistration(records, observed, opts);
    if (plan.conflicts.length) {
      const what = plan.conflicts.map(describeConflict).join('; ');
      const forcible = plan.conflicts.every((c) => c.existing.every((a) => a.type !== 'CNAME'));
      throw new VmforgeError('CONFLICT', `DNS: ${what}; not registering ${plan.conflicts.map((c) => formatRecord(c.record)).join(', ')}`, {
        hint: forcible
          ? 'pick another name or address, remove the record, or force to replace it'
          : 'a CNAME owns that name: remove it first (vmforge does not delete CNAMEs)',
      });
    }
    const done: ZoneUpdate[] = [];
    try {
      for (const zu of plan.updates) {
        await this.send(zu, opts.signal);
        done.push(zu);
      }
    } catch (e) {
      // The zones are separate messages: undo the ones that went through so a failure leaves nothing behind.
      for (const zu of done.reverse()) {
        try {
          await this.unregister(zu.records);
        } catch (u) {
          if (e instanceof VmforgeError && u instanceof Error) e.undoErrors.push(u);
        }
      }
      throw e;
    }
    const replaced = opts.force
      ? records.flatMap((r) => {
          const existing = observed.filter((a) => a.name === r.name && a.type === r.type && !plan.present.includes(r));
          return existing.length ? [{ record: r, existing }] : [];
        })
      : [];
    return { added: plan.updates.flatMap((u) => u.records), present: plan.present, replaced };
  }

  async unregister(records: readonly DnsRecord[], opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.loadKey();
    for (const zu of planRemoval(records)) await this.send(zu, opts.signal);
  }

  async lookup(name: string, types: readonly (DnsRrType | 'CNAME' | 'TXT' | 'SOA')[] = LOOKUP_TYPES, opts: { signal?: AbortSignal } = {}): Promise<DnsAnswer[]> {
    await this.loadKey();
    const owner = name.toLowerCase().endsWith('.') ? name.toLowerCase() : `${name.toLowerCase()}.`;
    // One dig, one query per type (dig takes several NAME TYPE pairs); the global options come first.
    const argv = ['dig', `@${this.opts.server.host}`, '-p', String(this.opts.server.port), '-k', this.opts.keyFile];
    argv.push('+norecurse', '+noall', '+comments', '+answer', `+time=${this.timeout}`, '+tries=2');
    for (const type of types) argv.push(owner, type);
    const res = await this.runner.run(argv, { okCodes: [1, 9, 10], signal: opts.signal, timeoutMs: (this.timeout * 3 * types.length + 5) * 1000 });
    const parsed = parseDigOutput(res.stdout);
    const ok = res.exitCode === 0 && !parsed.tsigError && parsed.statuses.length === types.length && (parsed.status === 'NOERROR' || parsed.status === 'NXDOMAIN');
    if (!ok) throw digFailure(parsed.status, parsed.tsigError, `${res.stderr}\n${res.stdout}`, { ...this.ctx(), name: owner });
    // An A query at a CNAME also returns the CNAME (and maybe its target): keep what is at the owner name.
    const out = parsed.answers.filter((a) => a.name === owner && (types as readonly string[]).includes(a.type));
    return dedupe(out);
  }

  private async send(zu: ZoneUpdate, signal?: AbortSignal): Promise<void> {
    const argv = ['nsupdate', '-v', '-t', String(this.timeout), '-k', this.opts.keyFile];
    let res;
    try {
      res = await this.runner.run(argv, { input: nsupdateScript(this.opts.server, zu), okCodes: [1, 2], signal, timeoutMs: (this.timeout * 3 + 5) * 1000 });
    } catch (e) {
      throw this.scrub(e);
    }
    if (res.exitCode !== 0) throw nsupdateFailure(`${res.stderr}\n${res.stdout}`, { ...this.ctx(), zone: zu.zone });
  }

  private ctx(): FailureContext {
    return { server: this.serverText, keyName: this.key?.name ?? '?', key: this.key };
  }

  private scrub(e: unknown): unknown {
    if (e instanceof VmforgeError) {
      const clean = new VmforgeError(e.code, redactSecret(e.message, this.key), { hint: e.hint === undefined ? undefined : redactSecret(e.hint, this.key) });
      clean.undoErrors = e.undoErrors;
      return clean;
    }
    return e;
  }

  /** Reads the key once: a bad key file fails before anything is sent. */
  private async loadKey(): Promise<TsigKey> {
    if (this.key) return this.key;
    let text: string;
    try {
      text = await readFile(this.opts.keyFile, 'utf8');
    } catch (e) {
      throw new VmforgeError('INVALID_CONFIG', `cannot read dns.keyFile ${this.opts.keyFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
        hint: 'the file must exist and be readable by root (keep it 0600)',
      });
    }
    this.key = parseTsigKeyFile(text, this.opts.keyFile);
    return this.key;
  }
}

function dedupe(answers: DnsAnswer[]): DnsAnswer[] {
  const seen = new Set<string>();
  return answers.filter((a) => {
    const k = `${a.name} ${a.type} ${a.value}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
