/**
 * The pure half of the repository client (docs/repository.md): URLs, headers, the resume decision for a Range
 * download, retry delays, and the mapping from HTTP answers to VmforgeErrors. No sockets here (repo-client.ts).
 */
import { invalidInput, VmforgeError } from '../errors.js';
import { formatBundleRef, parseManifest, type BundleRef, type Manifest } from './manifest.js';

/** `base` + `/v1/...`, keeping a path prefix the base may have (http://host/repo/); parts are URL-encoded. */
export function repoUrl(base: string, parts: readonly string[], query: Record<string, string | undefined> = {}): URL {
  const url = new URL(base.endsWith('/') ? base : `${base}/`);
  url.pathname = `${url.pathname}v1/${parts.map(encodeURIComponent).join('/')}`;
  url.search = '';
  url.hash = '';
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  return url;
}

/** Checks a repository URL from the command line or the config; returns it without credentials in it. */
export function checkRepoUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalidInput(`repository URL '${url}' is not a URL`, 'use http://HOST:PORT or https://HOST[:PORT][/PATH]');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalidInput(`repository URL '${url}' is not http(s)`, 'use http://HOST:PORT or https://HOST[:PORT][/PATH]');
  if (u.username || u.password) {
    throw invalidInput('the repository URL must not hold credentials', 'put the token in a file and set repository.tokenFile, or set VMFORGE_REPO_TOKEN');
  }
  if (u.search || u.hash) throw invalidInput(`repository URL '${url}' must not have a query or fragment`);
  return u.toString();
}

export function blobParts(ref: BundleRef): string[] {
  return ['bundles', ref.name, ref.version, 'blob'];
}

/** The `X-Vmforge-Manifest` header: base64url of the manifest's JSON. */
export function encodeManifestHeader(manifest: Manifest): string {
  return Buffer.from(JSON.stringify(manifest), 'utf8').toString('base64url');
}

export function decodeManifestHeader(value: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    throw invalidInput('the manifest header is not base64url JSON');
  }
  return parseManifest(json, 'the manifest header');
}

/** The sha256 an ETag names (`"hex"`, weak `W/"hex"`), or undefined when it is absent or not one. */
export function etagSha256(etag: string | undefined): string | undefined {
  const m = /^(?:W\/)?"([0-9a-f]{64})"$/.exec(etag?.trim() ?? '');
  return m?.[1];
}

export interface ContentRange {
  start: number;
  end: number;
  /** undefined for `bytes a-b/*`. */
  total: number | undefined;
}

export function parseContentRange(value: string | undefined): ContentRange | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? '');
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start || (total !== undefined && end >= total)) return undefined;
  return { start, end, total };
}

/** Request headers for (re)starting a download with `have` bytes already on disk. */
export function downloadRequestHeaders(have: number, sha256: string): Record<string, string> {
  // identity: a proxy must not re-encode the bytes we hash. If-Range: a blob that is no longer this one gives a
  // full 200 answer instead of a slice of different bytes.
  const h: Record<string, string> = { accept: 'application/octet-stream', 'accept-encoding': 'identity' };
  if (have > 0) {
    h.range = `bytes=${have}-`;
    h['if-range'] = `"${sha256}"`;
  }
  return h;
}

export type ResumeDecision =
  /** The body continues the file at `have`. */
  | { kind: 'append' }
  /** The body is the whole blob: truncate and start over. */
  | { kind: 'restart' }
  /** Nothing more to fetch (416 for a file that is already whole): verify it. */
  | { kind: 'complete' }
  /** 416 for a file that is not whole (longer than the blob, or the blob changed): drop it and ask again. */
  | { kind: 'discard' }
  | { kind: 'error'; error: VmforgeError };

/**
 * What to do with a blob response, given `have` bytes on disk and the blob the manifest names. The ETag, when
 * the server sends one, must name the expected sha256: otherwise the repository holds other bytes under this
 * name than the manifest we read, and no byte of them is worth keeping.
 */
export function resumeDecision(r: {
  status: number;
  headers: { etag?: string | undefined; 'content-range'?: string | undefined; 'content-length'?: string | undefined };
  have: number;
  expected: { sha256: string; bytes: number };
  what: string;
}): ResumeDecision {
  const { status, headers, have, expected } = r;
  const changed = () =>
    new VmforgeError('DIGEST_MISMATCH', `the repository's blob of ${r.what} is not the one its manifest names (ETag ${headers.etag}, manifest sha256 ${expected.sha256})`, {
      hint: 'the bundle was replaced in the repository while pulling it; pull again',
    });
  const tag = headers.etag === undefined ? undefined : etagSha256(headers.etag);
  if (status === 416) {
    if (have === expected.bytes) return { kind: 'complete' };
    return { kind: 'discard' };
  }
  if (headers.etag !== undefined && tag !== expected.sha256) return { kind: 'error', error: changed() };
  if (status === 200) {
    const len = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
    if (len !== undefined && len !== expected.bytes) {
      return { kind: 'error', error: new VmforgeError('DIGEST_MISMATCH', `the repository sends ${len} bytes for ${r.what}; its manifest says ${expected.bytes}`) };
    }
    return { kind: 'restart' };
  }
  if (status === 206) {
    const cr = parseContentRange(headers['content-range']);
    if (!cr || cr.start !== have || (cr.total !== undefined && cr.total !== expected.bytes) || cr.end !== expected.bytes - 1) {
      return {
        kind: 'error',
        error: new VmforgeError('DIGEST_MISMATCH', `the repository answered a resume of ${r.what} from byte ${have} with range '${headers['content-range'] ?? ''}'`),
      };
    }
    return { kind: 'append' };
  }
  return { kind: 'error', error: new VmforgeError('INTERNAL', `unexpected HTTP ${status} for the blob of ${r.what}`) };
}

