/**
 * Typed errors. Every failure the user can see is a VmforgeError with a stable code; the CLI's top-level
 * handler maps the code to an exit status through EXIT_CODES, and prints `message` then `hint`.
 */
export type ErrorCode =
  | 'INVALID_INPUT' // bad argument or flag value
  | 'INVALID_CONFIG' // config file does not validate
  | 'NOT_FOUND' // VM, bundle or other named thing does not exist
  | 'CONFLICT' // name taken, resource already in use
  | 'MISSING_TOOL' // a host program is not installed
  | 'HYPERVISOR_UNREACHABLE' // libvirt cannot be reached
  | 'COMMAND_FAILED' // a host command exited non-zero
  | 'TIMEOUT' // something did not happen in time
  | 'CANCELLED' // Ctrl-C / abort
  | 'UNSAFE_PATH' // a guest path escapes the guest root
  | 'INSUFFICIENT_SPACE' // disk too small for what must go on it
  | 'UNAUTHORIZED' // no or unknown credentials (a repository answered 401)
  | 'FORBIDDEN' // credentials without the right (a repository answered 403)
  | 'DIGEST_MISMATCH' // data whose sha256 or size is not what was declared
  | 'UNREACHABLE' // a remote service (the bundle repository) cannot be reached
  | 'LOCKED' // another vmforge command holds the host lock
  | 'POOL_EXHAUSTED' // a network's address pool has no free address left
  | 'INTERNAL';

export const EXIT_CODES: Record<ErrorCode, number> = {
  INVALID_INPUT: 2,
  INVALID_CONFIG: 3,
  NOT_FOUND: 4,
  CONFLICT: 5,
  MISSING_TOOL: 6,
  HYPERVISOR_UNREACHABLE: 7,
  COMMAND_FAILED: 8,
  TIMEOUT: 9,
  CANCELLED: 130,
  UNSAFE_PATH: 10,
  INSUFFICIENT_SPACE: 11,
  UNAUTHORIZED: 12,
  FORBIDDEN: 13,
  DIGEST_MISMATCH: 14,
  UNREACHABLE: 15,
  LOCKED: 17,
  POOL_EXHAUSTED: 16,
  INTERNAL: 1,
};

/**
 * The HTTP status of each code, for the servers (`vmforge serve`'s problem+json, the repository's error body):
 * the same code is the same status everywhere, as it is the same exit status in the CLI.
 */
export const HTTP_STATUSES: Record<ErrorCode, number> = {
  INVALID_INPUT: 400,
  UNSAFE_PATH: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  POOL_EXHAUSTED: 409,
  CANCELLED: 503,
  TIMEOUT: 504,
  HYPERVISOR_UNREACHABLE: 503,
  LOCKED: 503,
  UNREACHABLE: 502,
  INSUFFICIENT_SPACE: 507,
  INVALID_CONFIG: 500,
  MISSING_TOOL: 500,
  COMMAND_FAILED: 500,
  INTERNAL: 500,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  DIGEST_MISMATCH: 422,
};

export class VmforgeError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  /** The request field the error is about, when one is (the API reports it as a JSON pointer). */
  readonly field: string | undefined;
  /** Errors raised while undoing after this one; reported with it, never instead of it. */
  undoErrors: Error[] = [];

  constructor(code: ErrorCode, message: string, opts: { hint?: string | undefined; cause?: unknown; field?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'VmforgeError';
    this.code = code;
    this.hint = opts.hint;
    this.field = opts.field;
  }
}

export const invalidInput = (message: string, hint?: string) => new VmforgeError('INVALID_INPUT', message, { hint });
export const notFound = (message: string, hint?: string) => new VmforgeError('NOT_FOUND', message, { hint });
export const conflict = (message: string, hint?: string) => new VmforgeError('CONFLICT', message, { hint });

export function exitCodeOf(err: unknown): number {
  return err instanceof VmforgeError ? EXIT_CODES[err.code] : 1;
}

/** A failure as data (a job's outcome, a --count build's item): code, message, hint and the undo errors. */
export interface ErrorSummary {
  code: ErrorCode;
  message: string;
  hint: string | null;
  undoErrors: string[];
}

export function errorSummary(e: unknown): ErrorSummary {
  const v = e instanceof VmforgeError ? e : null;
  return {
    code: v?.code ?? 'INTERNAL',
    message: (e as Error)?.message ?? String(e),
    hint: v?.hint ?? null,
    undoErrors: v?.undoErrors.map((u) => u.message) ?? [],
  };
}
