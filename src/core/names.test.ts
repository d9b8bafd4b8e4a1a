import { describe, expect, it } from 'vitest';
import { quoteForMessage, validateDomainName, validateHostname, validateVmName } from './names.js';
import { VmforgeError } from '../errors.js';

function rejection(name: string): VmforgeError {
  try {
    validateVmName(name);
  } catch (err) {
    expect(err).toBeInstanceOf(VmforgeError);
    expect((err as VmforgeError).code).toBe('INVALID_INPUT');
    return err as VmforgeError;
  }
  throw new Error(`expected ${JSON.stringify(name)} to be rejected`);
}

/** Nothing from a hostile name may reach a terminal unescaped. */
function expectPrintable(text: string | undefined): void {
  expect(text ?? '').toMatch(/^[\x20-\x7e…]*$/);
}

describe('validateVmName accepts RFC 1123 labels', () => {
  it.each(['a', 'web01', 'a-b', 'db-eu-1', '0a', 'a0', '1-2', 'xn--bcher-kva', 'a--b', 'x'.repeat(63)])('%s', (name) => {
    expect(validateVmName(name)).toBe(name);
  });
});

describe('validateVmName rejects hostile names with a clear message', () => {
  it.each([
    ['', /is empty/],
    ['a;rm -rf /', /shell metacharacter/],
    ['$(reboot)', /'\$' \(a shell metacharacter\)/],
    ['`id`', /'`' \(a shell metacharacter\)/],
    ['a|b', /'\|' \(a shell metacharacter\)/],
    ['a&b', /'&' \(a shell metacharacter\)/],
    ['a>b', /'>' \(a shell metacharacter\)/],
    ["a'b", /shell metacharacter/],
    ['a"b', /shell metacharacter/],
    ['a\\b', /shell metacharacter/],
    ['*', /shell metacharacter/],
    ['~root', /shell metacharacter/],
    ['a{b,c}', /shell metacharacter/],
    ['a b', /a space \(whitespace\)/],
    ['a\tb', /U\+0009 \(a control character\)/],
    ['a\nb', /U\+000A \(a control character\)/],
    ['a\0b', /U\+0000 \(a control character\)/],
    ['\x1b[31mred', /U\+001B \(a control character\)/],
    ['a\x7fb', /U\+007F/],
    ['../etc', /'\/' \(a name must not be a path\)/],
    ['a/b', /must not be a path/],
    ['/', /must not be a path/],
    ['.', /dots separate DNS labels/],
    ['..', /dots separate DNS labels/],
    ['web01.example.com', /dots separate DNS labels/],
    ['web_01', /'_' \(not allowed in host names\)/],
    ['Web01', /upper-case letters/],
    ['WEB', /upper-case letters/],
    ['café', /U\+00E9 \(not ASCII\)/],
    ['ｗｅｂ', /U\+FF57 \(not ASCII\)/],
    ['a\u202eb', /U\+202E/],
    ['\u212a8s', /U\+212A/], // Kelvin sign: lower-cases to an ASCII 'k'
    ['web🚀', /U\+1F680/],
    ['a:b', /':' \(not allowed\)/],
    ['a@b', /'@' \(not allowed\)/],
    ['a%b', /'%' \(not allowed\)/],
    ['a=b', /'=' \(not allowed\)/],
    ['a,b', /',' \(not allowed\)/],
    ['a+b', /'\+' \(not allowed\)/],
    ['-rf', /starts with '-'/],
    ['--help', /starts with '-'/],
    ['-', /starts with '-'/],
    ['a-', /ends with '-'/],
    ['12345', /all digits/],
    ['0', /all digits/],
    ['x'.repeat(64), /64 characters long; the limit is 63/],
    ['x'.repeat(10_000), /10000 characters long/],
  ])('%j', (name, message) => {
    const err = rejection(name);
    expect(err.message).toMatch(message);
    expect(err.hint).toBeTruthy();
    expectPrintable(err.message);
    expectPrintable(err.hint);
  });

  it('lists every distinct bad character once', () => {
    expect(rejection('a;b;c&d').message).toBe("VM name 'a;b;c&d' contains ';' (a shell metacharacter), '&' (a shell metacharacter)");
  });

  it('suggests the lower-case spelling when that is all that is wrong', () => {
    expect(rejection('Web01').hint).toBe("use lower case: 'web01'");
    expect(rejection('Web_01').hint).toMatch(/a-z, digits 0-9/);
  });

  it('suggests the short name for a dotted name', () => {
    expect(rejection('web01.example.com').hint).toMatch(/'web01'/);
  });

  it('suggests a letter for an all-digit name', () => {
    expect(rejection('42').hint).toMatch(/'vm42'/);
  });

  it('cuts very long names in messages', () => {
    const err = rejection(`${'x'.repeat(200)};`);
    expect(err.message.length).toBeLessThan(200);
    expect(err.message).toContain('…');
  });
});

describe('validateHostname', () => {
  it('uses the caller-supplied wording', () => {
    expect(() => validateHostname('A', 'guest hostname')).toThrow(/^guest hostname 'A'/);
    expect(validateHostname('web01')).toBe('web01');
  });
});

describe('validateDomainName', () => {
  it.each(['example.com', 'lab.example.org', '10.in-addr.arpa', 'a.b.c.d', 'xn--p1ai'])('accepts %s', (d) => {
    expect(validateDomainName(d)).toBe(d);
  });

  it.each([
    ['', /is empty/],
    ['example.com.', /ends with '\.'/],
    ['.example.com', /label 1 is empty/],
    ['a..b', /label 2 is empty/],
    ['Example.com', /upper-case/],
    ['exa_mple.com', /'_'/],
    ['a.123', /all digits/],
    ['-a.com', /starts with '-'/],
    [`${'a'.repeat(64)}.com`, /64 characters long/],
    [`${'a.'.repeat(95)}com`, /the limit is 189/],
    ['a.com;reboot', /shell metacharacter/],
  ])('rejects %j', (d, message) => {
    expect(() => validateDomainName(d)).toThrow(message);
  });
});

describe('quoteForMessage', () => {
  it('escapes quotes, backslashes and anything not printable ASCII', () => {
    expect(quoteForMessage("a'b\\c\x1b\u202e")).toBe("'a\\'b\\\\c\\u{1b}\\u{202e}'");
  });
});
