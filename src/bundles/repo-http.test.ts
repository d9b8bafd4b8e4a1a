import { describe, expect, it } from 'vitest';
import { VmforgeError } from '../errors.js';
import {
  backoffMs,
  checkRepoUrl,
  decodeManifestHeader,
  downloadRequestHeaders,
  encodeManifestHeader,
  etagSha256,
  httpError,
  isRetryable,
  parseContentRange,
  parseListBody,
  repoUrl,
  resumeDecision,
} from './repo-http.js';
import type { Manifest } from './manifest.js';

const SHA = 'ab'.repeat(32);
const OTHER = 'cd'.repeat(32);
const manifest: Manifest = {
  schemaVersion: 1,
  name: 'debian',
  version: '12+1',
  created: '2026-01-01T00:00:00.000Z',
  os: { id: 'debian', versionId: '12', prettyName: 'Debian', family: 'debian' },
  arch: 'x86_64',
  kernels: [],
  unpackedBytes: 10,
  fileCount: 1,
  compressedBytes: 1000,
  compression: 'zstd',
  sha256: SHA,
  excludes: ['./tmp/*'],
};

describe('URLs and headers', () => {
  it('joins paths under a base, keeping its prefix and encoding parts', () => {
    expect(repoUrl('http://127.0.0.1:8700', ['bundles', 'debian', '12+1', 'blob']).toString()).toBe('http://127.0.0.1:8700/v1/bundles/debian/12%2B1/blob');
    expect(repoUrl('https://h/repo/', ['bundles'], { name: 'x', os: undefined }).toString()).toBe('https://h/repo/v1/bundles?name=x');
    expect(repoUrl('https://h/repo', ['health']).toString()).toBe('https://h/repo/v1/health');
  });

  it('refuses URLs that are not http(s) or carry credentials', () => {
    expect(checkRepoUrl('http://127.0.0.1:8700')).toBe('http://127.0.0.1:8700/');
    for (const bad of ['ftp://h', 'not a url', 'http://u:p@h/', 'http://h/?a=1']) expect(() => checkRepoUrl(bad)).toThrow(VmforgeError);
  });

  it('round-trips the manifest header as base64url', () => {
    const h = encodeManifestHeader(manifest);
    expect(h).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeManifestHeader(h)).toEqual(manifest);
  });

  it('asks for the rest of the blob only when there is a partial, guarded by If-Range', () => {
    expect(downloadRequestHeaders(0, SHA)).toEqual({ accept: 'application/octet-stream', 'accept-encoding': 'identity' });
    expect(downloadRequestHeaders(4096, SHA)).toMatchObject({ range: 'bytes=4096-', 'if-range': `"${SHA}"` });
  });
});

