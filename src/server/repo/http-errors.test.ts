import { errorCodes } from 'fastify';
import { describe, expect, it } from 'vitest';
import { describeError } from './http-errors.js';

describe('describeError for the framework\'s own refusals', () => {
  it('a URL too long is answered 414 without the URL', () => {
    const path = `/v1/bundles/${'a'.repeat(5000)}`;
    const d = describeError(new errorCodes.FST_ERR_MAX_PARAM_LENGTH(path));
    expect(d.status).toBe(414);
    expect(d.body.error.code).toBe('INVALID_INPUT');
    expect(d.body.error.message).toMatch(/URL is too long/);
    expect(d.body.error.message).not.toContain('aaaa');
    expect(JSON.stringify(d.body).length).toBeLessThan(300);
  });

  it('a bad URL component is answered 400 without echoing all of it', () => {
    const d = describeError(new errorCodes.FST_ERR_BAD_URL(`/v1/%zz${'b'.repeat(5000)}`));
    expect(d.status).toBe(400);
    expect(JSON.stringify(d.body).length).toBeLessThan(300);
  });
});
