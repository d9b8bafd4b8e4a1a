/**
 * `vmforge serve`'s /v1 over real HTTP on 127.0.0.1, everything but builds: the OpenAPI document (checked by
 * an OpenAPI 3.1 validator), tokens and roles (made and revoked with the CLI), the failed-auth limit,
 * problem+json errors with field pointers, 413, 404s, and the read routes. The non-loopback refusal runs the CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { bundleSchema, networkDetailSchema, networkViewSchema, problemSchema } from '../../src/api/schemas.js';
import { ensureLibvirt, ensureTemplate, makeTestEnv, type TestEnv } from '../harness/env.js';
import { startApi, type Json, type TestApi } from '../harness/api.js';

let env: TestEnv;
let api: TestApi;
let bundle: string;
let viewer: string;
let operator: string;

beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
  env = await makeTestEnv('', 'api-routes-');
  api = await startApi(env);
  viewer = await api.token('viewer');
  operator = await api.token('operator');
});

afterAll(async () => {
  await api?.close();
  await env?.cleanup();
});

const expectProblem = (r: { status: number; headers: Headers; json: Json }, status: number, code: string) => {
  expect(r.status, JSON.stringify(r.json)).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  problemSchema.strict().parse(r.json);
  expect(r.json).toMatchObject({ type: 'about:blank', status, code });
};

describe('OpenAPI document', () => {
  it('is served without a token and is valid OpenAPI 3.1 describing every route', async () => {
    const r = await api.req('GET', '/v1/openapi.json');
    expect(r.status).toBe(200);
    const validator = new Validator();
    const res = await validator.validate(r.json);
    expect(res.errors ?? [], JSON.stringify(res.errors)).toEqual([]);
    expect(res.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    // The validator does find faults: the same document with a response lacking its description is refused.
    const broken = structuredClone(r.json);
    delete broken.paths['/v1/vms'].get.responses['200'].description;
    expect((await new Validator().validate(broken)).valid).toBe(false);
    const ops = Object.entries(r.json.paths as Record<string, Record<string, { operationId: string }>>).flatMap(([p, m]) => Object.keys(m).map((verb) => `${verb.toUpperCase()} ${p}`));
    expect(ops.sort()).toEqual(
      [
        'POST /v1/vms', 'GET /v1/vms', 'GET /v1/vms/{name}', 'DELETE /v1/vms/{name}', 'GET /v1/jobs/{id}', 'GET /v1/jobs/{id}/events',
        'POST /v1/jobs/{id}/cancel', 'GET /v1/bundles', 'GET /v1/networks', 'POST /v1/networks', 'GET /v1/networks/{name}',
        'DELETE /v1/networks/{name}', 'GET /v1/openapi.json',
      ].sort(),
    );
    // The build request's schema is the one the server validates with: a field's bounds show up in the document.
    const body = r.json.paths['/v1/vms'].post.requestBody.content['application/json'].schema;
    expect(body.additionalProperties).toBe(false);
    expect(body.properties.memoryMiB).toMatchObject({ type: 'integer', minimum: 128 });
    expect(body.required).toEqual(['name', 'bundle']);
  });
});

describe('tokens and roles', () => {
  it('refuses requests without a token, with a malformed header, or with an unknown token (401)', async () => {
    for (const headers of [{}, { authorization: 'Basic abc' }, { authorization: 'Bearer vmf_nosuchtoken' }] as Record<string, string>[]) {
      const r = await api.req('GET', '/v1/vms', { headers });
      expectProblem(r, 401, 'UNAUTHORIZED');
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="vmforge"');
    }
  });

  it('lets a viewer read but not build, destroy or cancel (403); an operator may', async () => {
    expect((await api.req('GET', '/v1/vms', { token: viewer })).status).toBe(200);
    const build = await api.req('POST', '/v1/vms', { token: viewer, body: { name: 'api-never', bundle } });
    expectProblem(build, 403, 'FORBIDDEN');
    expect(build.json.detail).toMatch(/viewer role; this needs operator/);
    expectProblem(await api.req('DELETE', '/v1/vms/api-never', { token: viewer }), 403, 'FORBIDDEN');
    expectProblem(await api.req('POST', '/v1/jobs/1/cancel', { token: viewer }), 403, 'FORBIDDEN');
    // The operator gets past auth to the route's own answer.
    expectProblem(await api.req('DELETE', '/v1/vms/api-never', { token: operator }), 404, 'NOT_FOUND');
  });

  it('takes tokens made by `vmforge token create` and refuses them once revoked; the log names the token, never shows it', async () => {
    const made = await env.cli(['token', 'create', '--name', 'api-cli-token', '--role', 'viewer']);
    expect(made.exitCode, made.stderr).toBe(0);
    const token = made.stdout.trim();
    expect(token).toMatch(/^vmf_[A-Za-z0-9_-]{43}$/);
    expect((await api.req('GET', '/v1/bundles', { token })).status).toBe(200);
    const list = await env.cli(['token', 'list', '--json']);
    expect(JSON.parse(list.stdout).map((t: { name: string }) => t.name)).toContain('api-cli-token');
    expect(list.stdout).not.toContain(token);
    const revoked = await env.cli(['token', 'revoke', 'api-cli-token']);
    expect(revoked.exitCode, revoked.stderr).toBe(0);
    expectProblem(await api.req('GET', '/v1/bundles', { token }), 401, 'UNAUTHORIZED');
    const again = await env.cli(['token', 'revoke', 'api-cli-token']);
    expect(again.exitCode).toBe(4);
    expect(api.logLines.join('\n')).not.toContain(token);
    expect(api.logLines.some((l) => l.includes('"token":"api-cli-token"'))).toBe(true);
  });

  it('limits failed authentication per client address (429 with Retry-After), even for a good token then', async () => {
    const limited = await startApi(env, { maxAuthFailures: 3, authFailureWindowSeconds: 60 });
    try {
      for (let i = 0; i < 3; i++) expect((await limited.req('GET', '/v1/vms', { token: 'vmf_wrong' })).status).toBe(401);
      const r = await limited.req('GET', '/v1/vms', { token: viewer });
      expectProblem(r, 429, 'TOO_MANY_REQUESTS');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
    // Another server's limiter (and so this one's) is untouched: the good token still reads.
    expect((await api.req('GET', '/v1/vms', { token: viewer })).status).toBe(200);
  });
});

describe('validation and errors', () => {
  it('answers a bad build request with 400 and one JSON pointer per field: unknown fields, wrong types, absurd sizes', async () => {
    const r = await api.req('POST', '/v1/vms', {
      token: operator,
      body: { name: 'Bad_Name', bundle: bundle, cpus: 'two', memoryMiB: 10 ** 12, diskBytes: 5, dns: ['10.0.0.1', 7], colour: 'blue' },
    });
    expectProblem(r, 400, 'INVALID_INPUT');
    expect(r.json.errors.map((e: { pointer: string }) => e.pointer).sort()).toEqual(['/colour', '/cpus', '/diskBytes', '/dns/1', '/memoryMiB', '/name']);
    expect(r.json.errors.find((e: { pointer: string }) => e.pointer === '/colour').message).toBe('unknown field');
  });

  it("refuses what the build's own checks refuse before a job exists, with the CLI's message and hint and the field", async () => {
    const r = await api.req('POST', '/v1/vms', { token: operator, body: { name: 'api-swap', bundle, diskBytes: 2 ** 30, swapBytes: 2 ** 31 } });
    expectProblem(r, 400, 'INVALID_INPUT');
    expect(r.json.detail).toBe(`--swap ${2 ** 31} is not smaller than the disk (${2 ** 30})`);
    expect(r.json.hint).toBe('make the disk larger or the swap smaller (--swap 0 for none)');
    expect(r.json.errors).toEqual([{ pointer: '/swapBytes', message: r.json.detail }]);
    const jobs = await api.ctx.db.selectFrom('jobs').select('id').where('vm_name', '=', 'api-swap').execute();
    expect(jobs).toEqual([]);
  });

  it('refuses a body over apiServer.maxBodyBytes (413), one that is not JSON (400) or not declared JSON (415)', async () => {
    const big = JSON.stringify({ name: 'api-big', bundle, sshKeys: ['x'.repeat(100 * 1024)] });
    expectProblem(await api.req('POST', '/v1/vms', { token: operator, rawBody: big, headers: { 'content-type': 'application/json' } }), 413, 'PAYLOAD_TOO_LARGE');
    expectProblem(await api.req('POST', '/v1/vms', { token: operator, rawBody: '{"name":', headers: { 'content-type': 'application/json' } }), 400, 'INVALID_INPUT');
    expectProblem(await api.req('POST', '/v1/vms', { token: operator, rawBody: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers unknown VMs, jobs and routes with 404 problems carrying the hint', async () => {
    const vm = await api.req('GET', '/v1/vms/api-nosuch', { token: viewer });
    expectProblem(vm, 404, 'NOT_FOUND');
    expect(vm.json).toMatchObject({ detail: "no VM named 'api-nosuch'", hint: "list VMs with 'vmforge vm list'" });
    expectProblem(await api.req('GET', '/v1/jobs/999999', { token: viewer }), 404, 'NOT_FOUND');
    expectProblem(await api.req('GET', '/v1/jobs/999999/events', { token: viewer }), 404, 'NOT_FOUND');
    const bad = await api.req('GET', '/v1/jobs/abc', { token: viewer });
    expectProblem(bad, 400, 'INVALID_INPUT');
    expect(bad.json.errors[0].pointer).toBe('/path/id');
    expectProblem(await api.req('GET', '/v1/nothing', { token: viewer }), 404, 'NOT_FOUND');
  });
});

describe('read routes', () => {
  it('lists bundles', async () => {
    const b = await api.req('GET', '/v1/bundles', { token: viewer });
    expect(b.status).toBe(200);
    for (const m of b.json.bundles) bundleSchema.parse(m);
    expect(b.json.bundles.map((m: { name: string; version: string }) => `${m.name}:${m.version}`)).toContain(bundle);
  });

  it('lets an admin create, show and remove networks; an operator may not (403); bad input is the CLI refusal', async () => {
    const admin = await api.token('admin');
    const body = { name: 'api-lan', cidr: '10.91.0.0/24', bridge: 'api-br0', excludes: ['10.91.0.2-10.91.0.9'] };
    expectProblem(await api.req('POST', '/v1/networks', { token: operator, body }), 403, 'FORBIDDEN');
    const made = await api.req('POST', '/v1/networks', { token: admin, body });
    expect(made.status, JSON.stringify(made.json)).toBe(201);
    expect(made.headers.get('location')).toBe('/v1/networks/api-lan');
    expect(networkViewSchema.strict().parse(made.json)).toMatchObject({ name: 'api-lan', gateway: '10.91.0.1', leased: 0 });
    expectProblem(await api.req('POST', '/v1/networks', { token: admin, body }), 409, 'CONFLICT');
    const bad = await api.req('POST', '/v1/networks', { token: admin, body: { ...body, name: 'api-bad', cidr: '10.92.0.0/24', vlan: 5000, dhcp: 'dnsmasq:relative' } });
    expectProblem(bad, 400, 'INVALID_INPUT');
    expect(bad.json.errors).toEqual([{ pointer: '/vlan', message: 'Number must be less than or equal to 4094' }]);
    const refused = await api.req('POST', '/v1/networks', { token: admin, body: { name: 'api-bad', cidr: '10.92.0.0/24', bridge: 'api-br0', dhcp: 'dnsmasq:relative' } });
    expectProblem(refused, 400, 'INVALID_INPUT');
    expect(refused.json.detail).toMatch(/DHCP 'dnsmasq:relative' needs an absolute directory/);
    expect(refused.json.hint).toBeTruthy();

    const n = await api.req('GET', '/v1/networks', { token: viewer });
    expect(n.json.networks).toHaveLength(1);
    const net = networkViewSchema.strict().parse(n.json.networks[0]);
    expect(net).toMatchObject({ name: 'api-lan', cidr: '10.91.0.0/24', leased: 0, free: net.capacity });
    const one = await api.req('GET', '/v1/networks/api-lan', { token: viewer });
    expect(networkDetailSchema.strict().parse(one.json).leases).toEqual([]);
    const cli = await env.cli(['network', 'show', 'api-lan', '--json']);
    expect(one.json).toEqual(JSON.parse(cli.stdout));

    expectProblem(await api.req('DELETE', '/v1/networks/api-lan', { token: operator }), 403, 'FORBIDDEN');
    expect((await api.req('DELETE', '/v1/networks/api-lan', { token: admin })).status).toBe(204);
    expectProblem(await api.req('GET', '/v1/networks/api-lan', { token: viewer }), 404, 'NOT_FOUND');
  });
});

describe('vmforge serve', () => {
  it('refuses to listen beyond loopback without TLS, before listening', async () => {
    const r = await env.cli(['serve', '--listen', '0.0.0.0:0']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without TLS/);
    expect(r.stderr).toMatch(/hint: set apiServer\.tls\.certFile/);
  });
});

describe('TLS', () => {
  it('serves HTTPS with the configured certificate and key', async () => {
    const certFile = join(env.dir, 'api.crt');
    const keyFile = join(env.dir, 'api.key');
    await execa('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile]);
    const tlsApi = await startApi(env, { tls: { certFile, keyFile } });
    try {
      expect(tlsApi.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const ca = await readFile(certFile);
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpsRequest(`${tlsApi.url}/v1/vms`, { ca, headers: { authorization: `Bearer ${viewer}` } }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(200);
      expect(JSON.parse(body)).toEqual({ vms: [] });
      // Plain HTTP to the TLS port gets no answer as HTTP.
      await expect(fetch(`${tlsApi.url.replace('https:', 'http:')}/v1/vms`)).rejects.toThrow();
    } finally {
      await tlsApi.close();
    }
  });
});

describe('slow clients', () => {
  it('closes a connection that stops sending mid-request after apiServer.idleTimeoutSeconds', async () => {
    const slow = await startApi(env, { idleTimeoutSeconds: 5 });
    try {
      const port = Number(new URL(slow.url).port);
      const started = Date.now();
      const closedAfter = await new Promise<number>((resolve, reject) => {
        const sock = connect(port, '127.0.0.1', () => sock.write(`POST /v1/vms HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${operator}\r\n`));
        sock.on('error', () => {});
        sock.on('close', () => resolve(Date.now() - started));
        setTimeout(() => reject(new Error('still open after 20 s')), 20_000).unref();
      });
      expect(closedAfter).toBeGreaterThanOrEqual(4_500);
      expect(closedAfter).toBeLessThan(15_000);
    } finally {
      await slow.close();
    }
  });
});
