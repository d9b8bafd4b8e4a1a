/**
 * TSIG key files in BIND's format (`key "name" { algorithm hmac-sha256; secret "..."; };`, what tsig-keygen
 * prints). vmforge hands the file's path to nsupdate/dig and reads it only to know the key's name and
 * algorithm, and to redact the secret from anything those programs print.
 */
import { VmforgeError } from '../../errors.js';

export interface TsigKey {
  name: string;
  algorithm: string;
  /** Never log or print this: it is here only so output can be scrubbed of it. */
  secret: string;
}

/** Algorithms accepted for signing updates: HMAC-SHA-2 only (MD5 and SHA-1 are refused). */
export const TSIG_ALGORITHMS = ['hmac-sha256', 'hmac-sha384', 'hmac-sha512'] as const;

/** Parses the first key statement; `source` names the file in errors (the secret never appears in them). */
export function parseTsigKeyFile(text: string, source: string): TsigKey {
  const noComments = stripComments(text);
  const m = /key\s+"?([A-Za-z0-9._-]+)"?\s*\{([\s\S]*?)\}\s*;/.exec(noComments);
  const bad = (what: string) =>
    new VmforgeError('INVALID_CONFIG', `dns.keyFile ${source}: ${what}`, {
      hint: 'make it with: tsig-keygen -a hmac-sha256 NAME > FILE (BIND key format: key "NAME" { algorithm hmac-sha256; secret "..."; };)',
    });
  if (!m) throw bad('no key "NAME" { ... }; statement');
  const body = m[2] as string;
  const algorithm = /algorithm\s+"?([A-Za-z0-9-]+)"?\s*;/.exec(body)?.[1]?.toLowerCase();
  const secret = /secret\s+"([A-Za-z0-9+/=]+)"\s*;/.exec(body)?.[1];
  if (!algorithm) throw bad(`key "${m[1]}" has no algorithm`);
  if (!secret) throw bad(`key "${m[1]}" has no base64 secret`);
  if (!(TSIG_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw bad(`key "${m[1]}" uses ${algorithm}; use one of ${TSIG_ALGORITHMS.join(', ')}`);
  }
  return { name: (m[1] as string).toLowerCase(), algorithm, secret };
}

/** Replaces every occurrence of the key's secret in `text`. */
export function redactSecret(text: string, key: Pick<TsigKey, 'secret'> | null): string {
  if (!key || !key.secret) return text;
  return text.split(key.secret).join('[secret]');
}

/** Drops '#', '//' and C comments outside quoted strings (a base64 secret may well contain '//'). */
function stripComments(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; ) {
    const c = text[i] as string;
    if (c === '"') {
      const end = text.indexOf('"', i + 1);
      const stop = end < 0 ? text.length : end + 1;
      out += text.slice(i, stop);
      i = stop;
    } else if (c === '#' || text.startsWith('//', i)) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
