/**
 * The repository server's HTTP statuses (src/errors.ts HTTP_STATUSES, plus the wire-only codes) and the JSON error body
 * `{ error: { code, message } }` (docs/repository.md). VmforgeError codes first, then the few that exist only
 * on the wire (length, size, range).
 */
import { HTTP_STATUSES, VmforgeError, type ErrorCode } from '../../errors.js';

export type HttpOnlyCode = 'LENGTH_REQUIRED' | 'PAYLOAD_TOO_LARGE' | 'RANGE_NOT_SATISFIABLE';
export type HttpErrorCode = ErrorCode | HttpOnlyCode;

export const HTTP_STATUS: Record<HttpErrorCode, number> = {
  ...HTTP_STATUSES,
  LENGTH_REQUIRED: 411,
  PAYLOAD_TOO_LARGE: 413,
  RANGE_NOT_SATISFIABLE: 416,
};

/** An error meant for the client, with a code from the table. */
export class HttpError extends Error {
  constructor(
    readonly code: HttpErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }

  get status(): number {
    return HTTP_STATUS[this.code];
  }
}

export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/**
 * What the client is told. Server-side failures (5xx) get a fixed message: their text can hold host paths; the
 * full error goes to the server's log instead. `internal` says whether it must be logged as such.
 */
export function describeError(e: unknown): { status: number; body: ErrorBody; internal: boolean } {
  if (e instanceof HttpError) return { status: e.status, body: errorBody(e.code, e.message), internal: false };
  if (e instanceof VmforgeError) {
    const status = HTTP_STATUS[e.code];
    if (status >= 500 && e.code !== 'INSUFFICIENT_SPACE') return { status, body: errorBody(e.code, 'internal server error'), internal: true };
    const message = e.code === 'INSUFFICIENT_SPACE' ? 'the repository is out of space' : e.message;
    return { status, body: errorBody(e.code, message), internal: status >= 500 };
  }
  // Fastify's own 4xx errors (bad URL encoding, header limits, ...) carry a statusCode.
  const sc = (e as { statusCode?: unknown } | null)?.statusCode;
  if (typeof sc === 'number' && sc >= 400 && sc < 500) {
    // These messages quote the whole URL: kilobytes echoed back (and into logs) for a request that is refused anyway.
    if (sc === 414) return { status: sc, body: errorBody('INVALID_INPUT', 'the URL is too long'), internal: false };
    const code = (e as { code?: unknown }).code;
    if (code === 'FST_ERR_BAD_URL') return { status: sc, body: errorBody('INVALID_INPUT', 'the URL holds a malformed %-escape'), internal: false };
    return { status: sc, body: errorBody(sc === 404 ? 'NOT_FOUND' : 'INVALID_INPUT', (e as Error).message), internal: false };
  }
  return { status: 500, body: errorBody('INTERNAL', 'internal server error'), internal: true };
}
