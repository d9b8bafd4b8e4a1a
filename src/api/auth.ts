/**
 * Who is asking: `Authorization: Bearer <token>` looked up by its sha256 (src/app/tokens.ts), and whether
 * their role allows the route. Failed attempts are counted per client address; an address with too many in
 * the window is refused (429) without its token being looked at, until the window has passed.
 */
import type { ApiRole } from '../store/schema.js';
import { roleAllows, tokenFor } from '../app/tokens.js';
import type { AppContext } from '../app/context.js';
import { ApiError } from './problem.js';

export interface Caller {
  token: string;
  role: ApiRole;
}

const MAX_TRACKED_ADDRESSES = 10_000;

/** Failure times per address, oldest first; addresses with none in the window are forgotten. */
export class AuthFailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Seconds until the address may try again, or 0. */
  retryAfter(addr: string): number {
    const times = this.recent(addr);
    if (times.length < this.max) return 0;
    return Math.max(1, Math.ceil(((times[0] as number) + this.windowMs - this.now()) / 1000));
  }

  fail(addr: string): void {
    // Many addresses failing once each (an IPv6 prefix has plenty) must not grow the map without end.
    if (this.failures.size >= MAX_TRACKED_ADDRESSES) for (const a of [...this.failures.keys()]) this.recent(a);
    const times = this.recent(addr);
    times.push(this.now());
    this.failures.set(addr, times);
  }

  private recent(addr: string): number[] {
    const since = this.now() - this.windowMs;
    const times = (this.failures.get(addr) ?? []).filter((t) => t > since);
    if (times.length) this.failures.set(addr, times);
    else this.failures.delete(addr);
    return times;
  }
}

export async function authenticate(
  ctx: Pick<AppContext, 'db'>,
  limiter: AuthFailureLimiter,
  addr: string,
  authorization: string | undefined,
  need: ApiRole,
): Promise<Caller> {
  const wait = limiter.retryAfter(addr);
  if (wait > 0) {
    throw new ApiError('TOO_MANY_REQUESTS', 'too many failed authentication attempts from this address', {
      hint: `try again in ${wait} s with a valid token`,
      headers: { 'retry-after': String(wait) },
    });
  }
  const unauthorized = (message: string, hint: string) => {
    limiter.fail(addr);
    return new ApiError('UNAUTHORIZED', message, { hint, headers: { 'www-authenticate': 'Bearer realm="vmforge"' } });
  };
  if (!authorization?.trim()) throw unauthorized('this API needs a bearer token (Authorization: Bearer <token>)', "make one on the server with 'vmforge token create --name NAME --role viewer'");
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!m) throw unauthorized('the Authorization header must be: Bearer <token>', 'send the token vmforge token create printed');
  const found = await tokenFor(ctx, m[1] as string);
  if (!found) throw unauthorized('unknown or revoked token', "list the server's tokens with 'vmforge token list'; make a new one with 'vmforge token create'");
  if (!roleAllows(found.role, need)) {
    throw new ApiError('FORBIDDEN', `token '${found.name}' has the ${found.role} role; this needs ${need}`, { hint: `use a token with the ${need} role (vmforge token create --role ${need})` });
  }
  return { token: found.name, role: found.role };
}
