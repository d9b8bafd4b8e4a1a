/**
 * DNS registration against a real BIND 9 (test/harness/bind9.ts): RFC 2136 updates signed with TSIG through
 * nsupdate, conflicts, force, exact removal, rollback across zones, and the TSIG secret never leaking.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planDnsRecords, type DnsRecord } from '../../src/core/dns/index.js';
import { NsupdateRegistrar } from '../../src/exec/dns/nsupdate-registrar.js';
import { HostProcessRunner, type CommandRunner, type RunOptions, type RunResult } from '../../src/exec/runner.js';
import { VmforgeError } from '../../src/errors.js';
import { startBind9, type Bind9 } from '../harness/bind9.js';
import { makeTestEnv, requireRoot } from '../harness/env.js';
import { createContext } from '../../src/app/context.js';
import { parseConfig } from '../../src/config/load.js';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

requireRoot();

const ZONE = 'vmforge.test';
const REV = '20.10.in-addr.arpa';
const REV6 = '0.0.0.0.0.0.0.0.0.2.0.0.0.0.d.f.ip6.arpa';
const LOCKED_REV = '30.10.in-addr.arpa';

/** Records every argv and output, so the test can prove the secret is in none of them. */
class CapturingRunner implements CommandRunner {
  readonly seen: string[] = [];
  private readonly inner = new HostProcessRunner();
  async run(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
    this.seen.push(argv.join(' '));
    try {
      const r = await this.inner.run(argv, opts);
      this.seen.push(r.stdout, r.stderr);
      return r;
    } catch (e) {
      this.seen.push(String(e));
      throw e;
    }
  }
}

let bind: Bind9;
const runner = new CapturingRunner();
const errors: string[] = [];
const reg = (keyFile = bind.keyFile, port = bind.server.port) => new NsupdateRegistrar(runner, { server: { host: '127.0.0.1', port }, keyFile, timeoutSeconds: 3 });
const records = (ip: string, extra: Partial<Parameters<typeof planDnsRecords>[0]> = {}): DnsRecord[] =>
  planDnsRecords({ name: 'web1', zone: ZONE, ipv4: ip, reverseZone: REV, ttl: 120, ...extra });

async function failure(p: Promise<unknown>): Promise<VmforgeError> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof VmforgeError)) throw e;
    errors.push(`${e.message}\n${e.hint ?? ''}\n${e.undoErrors.map(String).join('\n')}`);
    return e;
  }
  throw new Error('expected a failure');
}

beforeAll(async () => {
  bind = await startBind9({ zones: [ZONE, REV, REV6], lockedZones: [LOCKED_REV] });
}, 60_000);

afterAll(async () => {
  await bind?.stop();
});

