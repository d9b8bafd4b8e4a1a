import { describe, expect, it } from 'vitest';
import { ifRangeAllows, noneMatchHits, parseRange } from './range.js';

describe('parseRange', () => {
  const size = 1000;
  it.each([
    [undefined, { kind: 'full' }],
    ['bytes=0-', { kind: 'partial', start: 0, end: 999 }],
    ['bytes=500-', { kind: 'partial', start: 500, end: 999 }],
    ['bytes=999-', { kind: 'partial', start: 999, end: 999 }],
    ['bytes=10-19', { kind: 'partial', start: 10, end: 19 }],
    ['bytes=10-10', { kind: 'partial', start: 10, end: 10 }],
    ['bytes=900-5000', { kind: 'partial', start: 900, end: 999 }],
    ['bytes=-100', { kind: 'partial', start: 900, end: 999 }],
    ['bytes=-5000', { kind: 'partial', start: 0, end: 999 }],
    ['Bytes = 5 - 9', { kind: 'partial', start: 5, end: 9 }],
    ['bytes=1000-', { kind: 'unsatisfiable' }],
    ['bytes=5000-6000', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    // Ignored (full answer): invalid, other units, several ranges.
    ['bytes=20-10', { kind: 'full' }],
    ['bytes=-', { kind: 'full' }],
    ['bytes=a-b', { kind: 'full' }],
    ['items=0-5', { kind: 'full' }],
    ['bytes=0-5,10-20', { kind: 'full' }],
    ['bytes=0x10-', { kind: 'full' }],
    ['', { kind: 'full' }],
  ] as const)('%s', (header, want) => {
    expect(parseRange(header, size)).toEqual(want);
  });

  it('an empty blob has no satisfiable range', () => {
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-1', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange(undefined, 0)).toEqual({ kind: 'full' });
  });

  it('numbers past 2^53 do not wrap around', () => {
    expect(parseRange('bytes=99999999999999999999-', size)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-99999999999999999999', size)).toEqual({ kind: 'partial', start: 0, end: 999 });
  });
});

describe('validators', () => {
  const etag = '"abc"';
  it('If-Range must name the current ETag exactly', () => {
    expect(ifRangeAllows(undefined, etag)).toBe(true);
    expect(ifRangeAllows('"abc"', etag)).toBe(true);
    expect(ifRangeAllows('"abd"', etag)).toBe(false);
    expect(ifRangeAllows('W/"abc"', etag)).toBe(false);
    expect(ifRangeAllows('Wed, 21 Oct 2015 07:28:00 GMT', etag)).toBe(false);
  });
  it('If-None-Match', () => {
    expect(noneMatchHits(undefined, etag)).toBe(false);
    expect(noneMatchHits('*', etag)).toBe(true);
    expect(noneMatchHits('"x", "abc"', etag)).toBe(true);
    expect(noneMatchHits('W/"abc"', etag)).toBe(true);
    expect(noneMatchHits('"x"', etag)).toBe(false);
  });
});
