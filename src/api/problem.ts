/**
 * Errors as RFC 9457 problem details (`application/problem+json`): `status` from the one table in
 * src/errors.ts, `detail` and `hint` the same text the CLI prints, `code` the VmforgeError code, and for
 * invalid requests `errors` with a JSON pointer per field.
 */
import { STATUS_CODES } from 'node:http';
import type { ZodIssue } from 'zod';
import { HTTP_STATUSES, VmforgeError, type ErrorCode } from '../errors.js';

/** Codes that exist only on the wire. */
export type ApiOnlyCode = 'PAYLOAD_TOO_LARGE' | 'UNSUPPORTED_MEDIA_TYPE' | 'TOO_MANY_REQUESTS' | 'METHOD_NOT_ALLOWED';
export type ApiErrorCode = ErrorCode | ApiOnlyCode;

const API_ONLY_STATUS: Record<ApiOnlyCode, number> = {
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_MANY_REQUESTS: 429,
  METHOD_NOT_ALLOWED: 405,
};

export function statusOf(code: ApiErrorCode): number {
  return code in API_ONLY_STATUS ? API_ONLY_STATUS[code as ApiOnlyCode] : HTTP_STATUSES[code as ErrorCode];
}

export interface FieldError {
  /** JSON pointer into the request body (or `/path/NAME`, `/query/NAME` for URL parts). */
  pointer: string;
  message: string;
}

export interface Problem {
  type: 'about:blank';
  title: string;
  status: number;
  detail: string;
  code: ApiErrorCode;
  hint?: string;
  errors?: FieldError[];
  instance?: string;
}

/** An error meant for the client as it is. */
export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly extra: { hint?: string; errors?: FieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function problem(code: ApiErrorCode, detail: string, extra: { hint?: string | null; errors?: FieldError[]; instance?: string } = {}): Problem {
  const status = statusOf(code);
  return {
    type: 'about:blank',
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
    ...(extra.hint ? { hint: extra.hint } : {}),
    ...(extra.errors?.length ? { errors: extra.errors } : {}),
    ...(extra.instance ? { instance: extra.instance } : {}),
  };
}

/** RFC 6901: '~' and '/' in a key are escaped. */
const pointerToken = (key: string | number) => String(key).replace(/~/g, '~0').replace(/\//g, '~1');

/** zod's issues as field errors; `base` is the pointer of what was parsed ('' for the body). */
export function fieldErrors(issues: readonly ZodIssue[], base = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const i of issues) {
    const at = `${base}${i.path.map((p) => `/${pointerToken(p)}`).join('')}`;
    // One error per unknown field, at the field itself, so a client can mark it.
    if (i.code === 'unrecognized_keys') for (const k of i.keys) out.push({ pointer: `${at}/${pointerToken(k)}`, message: 'unknown field' });
    else out.push({ pointer: at || '/', message: i.message });
  }
  return out;
}

/**
 * What the client is told about any error. Internal errors that are not VmforgeErrors (a bug) get a fixed
 * text: their message can hold anything; the server's log has the whole error.
 */
export function describeError(e: unknown, instance: string): { problem: Problem; internal: boolean; headers: Record<string, string> } {
  if (e instanceof ApiError) return { problem: problem(e.code, e.message, { ...e.extra, instance }), internal: false, headers: e.extra.headers ?? {} };
  if (e instanceof VmforgeError) {
    const errors = e.field ? [{ pointer: `/${e.field}`, message: e.message }] : [];
    return { problem: problem(e.code, e.message, { hint: e.hint ?? null, errors, instance }), internal: HTTP_STATUSES[e.code] >= 500, headers: {} };
  }
  // Fastify's own refusals (body too large, bad JSON, wrong media type) carry a statusCode.
  const sc = (e as { statusCode?: unknown } | null)?.statusCode;
  if (typeof sc === 'number' && sc >= 400 && sc < 500) {
    const code: ApiErrorCode = sc === 413 ? 'PAYLOAD_TOO_LARGE' : sc === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : sc === 404 ? 'NOT_FOUND' : sc === 405 ? 'METHOD_NOT_ALLOWED' : 'INVALID_INPUT';
    const p = problem(code, (e as Error).message, { instance });
    return { problem: { ...p, status: sc, title: STATUS_CODES[sc] ?? p.title }, internal: false, headers: {} };
  }
  return { problem: problem('INTERNAL', 'internal server error', { hint: "the server's log has the details", instance }), internal: true, headers: {} };
}
