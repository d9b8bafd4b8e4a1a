import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../config/schema.js';
import { VmforgeError } from '../../errors.js';
import { checkAuth, makeToken, resolveTokens } from './auth.js';

const RW = 'rw-token-0123456789abcdef';
const RO = 'ro-token-0123456789abcdef';
const tokens = [makeToken('rw', RW, ['read', 'write']), makeToken('ro', RO, ['read'])];

describe('checkAuth', () => {
  it('open routes need nothing', () => {
    expect(checkAuth(tokens, undefined, null, false)).toEqual({ ok: true, tokenName: null });
  });

  it('no token: 401, unless reading with anonymousRead', () => {
    expect(checkAuth(tokens, undefined, 'read', false)).toMatchObject({ ok: false, status: 401 });
    expect(checkAuth(tokens, '', 'read', false)).toMatchObject({ ok: false, status: 401 });
    expect(checkAuth(tokens, undefined, 'read', true)).toEqual({ ok: true, tokenName: null });
    expect(checkAuth(tokens, undefined, 'write', true)).toMatchObject({ ok: false, status: 401 });
  });

  it('known tokens by scope', () => {
    expect(checkAuth(tokens, `Bearer ${RW}`, 'write', false)).toEqual({ ok: true, tokenName: 'rw' });
    expect(checkAuth(tokens, `bearer  ${RO} `, 'read', false)).toEqual({ ok: true, tokenName: 'ro' });
    expect(checkAuth(tokens, `Bearer ${RO}`, 'write', true)).toMatchObject({ ok: false, status: 403, code: 'FORBIDDEN' });
  });

  it('unknown or malformed credentials are 401 even with anonymousRead', () => {
    expect(checkAuth(tokens, `Bearer ${RW}x`, 'read', true)).toMatchObject({ ok: false, status: 401 });
    expect(checkAuth(tokens, `Bearer ${RW.slice(0, -1)}`, 'read', true)).toMatchObject({ ok: false, status: 401 });
    expect(checkAuth(tokens, `Basic ${Buffer.from(`u:${RW}`).toString('base64')}`, 'read', true)).toMatchObject({ ok: false, status: 401 });
    expect(checkAuth(tokens, RW, 'read', false)).toMatchObject({ ok: false, status: 401 });
    expect(checkAuth([], `Bearer ${RW}`, 'read', false)).toMatchObject({ ok: false, status: 401 });
  });

  it('messages never hold the token', () => {
    for (const [h, need] of [[`Bearer ${RO}`, 'write'], [`Bearer ${RW}x`, 'read'], [`Token ${RW}`, 'read']] as const) {
      const r = checkAuth(tokens, h, need, false);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.message).not.toContain(RW.slice(0, 10));
    }
  });
});

describe('resolveTokens', () => {
  const cfg = (tokensYaml: unknown) => configSchema.parse({ repoServer: { tokens: tokensYaml } }).repoServer;

  it('reads the first line of token files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmforge-auth-'));
    try {
      await writeFile(join(dir, 't'), `${RW}\nsecond line ignored\n`);
      const resolved = await resolveTokens(cfg([{ name: 'f', tokenFile: join(dir, 't'), scopes: ['write'] }, { name: 'i', token: RO, scopes: ['read'] }]));
      expect(checkAuth(resolved, `Bearer ${RW}`, 'write', false)).toEqual({ ok: true, tokenName: 'f' });
      expect(checkAuth(resolved, `Bearer ${RO}`, 'read', false)).toEqual({ ok: true, tokenName: 'i' });
      expect(JSON.stringify(resolved)).not.toContain(RW);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('one secret under two names is refused at start, naming both and never the secret', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'va-auth-'));
    try {
      await writeFile(join(dir, 't'), `${RW}\n`);
      for (const list of [
        [{ name: 'rw', token: RW, scopes: ['read', 'write'] }, { name: 'ro', token: RW, scopes: ['read'] }],
        [{ name: 'rw', tokenFile: join(dir, 't'), scopes: ['write'] }, { name: 'other', token: RO, scopes: ['read'] }, { name: 'ro', token: RW, scopes: ['read'] }],
      ]) {
        const err = await resolveTokens(cfg(list)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(VmforgeError);
        const e = err as VmforgeError;
        expect(e.code).toBe('INVALID_CONFIG');
        expect(e.message).toMatch(/repoServer\.tokens 'rw' and 'ro' have the same token/);
        expect(e.hint).toMatch(/openssl rand -hex 32/);
        expect(`${e.message} ${e.hint}`).not.toContain(RW);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a missing or short token file is a config error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmforge-auth-'));
    try {
      await writeFile(join(dir, 'short'), 'abc\n');
      for (const f of [join(dir, 'missing'), join(dir, 'short')]) {
        const err = await resolveTokens(cfg([{ name: 'f', tokenFile: f, scopes: ['read'] }])).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(VmforgeError);
        expect((err as VmforgeError).code).toBe('INVALID_CONFIG');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