/** Delay before retry number `attempt` (0-based): base, 2·base, 4·base, ... capped at `maxMs`. */
export function backoffMs(attempt: number, baseMs: number, maxMs = 10_000): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'VMFORGE_SHORT_BODY',
]);

/** Connection-level failures worth another attempt (a refused, reset, stalled or cut connection). */
export function isRetryable(e: unknown): boolean {
  if (e instanceof VmforgeError) return e.code === 'UNREACHABLE';
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRYABLE_CODES.has(code);
}

/** HTTP statuses worth another attempt: the repository or a proxy in front of it is briefly unavailable. */
export function isRetryableStatus(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}

export type RepoOperation = 'list' | 'manifest' | 'download' | 'publish';

/** The message of a `{ error: { code, message } }` body, if it is one. */
export function errorBodyMessage(body: string): string | undefined {
  try {
    const j = JSON.parse(body) as { error?: { message?: unknown } };
    return typeof j.error?.message === 'string' ? j.error.message : undefined;
  } catch {
    return undefined;
  }
}

/** A non-2xx answer as a VmforgeError whose hint says what to do about it. */
export function httpError(status: number, body: string, ctx: { op: RepoOperation; url: string; ref?: BundleRef; bytes?: number }): VmforgeError {
  const said = errorBodyMessage(body) ?? (body.trim().slice(0, 200) || `HTTP ${status}`);
  const what = ctx.ref ? `bundle ${formatBundleRef(ctx.ref)}` : 'the request';
  const scope = ctx.op === 'publish' ? 'write' : 'read';
  switch (status) {
    case 400:
      return invalidInput(`the repository at ${ctx.url} refused ${what}: ${said}`);
    case 401:
      return new VmforgeError('UNAUTHORIZED', `the repository at ${ctx.url} wants a valid token (${said})`, {
        hint: 'put the token in a file and set repository.tokenFile in the config, or set VMFORGE_REPO_TOKEN',
      });
    case 403:
      return new VmforgeError('FORBIDDEN', `the token has no '${scope}' scope on the repository at ${ctx.url} (${said})`, {
        hint: `use a token with the '${scope}' scope (repoServer.tokens on the repository host)`,
      });
    case 404:
      return new VmforgeError('NOT_FOUND', `${what} is not in the repository at ${ctx.url} (${said})`, {
        hint: ctx.ref ? `see what it has: vmforge bundle list --repo ${ctx.url}` : 'check the repository URL (repository.url or --repo)',
      });
    case 409:
      return new VmforgeError('CONFLICT', `${what} already exists in the repository at ${ctx.url} with other content (${said})`, {
        hint: 'publish it under another version, or delete that one from the repository first',
      });
    case 411:
    case 413:
      return invalidInput(
        `the repository at ${ctx.url} does not take ${what}${ctx.bytes !== undefined ? ` (${ctx.bytes} bytes)` : ''}: ${said}`,
        'raise repoServer.maxUploadBytes on the repository host, or make the bundle smaller (--exclude, --compress xz)',
      );
    case 422:
      return new VmforgeError('DIGEST_MISMATCH', `the repository at ${ctx.url} received data for ${what} that does not match its manifest (${said})`, {
        hint: ctx.ref ? `check the local copy (vmforge bundle verify ${formatBundleRef(ctx.ref)}); if it is OK, publish again` : undefined,
      });
    default:
      if (status >= 500) {
        return new VmforgeError(isRetryableStatus(status) ? 'UNREACHABLE' : 'INTERNAL', `the repository at ${ctx.url} failed on ${what}: HTTP ${status} ${said}`, {
          hint: "see the repository server's log",
        });
      }
      return new VmforgeError('INTERNAL', `the repository at ${ctx.url} answered ${what} with HTTP ${status}: ${said}`);
  }
}

/** The list endpoint's body: an array of manifests (or `{ bundles: [...] }`); invalid entries are reported. */
export function parseListBody(json: unknown, onInvalid?: (e: Error) => void): Manifest[] {
  const items = Array.isArray(json) ? json : (json as { bundles?: unknown } | null)?.bundles;
  if (!Array.isArray(items)) throw new VmforgeError('INTERNAL', 'the repository list is not an array of manifests');
  const out: Manifest[] = [];
  for (const item of items) {
    try {
      out.push(parseManifest(item, 'a manifest in the repository list'));
    } catch (e) {
      onInvalid?.(e as Error);
    }
  }
  return out;
}