describe('resume math', () => {
  it('parses ETags and Content-Range', () => {
    expect(etagSha256(`"${SHA}"`)).toBe(SHA);
    expect(etagSha256(`W/"${SHA}"`)).toBe(SHA);
    expect(etagSha256('"xyz"')).toBeUndefined();
    expect(parseContentRange('bytes 100-999/1000')).toEqual({ start: 100, end: 999, total: 1000 });
    expect(parseContentRange('bytes 0-9/*')).toEqual({ start: 0, end: 9, total: undefined });
    expect(parseContentRange('bytes 10-5/100')).toBeUndefined();
    expect(parseContentRange('bytes 0-100/100')).toBeUndefined();
    expect(parseContentRange(undefined)).toBeUndefined();
  });

  const expected = { sha256: SHA, bytes: 1000 };
  const decide = (status: number, headers: Record<string, string>, have: number) => resumeDecision({ status, headers, have, expected, what: 'debian:1' });

  it('appends a 206 that continues exactly where the file ends', () => {
    expect(decide(206, { etag: `"${SHA}"`, 'content-range': 'bytes 400-999/1000' }, 400).kind).toBe('append');
    expect(decide(206, { 'content-range': 'bytes 400-999/1000' }, 400).kind).toBe('append');
  });

  it('refuses a 206 for another offset, another size or a short range', () => {
    expect(decide(206, { 'content-range': 'bytes 300-999/1000' }, 400).kind).toBe('error');
    expect(decide(206, { 'content-range': 'bytes 400-999/2000' }, 400).kind).toBe('error');
    expect(decide(206, { 'content-range': 'bytes 400-499/1000' }, 400).kind).toBe('error');
    expect(decide(206, {}, 400).kind).toBe('error');
  });

  it('starts over on a 200 (range ignored, or If-Range no longer matching)', () => {
    expect(decide(200, { etag: `"${SHA}"`, 'content-length': '1000' }, 400).kind).toBe('restart');
    expect(decide(200, {}, 0).kind).toBe('restart');
    expect(decide(200, { 'content-length': '999' }, 0).kind).toBe('error');
  });

  it('treats an ETag naming other bytes as a changed repository', () => {
    const d = decide(206, { etag: `"${OTHER}"`, 'content-range': 'bytes 400-999/1000' }, 400);
    expect(d.kind).toBe('error');
    expect(d.kind === 'error' && d.error.code).toBe('DIGEST_MISMATCH');
  });

  it('on 416: a whole file is complete, anything else is discarded', () => {
    expect(decide(416, {}, 1000).kind).toBe('complete');
    expect(decide(416, {}, 1200).kind).toBe('discard');
  });

  it('backs off exponentially up to a cap', () => {
    expect([0, 1, 2, 3].map((a) => backoffMs(a, 500))).toEqual([500, 1000, 2000, 4000]);
    expect(backoffMs(20, 500, 8000)).toBe(8000);
  });

  it('retries connection failures, not answers', () => {
    expect(isRetryable(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isRetryable(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isRetryable(new VmforgeError('UNREACHABLE', 'x'))).toBe(true);
    expect(isRetryable(new VmforgeError('NOT_FOUND', 'x'))).toBe(false);
    expect(isRetryable(new Error('plain'))).toBe(false);
  });
});

describe('HTTP errors', () => {
  const ctx = { op: 'publish' as const, url: 'http://127.0.0.1:8700/', ref: { name: 'debian', version: '1' } };
  const body = (code: string, message: string) => JSON.stringify({ error: { code, message } });

  it('maps each status to a code with a hint that says what to do', () => {
    const cases: [number, string, RegExp][] = [
      [401, 'UNAUTHORIZED', /repository\.tokenFile|VMFORGE_REPO_TOKEN/],
      [403, 'FORBIDDEN', /'write' scope/],
      [404, 'NOT_FOUND', /bundle list --repo/],
      [409, 'CONFLICT', /another version/],
      [413, 'INVALID_INPUT', /maxUploadBytes/],
      [422, 'DIGEST_MISMATCH', /bundle verify debian:1/],
      [503, 'UNREACHABLE', /log/],
    ];
    for (const [status, code, hint] of cases) {
      const e = httpError(status, body('X', 'server says no'), ctx);
      expect(e.code, String(status)).toBe(code);
      expect(e.hint ?? '', String(status)).toMatch(hint);
      expect(e.message).toContain('server says no');
    }
    expect(httpError(400, 'plain text', ctx).message).toContain('plain text');
    expect(httpError(403, '', { ...ctx, op: 'download' }).hint).toMatch(/'read' scope/);
  });

  it('reads the list as an array of manifests, reporting invalid ones', () => {
    const bad: Error[] = [];
    expect(parseListBody([manifest, { nope: 1 }], (e) => bad.push(e))).toEqual([manifest]);
    expect(bad).toHaveLength(1);
    expect(parseListBody({ bundles: [manifest] })).toEqual([manifest]);
    expect(() => parseListBody({ what: 1 })).toThrow(VmforgeError);
  });
});
