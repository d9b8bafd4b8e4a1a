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

export class VmforgeError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  /** Errors raised while undoing after this one; reported with it, never instead of it. */
  undoErrors: Error[] = [];

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'VmforgeError';
    this.code = code;
    this.hint = opts.hint;
  }
}

export const invalidInput = (message: string, hint?: string) => new VmforgeError('INVALID_INPUT', message, { hint });
export const notFound = (message: string, hint?: string) => new VmforgeError('NOT_FOUND', message, { hint });
export const conflict = (message: string, hint?: string) => new VmforgeError('CONFLICT', message, { hint });

export function exitCodeOf(err: unknown): number {
  return err instanceof VmforgeError ? EXIT_CODES[err.code] : 1;
}
