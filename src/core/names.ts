/**
 * Name validation. A VM name becomes a host name, a DNS label, a libvirt domain name and part of file names on
 * the host, so it must be one RFC 1123 label in lower case: the strictest of those uses, and nothing in it can
 * mean anything to a shell, a path or a terminal.
 */
import { invalidInput } from '../errors.js';

const MAX_LABEL = 63;
const MAX_FQDN = 253;
const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const SHELL_META = new Set([...';&|$`<>()\'"\\*?!{}[]~#']);
const ALLOWED_HINT = "use only lower-case letters a-z, digits 0-9 and '-' (one RFC 1123 label)";

/** Validates a VM name; returns it unchanged. Upper case is rejected, not folded: the name is an identifier. */
export function validateVmName(name: string): string {
  return checkLabel(name, 'VM name', { short: true });
}

/** Validates a host name (a single label, no domain). Same rules as a VM name. */
export function validateHostname(name: string, what = 'hostname'): string {
  return checkLabel(name, what, { short: true });
}

/** Validates a DNS domain ('example.com', 'lab.example.org'), without a trailing dot. */
export function validateDomainName(domain: string, what = 'domain'): string {
  if (domain.length === 0) throw invalidInput(`${what} is empty`);
  if (domain.endsWith('.')) {
    throw invalidInput(`${what} ${quoteForMessage(domain)} ends with '.'`, `write it without the trailing dot`);
  }
  // The host label and its dot come on top of the domain, so leave room for the longest label.
  if (domain.length > MAX_FQDN - MAX_LABEL - 1) {
    throw invalidInput(
      `${what} is ${domain.length} characters long; the limit is ${MAX_FQDN - MAX_LABEL - 1}`,
      `a full host name (label + '.' + domain) must fit in ${MAX_FQDN} characters`,
    );
  }
  const labels = domain.split('.');
  labels.forEach((label, i) => {
    checkLabel(label, `${what} ${quoteForMessage(domain)}: label ${i + 1}`, { short: i === labels.length - 1 });
  });
  return domain;
}

/**
 * Checks one label. `short` forbids all-digit labels: for a host name or a top-level domain they read as numbers
 * (inet_aton('1234') is an IPv4 address); inner domain labels may be numeric.
 */
function checkLabel(name: string, what: string, opts: { short: boolean }): string {
  if (name.length === 0) throw invalidInput(`${what} is empty`, ALLOWED_HINT);
  const bad = badCharacters(name);
  if (bad.length > 0) {
    const list = bad.map((b) => `${b.shown} (${b.why})`).join(', ');
    throw invalidInput(`${what} ${quoteForMessage(name)} contains ${list}`, hintFor(name, bad[0]!.kind));
  }
  if (name.length > MAX_LABEL) {
    throw invalidInput(`${what} is ${name.length} characters long; the limit is ${MAX_LABEL}`, `use a shorter name`);
  }
  if (name.startsWith('-')) {
    throw invalidInput(`${what} ${quoteForMessage(name)} starts with '-'`, `start with a letter or digit; a leading '-' reads as a command-line option`);
  }
  if (name.endsWith('-')) throw invalidInput(`${what} ${quoteForMessage(name)} ends with '-'`, `end with a letter or digit`);
  if (opts.short && /^[0-9]+$/.test(name)) {
    throw invalidInput(`${what} ${quoteForMessage(name)} is all digits`, `add a letter (like 'vm${name}'): an all-digit name reads as a number or address`);
  }
  // Every rule above is a special case of this one; it stays as the last word in case they drift.
  if (!LABEL_RE.test(name)) throw invalidInput(`${what} ${quoteForMessage(name)} is not a valid RFC 1123 label`, ALLOWED_HINT);
  return name;
}

type BadKind = 'control' | 'non-ascii' | 'space' | 'slash' | 'dot' | 'underscore' | 'upper' | 'shell' | 'other';
interface BadChar {
  kind: BadKind;
  shown: string;
  why: string;
}

function badCharacters(name: string): BadChar[] {
  const seen = new Set<string>();
  const out: BadChar[] = [];
  for (const ch of name) {
    if (/[a-z0-9-]/.test(ch) || seen.has(ch)) continue;
    seen.add(ch);
    out.push(classify(ch));
  }
  // Report upper case once, not letter by letter.
  const firstUpper = out.findIndex((b) => b.kind === 'upper');
  return out.filter((b, i) => b.kind !== 'upper' || i === firstUpper).map((b) => (b.kind === 'upper' ? { ...b, shown: 'upper-case letters' } : b));
}

function classify(ch: string): BadChar {
  const cp = ch.codePointAt(0)!;
  const code = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  if (cp < 0x20 || cp === 0x7f) return { kind: 'control', shown: code, why: 'a control character' };
  // Never echo non-ASCII: bidi overrides and look-alikes make the message lie about what was typed.
  if (cp > 0x7e) return { kind: 'non-ascii', shown: code, why: 'not ASCII' };
  if (ch === ' ') return { kind: 'space', shown: 'a space', why: 'whitespace' };
  if (ch === '/') return { kind: 'slash', shown: "'/'", why: 'a name must not be a path' };
  if (ch === '.') return { kind: 'dot', shown: "'.'", why: 'dots separate DNS labels; a name is one label' };
  if (ch === '_') return { kind: 'underscore', shown: "'_'", why: 'not allowed in host names' };
  if (/[A-Z]/.test(ch)) return { kind: 'upper', shown: `'${ch}'`, why: 'names are lower case' };
  if (SHELL_META.has(ch)) return { kind: 'shell', shown: `'${ch}'`, why: 'a shell metacharacter' };
  return { kind: 'other', shown: `'${ch}'`, why: 'not allowed' };
}

function hintFor(name: string, kind: BadKind): string {
  switch (kind) {
    case 'upper': {
      const lower = name.toLowerCase();
      return badCharacters(lower).length === 0 ? `use lower case: ${quoteForMessage(lower)}` : ALLOWED_HINT;
    }
    case 'dot': {
      // Suggest the first label only when it is a valid name itself ('..' or '.x' has none to suggest).
      const first = name.split('.')[0] ?? '';
      return first && LABEL_RE.test(first) ? `give the short host name only, without a domain (like ${quoteForMessage(first)})` : ALLOWED_HINT;
    }
    case 'underscore':
      return `use '-' instead of '_'`;
    case 'non-ascii':
      return `${ALLOWED_HINT}; internationalized names are not supported`;
    case 'control':
    case 'space':
    case 'slash':
    case 'shell':
    case 'other':
      return ALLOWED_HINT;
  }
}

/** Quotes untrusted text for an error message: printable ASCII as is, everything else escaped, long text cut. */
export function quoteForMessage(text: string, max = 80): string {
  let out = '';
  let n = 0;
  for (const ch of text) {
    if (n++ >= max) {
      out += '…';
      break;
    }
    const cp = ch.codePointAt(0)!;
    if (cp >= 0x20 && cp <= 0x7e) out += ch === "'" || ch === '\\' ? `\\${ch}` : ch;
    else out += `\\u{${cp.toString(16)}}`;
  }
  return `'${out}'`;
}
