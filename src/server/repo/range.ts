/**
 * `Range` and `If-Range` for blob downloads (RFC 9110 §14). One range per request: a multi-range request is
 * answered with the whole blob, which the RFC allows and which saves writing multipart bodies nobody here needs.
 */

export type RangeResult =
  | { kind: 'full' }
  /** `end` is inclusive, as in Content-Range. */
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

/**
 * `bytes=N-`, `bytes=N-M` and `bytes=-SUFFIX` against a blob of `size` bytes. A header that does not parse, names
 * another unit or holds several ranges is ignored (full response), as the RFC says; a syntactically valid range
 * that starts at or past the end is unsatisfiable (416).
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return { kind: 'full' };
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return { kind: 'full' };
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}

/**
 * Whether a Range may be honoured: `If-Range` absent, or naming exactly the current strong ETag. Dates are
 * never matched: blobs are content-addressed and the ETag is the only validator worth trusting.
 */
export function ifRangeAllows(ifRange: string | undefined, etag: string): boolean {
  return ifRange === undefined || ifRange.trim() === etag;
}

/** `If-None-Match` lists (or `*`) holding the ETag. Weak tags compare by their opaque part (RFC 9110 §13.1.2). */
export function noneMatchHits(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
