import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { VmforgeError } from '../errors.js';
import { buildMany, buildManyError, type BuildManyResult } from './build-many.js';
import type { AppContext } from './context.js';

/** Just enough context for the checks buildMany makes before its first build (which these never reach). */
function fakeCtx(existing: string[] = []): AppContext {
  return { config: parseConfig(null, null), vms: { get: async (n: string) => (existing.includes(n) ? { name: n } : undefined) } } as unknown as AppContext;
}

async function refused(p: Promise<unknown>, code: string): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(VmforgeError);
    expect((e as VmforgeError).code).toBe(code);
    return (e as Error).message;
  }
  throw new Error(`expected ${code}`);
}

describe('buildMany, before it builds anything', () => {
  const req = { bundle: 'b', net: 'none' };
  it('refuses --ip and --mac with more than one VM', async () => {
    expect(await refused(buildMany(fakeCtx(), 'w-%d', { ...req, ip: '10.0.0.5/24' }, { count: 2 }), 'INVALID_INPUT')).toContain('--ip');
    expect(await refused(buildMany(fakeCtx(), 'w-%d', { ...req, mac: '52:54:00:00:00:01' }, { count: 3 }), 'INVALID_INPUT')).toContain('--mac');
  });

  it('refuses a bad --parallel and a request that does not validate', async () => {
    expect(await refused(buildMany(fakeCtx(), 'w-%d', req, { count: 2, parallel: 0 }), 'INVALID_INPUT')).toContain('--parallel');
    expect(await refused(buildMany(fakeCtx(), 'w-%d', { ...req, memory: '1K' }, { count: 2 }), 'INVALID_INPUT')).toContain('memory');
  });

  it('names every taken name at once', async () => {
    const msg = await refused(buildMany(fakeCtx(['w-2', 'w-3']), 'w-%d', req, { count: 3 }), 'CONFLICT');
    expect(msg).toContain('w-2, w-3');
  });
});

describe('buildManyError', () => {
  const ok = (name: string) => ({ name, ok: true as const, result: { dryRun: true as const, name, planText: '', domainXml: '', plan: {} as never } });
  const bad = (name: string, code: 'CONFLICT' | 'COMMAND_FAILED') => ({ name, ok: false as const, error: { code, message: 'boom', hint: null, undoErrors: [] } });

  it('is null when every build succeeded', () => {
    expect(buildManyError({ dryRun: false, results: [ok('a')], built: ['a'], failed: [] })).toBeNull();
  });

  it("takes the first failure's code and names every failed and built VM", () => {
    const res: BuildManyResult = { dryRun: false, results: [ok('a'), bad('b', 'CONFLICT'), bad('c', 'COMMAND_FAILED')], built: ['a'], failed: ['b', 'c'] };
    const e = buildManyError(res) as VmforgeError;
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toBe('2 of 3 builds failed: b (CONFLICT: boom); c (COMMAND_FAILED: boom); built: a');
  });
});
