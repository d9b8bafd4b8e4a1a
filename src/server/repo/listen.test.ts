import { describe, expect, it } from 'vitest';
import { baseUrl, parseListen } from './listen.js';

describe('parseListen', () => {
  it.each([
    ['127.0.0.1:8700', { host: '127.0.0.1', port: 8700 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
    ['[::1]:8700', { host: '::1', port: 8700 }],
    ['0.0.0.0:80', { host: '0.0.0.0', port: 80 }],
  ])('%s', (text, want) => expect(parseListen(text)).toEqual(want));

  it.each(['8700', '127.0.0.1', '127.0.0.1:', '::1:8700', '127.0.0.1:70000', 'a b:1', 'host:port'])('refuses %s', (text) => {
    expect(() => parseListen(text)).toThrow(/--listen/);
  });

  it('baseUrl brackets IPv6', () => {
    expect(baseUrl('127.0.0.1', 8700)).toBe('http://127.0.0.1:8700');
    expect(baseUrl('::1', 8700)).toBe('http://[::1]:8700');
  });
});
