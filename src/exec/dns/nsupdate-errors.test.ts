import { describe, expect, it } from 'vitest';
import { digFailure, nsupdateFailure } from './nsupdate-errors.js';

const key = { name: 'vmforge', algorithm: 'hmac-sha256', secret: 'U2VjcmV0U2VjcmV0U2VjcmV0' };
const ctx = { server: '192.0.2.53:53', zone: 'example.com.', keyName: 'vmforge', key };

describe('nsupdate failures', () => {
  const cases: [string, string, RegExp][] = [
    ['; TSIG error with server: tsig indicates error\nupdate failed: NOTAUTH(BADSIG)', 'UNAUTHORIZED', /rejected TSIG key 'vmforge'.*BADSIG/],
    ['update failed: NOTAUTH(BADKEY)', 'UNAUTHORIZED', /BADKEY/],
    ['update failed: NOTAUTH', 'INVALID_CONFIG', /not authoritative for example.com./],
    ['update failed: REFUSED', 'FORBIDDEN', /refused the update of zone example.com. on 192.0.2.53:53/],
    ['update failed: YXRRSET', 'CONFLICT', /changed while registering \(YXRRSET\)/],
    ['update failed: NXRRSET', 'CONFLICT', /NXRRSET/],
    ['update failed: SERVFAIL', 'COMMAND_FAILED', /SERVFAIL/],
    ['; Communication with 192.0.2.53#53 failed: timed out', 'UNREACHABLE', /cannot be reached: ; Communication with 192.0.2.53#53 failed: timed out/],
    ['; Communication with 127.0.0.1#1 failed: operation canceled', 'UNREACHABLE', /cannot be reached/],
    ['could not read key from /k.key: file not found', 'INVALID_CONFIG', /could not use dns.keyFile/],
    ['something odd U2VjcmV0U2VjcmV0U2VjcmV0', 'COMMAND_FAILED', /something odd \[secret\]/],
  ];
  it.each(cases)('%s -> %s', (output, code, msg) => {
    const e = nsupdateFailure(output, ctx);
    expect(e.code).toBe(code);
    expect(e.message).toMatch(msg);
    expect(`${e.message} ${e.hint}`).not.toContain(key.secret);
  });
  it('maps dig statuses', () => {
    expect(digFailure('NOTAUTH', true, '', { ...ctx, name: 'a.' }).code).toBe('UNAUTHORIZED');
    expect(digFailure('REFUSED', false, '', { ...ctx, name: 'a.' }).code).toBe('FORBIDDEN');
    expect(digFailure(null, false, ';; connection timed out; no servers could be reached', { ...ctx, name: 'a.' }).code).toBe('UNREACHABLE');
    expect(digFailure('SERVFAIL', false, '', { ...ctx, name: 'a.' }).message).toBe('DNS server 192.0.2.53:53 answered SERVFAIL for a.');
  });
});
