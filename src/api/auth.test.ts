import { describe, expect, it } from 'vitest';
import { roleAllows } from '../app/tokens.js';
import { AuthFailureLimiter } from './auth.js';
import { fieldErrors } from './problem.js';
import { vmBuildRequestSchema } from '../app/build-api-request.js';

describe('AuthFailureLimiter', () => {
  it('refuses an address after max failures within the window, per address, until the window passes', () => {
    let t = 1_000_000;
    const l = new AuthFailureLimiter(3, 60_000, () => t);
    for (let i = 0; i < 3; i++) {
      expect(l.retryAfter('10.0.0.1')).toBe(0);
      l.fail('10.0.0.1');
      t += 1000;
    }
    expect(l.retryAfter('10.0.0.1')).toBe(57);
    expect(l.retryAfter('10.0.0.2')).toBe(0);
    t += 57_000;
    expect(l.retryAfter('10.0.0.1')).toBe(0);
  });
});

describe('roles', () => {
  it('nest: admin > operator > viewer', () => {
    expect(roleAllows('admin', 'operator')).toBe(true);
    expect(roleAllows('operator', 'viewer')).toBe(true);
    expect(roleAllows('viewer', 'operator')).toBe(false);
    expect(roleAllows('operator', 'admin')).toBe(false);
  });
});

describe('fieldErrors', () => {
  it('gives one JSON pointer per field, unknown fields at their own pointer', () => {
    const r = vmBuildRequestSchema.safeParse({ name: 'ok', bundle: 'b', cpus: 'two', dns: ['1.1.1.1', 5], extra: 1, 'a/b': 2 });
    expect(r.success).toBe(false);
    const errs = fieldErrors(r.success ? [] : r.error.issues);
    expect(errs.map((e) => e.pointer).sort()).toEqual(['/a~1b', '/cpus', '/dns/1', '/extra']);
  });
});
