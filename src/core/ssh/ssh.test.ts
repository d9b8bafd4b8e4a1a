import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { errorCode } from '../../../test/harness/error-code.js';
import { KEYS } from '../../../test/harness/ssh-keys.js';
import { parseStoredHostKeys, storedHostKey } from './host-keys.js';
import { knownHostsLines } from './known-hosts.js';
import { fingerprintLine, fingerprintOf, parsePublicKey } from './public-key.js';
import { sha256 } from './sha256.js';

/** What `ssh-keygen -l -f KEY.pub` printed for each of KEYS. */
const KEYGEN_L: [string, string][] = [
  [KEYS.ed25519, '256 SHA256:msXUgXU2OKc7Swj2F1Z/r5yu4h3A7Gjtxjom9rGzNtw root@web01 (ED25519)'],
  [KEYS.ecdsa, '256 SHA256:RMeieOqmK/eRQDquvTzvsnvt0csF6vD0xBe/FtPN4Ps root@web01 (ECDSA)'],
  [KEYS.rsa, '3072 SHA256:e32bgWAZk8L8KSkSq6ZvE+atz74fiPJwIv660oa5O90 root@web01 (RSA)'],
  [
    'ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBLRqXaFmg2abrvoBmNYqQTGFEPGojGUhEbpNnrGx3hirwOPYspc/KVSBEW6mNN/yCyKBjE8Hjnbq5jaXAjAVstbjaYtMJhMQC4e0m/xDr7BoX77o1fhGKzahzyusTZRrmw== x',
    '384 SHA256:d1L46k/vnLtMJEnICD8nLoZDZkoERvdEQqNvJgdJHIw x (ECDSA)',
  ],
  [
    'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCwhdJV5vl/Fe7SIgP/J+4ieZcVEss42IMfO+Dzs2Kqkmq2yWqoVn16TmNy5OKtFA8AZY5gOU+LeYDh4ylkzz7IHqnd9YAitEBoYTA+uQBYg1z0gpTpQa+9xKVo0tbxGoaSWr4zk35WZETMxGbdXaj6wEQAClCjpiN5xmzTNeylxQ== ',
    '1024 SHA256:r6IC8l26vlG0funQxVYHmBMsYc8enn9HKtPszfVFdY8 no comment (RSA)',
  ],
];

describe('sha256', () => {
  it('matches node:crypto at every padding boundary', () => {
    for (const n of [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 4099]) {
      const data = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
      expect(Buffer.from(sha256(data)).toString('hex'), `${n} bytes`).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });

  it('hashes a subarray by its own bytes only', () => {
    const big = new Uint8Array(100).map((_, i) => i);
    const sub = big.subarray(10, 30);
    expect(Buffer.from(sha256(sub)).toString('hex')).toBe(createHash('sha256').update(sub).digest('hex'));
  });
});

describe('public keys', () => {
  it.each(KEYGEN_L)('prints what ssh-keygen -l prints for %s', (key, line) => {
    expect(fingerprintLine(key)).toBe(line);
  });

  it('parses algorithm, base64 and comment', () => {
    const k = parsePublicKey(`  ${KEYS.ed25519} with spaces  `);
    expect(k.algorithm).toBe('ssh-ed25519');
    expect(k.comment).toBe('root@web01 with spaces');
    expect(fingerprintOf(k)).toBe('SHA256:msXUgXU2OKc7Swj2F1Z/r5yu4h3A7Gjtxjom9rGzNtw');
  });

  it('refuses what is not an OpenSSH public key', () => {
    const b64 = KEYS.ed25519.split(' ')[1]!;
    expect(errorCode(() => parsePublicKey('-----BEGIN OPENSSH PRIVATE KEY-----'))).toBe('INVALID_INPUT');
    expect(errorCode(() => parsePublicKey(`ssh-rsa ${b64}`))).toBe('INVALID_INPUT'); // mislabelled
    expect(errorCode(() => parsePublicKey(`ssh-ed25519 ${b64.slice(0, -8)}`))).toBe('INVALID_INPUT'); // truncated
    expect(errorCode(() => parsePublicKey(`ssh-ed25519 ${Buffer.concat([Buffer.from(b64, 'base64'), Buffer.from([0])]).toString('base64')}`))).toBe('INVALID_INPUT');
    expect(errorCode(() => parsePublicKey(`ssh-ed25519 ${b64}!`))).toBe('INVALID_INPUT');
    expect(errorCode(() => parsePublicKey(`ssh-ed25519 ${b64}\nssh-ed25519 ${b64}`))).toBe('INVALID_INPUT');
    const p384 = KEYGEN_L[3]![0].split(' ')[1]!;
    expect(errorCode(() => parsePublicKey(`ecdsa-sha2-nistp256 ${p384}`))).toBe('INVALID_INPUT');
  });
});

describe('stored host keys', () => {
  it('keep type, public line and fingerprint, and read back from JSON', () => {
    const keys = [storedHostKey('ed25519', KEYS.ed25519), storedHostKey('ecdsa', KEYS.ecdsa), storedHostKey('rsa', KEYS.rsa)];
    expect(keys[0]).toEqual({ type: 'ed25519', publicKey: KEYS.ed25519, fingerprint: 'SHA256:msXUgXU2OKc7Swj2F1Z/r5yu4h3A7Gjtxjom9rGzNtw' });
    expect(Object.keys(keys[1]!).sort()).toEqual(['fingerprint', 'publicKey', 'type']);
    expect(parseStoredHostKeys(JSON.stringify(keys))).toEqual(keys);
  });

  it('refuse a key of another type, and a record whose fingerprint does not match', () => {
    expect(errorCode(() => storedHostKey('rsa', KEYS.ed25519))).toBe('INVALID_INPUT');
    const tampered = JSON.stringify([{ ...storedHostKey('rsa', KEYS.rsa), fingerprint: 'SHA256:AAAA' }]);
    expect(errorCode(() => parseStoredHostKeys(tampered))).toBe('INVALID_INPUT');
    expect(errorCode(() => parseStoredHostKeys('{"type":"rsa"}'))).toBe('INVALID_INPUT');
    expect(errorCode(() => parseStoredHostKeys('[{"type":"dsa","publicKey":"x","fingerprint":"y"}]'))).toBe('INVALID_INPUT');
    expect(errorCode(() => parseStoredHostKeys('not json'))).toBe('INVALID_INPUT');
  });
});

describe('knownHostsLines', () => {
  const keys = [storedHostKey('ed25519', KEYS.ed25519), storedHostKey('ecdsa', KEYS.ecdsa)];

  it('writes one line per key for all names, without the comment', () => {
    expect(knownHostsLines(['web01', 'web01.example.com', '192.0.2.10'], keys)).toBe(
      `web01,web01.example.com,192.0.2.10 ${KEYS.ed25519.replace(/ root@web01$/, '')}\n` +
        `web01,web01.example.com,192.0.2.10 ${KEYS.ecdsa.replace(/ root@web01$/, '')}\n`,
    );
  });

  it('drops empty and repeated names, keeps IPv6 addresses as they are', () => {
    expect(knownHostsLines(['Web01', '', 'web01', '2001:db8::10'], keys.slice(0, 1))).toMatch(/^web01,2001:db8::10 ssh-ed25519 /);
    expect(knownHostsLines(['web01'], [])).toBe('');
  });

  it('refuses names known_hosts would read as patterns or several names', () => {
    for (const bad of ['*', 'web?', '!web01', 'a,b', 'a b', '[web01]:22', '']) {
      expect(errorCode(() => knownHostsLines([bad], keys)), bad).toBe('INVALID_INPUT');
    }
  });
});
