import { describe, expect, it } from 'vitest';
import { errorCode } from '../../../test/harness/error-code.js';
import { matchGolden } from '../../../test/harness/golden.js';
import { KEYS } from '../../../test/harness/ssh-keys.js';
import {
  ecdsaP256PublicBlob,
  ed25519PublicBlob,
  opensshEd25519PrivateKey,
  publicKeyLine,
  rsaPublicBlob,
  sshMpint,
  sshString,
  sshUint32,
} from './openssh-format.js';

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');


/** The wire fields of a .pub line's blob, after the algorithm name. */
function fields(line: string): Uint8Array[] {
  const blob = new Uint8Array(Buffer.from(line.split(' ')[1]!, 'base64'));
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const out: Uint8Array[] = [];
  for (let at = 0; at < blob.length; ) {
    const len = view.getUint32(at);
    out.push(blob.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return out.slice(1);
}

/** RFC 8032 7.1, TEST 1: secret key (the seed) and the public key it gives. */
const RFC8032_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const RFC8032_PUB = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';

describe('SSH wire encoding', () => {
  it('writes uint32 and strings big-endian with a length', () => {
    expect(toHex(sshUint32(0x01020304))).toBe('01020304');
    expect(toHex(sshString('none'))).toBe('000000046e6f6e65');
    expect(toHex(sshString(new Uint8Array()))).toBe('00000000');
    expect(errorCode(() => sshUint32(2 ** 32))).toBe('INVALID_INPUT');
  });

  it('writes mpints by RFC 4251 5: no leading zeros, a zero byte before a set top bit, zero as empty', () => {
    // RFC 4251's own examples (as positive numbers).
    expect(toHex(sshMpint(hex('')))).toBe('00000000');
    expect(toHex(sshMpint(hex('000000')))).toBe('00000000');
    expect(toHex(sshMpint(hex('09a378f9b2e332a7')))).toBe('0000000809a378f9b2e332a7');
    expect(toHex(sshMpint(hex('80')))).toBe('000000020080');
    expect(toHex(sshMpint(hex('0000010001')))).toBe('00000003010001');
    expect(toHex(sshMpint(hex('7f')))).toBe('000000017f');
  });

  it('re-encodes ssh-keygen public keys byte for byte from their numbers', () => {
    const [edPub] = fields(KEYS.ed25519);
    expect(publicKeyLine(ed25519PublicBlob(edPub!), 'root@web01')).toBe(KEYS.ed25519);

    const [, point] = fields(KEYS.ecdsa);
    expect(point![0]).toBe(4);
    expect(publicKeyLine(ecdsaP256PublicBlob(point!.subarray(1, 33), point!.subarray(33)), 'root@web01')).toBe(KEYS.ecdsa);

    const [e, n] = fields(KEYS.rsa);
    // n's top bit is set: the wire form carries a 0x00 that the number itself does not have.
    expect(n![0]).toBe(0);
    expect(publicKeyLine(rsaPublicBlob(e!, n!.subarray(1)), 'root@web01')).toBe(KEYS.rsa);
    expect(publicKeyLine(rsaPublicBlob(hex('00010001'), n!), 'root@web01')).toBe(KEYS.rsa);
  });

  it('leaves the comment out when there is none, and refuses wrong sizes', () => {
    expect(publicKeyLine(ed25519PublicBlob(hex(RFC8032_PUB)), '')).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea');
    expect(errorCode(() => ed25519PublicBlob(new Uint8Array(31)))).toBe('INVALID_INPUT');
    expect(errorCode(() => ecdsaP256PublicBlob(new Uint8Array(32), new Uint8Array(33)))).toBe('INVALID_INPUT');
    expect(errorCode(() => publicKeyLine(hex('000000ff41'), ''))).toBe('INVALID_INPUT');
  });
});

describe('OpenSSH Ed25519 private key file', () => {
  const input = { seed: hex(RFC8032_SEED), publicKey: hex(RFC8032_PUB), comment: 'root@web01', checkInt: 0x5eed1234 };

  it('matches the known answer (checked once with ssh-keygen -y; the exec tests check it again)', () => {
    matchGolden(import.meta.dirname, 'ed25519-rfc8032-1.key', opensshEd25519PrivateKey(input));
  });

  it('has the layout of PROTOCOL.key: magic, none/none, one key, equal check ints, seed || pub, padding 1, 2, 3...', () => {
    const text = opensshEd25519PrivateKey(input);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('-----BEGIN OPENSSH PRIVATE KEY-----');
    expect(lines.at(-1)).toBe('-----END OPENSSH PRIVATE KEY-----');
    const body = lines.slice(1, -1);
    expect(body.slice(0, -1).every((l) => l.length === 70)).toBe(true);
    expect(body.at(-1)!.length).toBeLessThanOrEqual(70);
    const bytes = new Uint8Array(Buffer.from(body.join(''), 'base64'));
    const b = Buffer.from(bytes);
    expect(b.subarray(0, 15).toString('latin1')).toBe('openssh-key-v1\0');
    const pubBlob = ed25519PublicBlob(input.publicKey);
    const head = Buffer.concat([sshString('none'), sshString('none'), sshString(''), sshUint32(1), sshString(pubBlob)]);
    expect(b.subarray(15, 15 + head.length).equals(head)).toBe(true);
    const privLen = b.readUInt32BE(15 + head.length);
    const priv = b.subarray(19 + head.length);
    expect(priv.length).toBe(privLen);
    expect(privLen % 8).toBe(0);
    expect(priv.readUInt32BE(0)).toBe(0x5eed1234);
    expect(priv.readUInt32BE(4)).toBe(0x5eed1234);
    const expected = Buffer.concat([
      sshString('ssh-ed25519'),
      sshString(input.publicKey),
      sshString(Buffer.concat([input.seed, input.publicKey])),
      sshString('root@web01'),
    ]);
    expect(priv.subarray(8, 8 + expected.length).equals(expected)).toBe(true);
    const pad = priv.subarray(8 + expected.length);
    expect([...pad]).toEqual(Array.from({ length: pad.length }, (_, i) => i + 1));
  });

  it('pads to 8 bytes whatever the comment length, and leaves the seed it was given alone', () => {
    for (let n = 1; n <= 9; n++) {
      const text = opensshEd25519PrivateKey({ ...input, comment: 'x'.repeat(n) });
      const b = Buffer.from(text.split('\n').slice(1, -2).join(''), 'base64');
      // magic, "none", "none", "", key count, public blob (51 bytes), then the private section's length.
      const privStart = 15 + 8 + 8 + 4 + 4 + (4 + 51) + 4;
      expect(b.readUInt32BE(privStart - 4) % 8).toBe(0);
      expect(b.length).toBe(privStart + b.readUInt32BE(privStart - 4));
    }
    expect(toHex(input.seed)).toBe(RFC8032_SEED);
    expect(errorCode(() => opensshEd25519PrivateKey({ ...input, seed: new Uint8Array(64) }))).toBe('INVALID_INPUT');
  });
});