describe('dns registration against BIND 9', () => {
  it('registers A and PTR, and a second time is a no-op', async () => {
    const r = await reg().register(records('10.20.0.5'));
    expect(r.added.map((x) => x.type)).toEqual(['A', 'PTR']);
    expect(await bind.dig('web1.vmforge.test', 'A')).toEqual(['10.20.0.5']);
    expect(await bind.dig('-x', '10.20.0.5')).toEqual(['web1.vmforge.test.']);
    const again = await reg().register(records('10.20.0.5'));
    expect(again.added).toEqual([]);
    expect(again.present).toHaveLength(2);
  });

  it('refuses another address for the name, naming the record, and changes nothing', async () => {
    await bind.nsupdate([`zone ${ZONE}.`, 'update add web1.vmforge.test. 300 IN TXT "owner=ops"', 'send']);
    const e = await failure(reg().register(records('10.20.0.9')));
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toContain('web1.vmforge.test. A 10.20.0.5 exists');
    expect(await bind.dig('web1.vmforge.test', 'A')).toEqual(['10.20.0.5']);
    expect(await bind.dig('-x', '10.20.0.9')).toEqual([]);
  });

  it('refuses a reverse name that points elsewhere', async () => {
    const e = await failure(reg().register(planDnsRecords({ name: 'other', zone: ZONE, ipv4: '10.20.0.5', reverseZone: REV, ttl: 60 })));
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toContain('5.0.20.10.in-addr.arpa. PTR web1.vmforge.test. exists');
    expect(await bind.dig('other.vmforge.test', 'A')).toEqual([]);
  });

  it('replaces with force, then unregister removes exactly what was added', async () => {
    const recs = records('10.20.0.9');
    const r = await reg().register(recs, { force: true });
    expect(r.replaced.map((c) => c.existing.map((a) => `${a.type} ${a.value}`))).toEqual([['A 10.20.0.5']]);
    expect(await bind.dig('web1.vmforge.test', 'A')).toEqual(['10.20.0.9']);
    expect(await bind.dig('-x', '10.20.0.9')).toEqual(['web1.vmforge.test.']);
    await reg().unregister(recs);
    expect(await bind.dig('web1.vmforge.test', 'A')).toEqual([]);
    expect(await bind.dig('-x', '10.20.0.9')).toEqual([]);
    expect(await bind.dig('web1.vmforge.test', 'TXT')).toEqual(['"owner=ops"']);
    // The old address's PTR is a different name: force does not touch it. Clean it up, then prove idempotence.
    await reg().unregister(records('10.20.0.5'));
    expect(await bind.dig('-x', '10.20.0.5')).toEqual([]);
    await reg().unregister(recs);
  });

  it('registers AAAA and the ip6.arpa PTR', async () => {
    const recs = planDnsRecords({ name: 'v6', zone: ZONE, ipv4: '10.20.0.6', reverseZone: REV, ipv6: 'fd00:20::6', ipv6Prefix: 64, ttl: 60 });
    await reg().register(recs);
    expect(await bind.dig('v6.vmforge.test', 'AAAA')).toEqual(['fd00:20::6']);
    expect(await bind.dig('-x', 'fd00:20::6')).toEqual(['v6.vmforge.test.']);
    expect((await reg().lookup('v6.vmforge.test')).map((a) => a.type).sort()).toEqual(['A', 'AAAA']);
    await reg().unregister(recs);
    expect(await bind.dig('v6.vmforge.test', 'AAAA')).toEqual([]);
  });

  it('undoes the forward records when the reverse zone refuses the update', async () => {
    const recs = planDnsRecords({ name: 'rb', zone: ZONE, ipv4: '10.30.0.7', reverseZone: LOCKED_REV, ttl: 60 });
    const e = await failure(reg().register(recs));
    expect(e.code).toBe('FORBIDDEN');
    expect(e.message).toContain(`zone ${LOCKED_REV}.`);
    expect(e.hint).toMatch(/update-policy/);
    expect(await bind.dig('rb.vmforge.test', 'A')).toEqual([]);
  });

  it('an undo stored with a wrong dns.reverseZone completes once the config is fixed; recover --drop abandons one that cannot', async () => {
    const env = await makeTestEnv();
    const dnsYaml = (rev: string) => `dns:\n  server: 127.0.0.1:${bind.server.port}\n  zone: ${ZONE}\n${rev ? `  reverseZone: ${rev}\n` : ''}  keyFile: ${bind.keyFile}\n  ttl: 60\n`;
    const setConfig = async (rev: string) => writeFile(env.configPath, `${(await readFile(env.configPath, 'utf8')).replace(/^dns:\n( {2}.*\n)*/m, '')}${dnsYaml(rev)}`);
    try {
      // A PTR really in the server's reverse zone, and an undo record that names a zone the server does not hold
      // (what a build stores when dns.reverseZone says 10.in-addr.arpa).
      const good = records('10.20.0.44', { name: 'undo1' });
      await reg().register(good);
      expect(await bind.dig('-x', '10.20.0.44')).toEqual(['undo1.vmforge.test.']);
      const wrong = good.map((r) => (r.type === 'PTR' ? { ...r, zone: '10.in-addr.arpa.' } : r));
      await setConfig('10.in-addr.arpa');
      const ctx = await createContext({ config: parseConfig(await readFile(env.configPath, 'utf8'), env.configPath) });
      const settings = { server: `127.0.0.1:${bind.server.port}`, keyFile: bind.keyFile };
      const stuck = async (vm: string, recs: DnsRecord[]) => {
        const id = await ctx.jobs.start('build', vm);
        await ctx.jobs.appendUndo(id, 'dns.register', { kind: 'dns.remove', settings, records: recs });
        await ctx.jobs.finish(id, 'undo-failed', 'test');
        return id;
      };
      const job1 = await stuck('undo1', wrong);

      const r1 = await env.cli(['recover']);
      expect(r1.exitCode, r1.stderr).toBe(1);
      expect(r1.stdout).toContain(`job ${job1} (build undo1): undid 0 change(s); failed:`);
      expect(r1.stdout).toContain(`or give up on it with 'vmforge recover --drop ${job1}'`);

      await setConfig(REV);
      const r2 = await env.cli(['recover']);
      expect(r2.exitCode, `${r2.stdout}${r2.stderr}`).toBe(0);
      expect(r2.stdout).toContain(`job ${job1} (build undo1): undid 1 change(s)`);
      expect(await bind.dig('-x', '10.20.0.44')).toEqual([]);
      expect(await bind.dig('undo1.vmforge.test', 'A')).toEqual([]);

      // A record whose zone no setting names any more: it cannot complete; --drop gives it up and says what.
      const job2 = await stuck('undo2', [{ zone: 'nowhere.invalid.', name: 'x.nowhere.invalid.', type: 'A', value: '10.20.0.45', ttl: 60 }]);
      expect((await env.cli(['recover'])).exitCode).toBe(1);
      const d = await env.cli(['recover', '--drop', String(job2)]);
      expect(d.exitCode, d.stderr).toBe(0);
      expect(d.stdout).toBe(`abandoned job ${job2} (build undo2): 1 change(s) were NOT undone; clean them up by hand:\n  - remove DNS records x.nowhere.invalid. A`);
      const after = await env.cli(['recover']);
      expect([after.exitCode, after.stdout]).toEqual([0, 'nothing to recover']);
      const again = await env.cli(['recover', '--drop', String(job2)]);
      expect(again.exitCode).toBe(4);
      expect(again.stderr).toMatch(/^error: job \d+ has nothing left for recover to undo/m);
      await ctx.close();
    } finally {
      await env.cleanup();
    }
  });

  it('refuses a wrong key with a clear error and changes nothing', async () => {
    const wrong = join(bind.dir, 'wrong.key');
    const text = (await execa('tsig-keygen', ['-a', 'hmac-sha256', bind.keyName])).stdout;
    await writeFile(wrong, `${text}\n`, { mode: 0o600 });
    const wrongSecret = /secret "([^"]+)"/.exec(text)?.[1] as string;
    const e = await failure(reg(wrong).register(records('10.20.0.11')));
    expect(e.code, e.message).toBe('UNAUTHORIZED');
    expect(e.message).toContain(`TSIG key '${bind.keyName}'`);
    expect(`${e.message}${e.hint}`).not.toContain(wrongSecret);
    // Updates with the wrong key are rejected too (not only the lookups that come first).
    const u = await failure(reg(wrong).unregister(records('10.20.0.11')));
    expect(u.code, u.message).toBe('UNAUTHORIZED');
    expect(await bind.dig('web1.vmforge.test', 'A')).toEqual([]);
    for (const s of [...runner.seen, ...errors]) expect(s).not.toContain(wrongSecret);
  });

  it('says when the server cannot be reached', async () => {
    const e = await failure(reg(bind.keyFile, 1).register(records('10.20.0.12')));
    expect(e.code).toBe('UNREACHABLE');
    expect(e.message).toContain('127.0.0.1:1');
  });

  it('never showed the secret in argv, tool output or errors', () => {
    expect(runner.seen.some((s) => s.includes('nsupdate') && s.includes(`-k ${bind.keyFile}`))).toBe(true);
    for (const s of [...runner.seen, ...errors]) expect(s).not.toContain(bind.secret);
  });
});
