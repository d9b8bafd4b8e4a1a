/**
 * `vmforge serve`: the /v1 API over HTTP(S) in one fastify instance. Jobs run in this process
 * (src/jobs/local-runner.ts) through the same use cases the CLI calls, against the same state database, so
 * the CLI and the server work side by side (the host lock and the journal keep them apart). Every error leaves
 * as problem+json (problem.ts); every route is declared once (route.ts) and documented at /v1/openapi.json.
 */
import { isIP } from 'node:net';
import { readFile } from 'node:fs/promises';
import fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { AppContext } from '../app/context.js';
import type { Config } from '../config/schema.js';
import { invalidInput, VmforgeError } from '../errors.js';
import { LocalJobRunner } from '../jobs/local-runner.js';
import { authenticate, AuthFailureLimiter } from './auth.js';
import { openApiDocument } from './openapi.js';
import { ApiError, describeError } from './problem.js';
import { registerRoute, type AnyRoute } from './route.js';
import { apiRoutes } from './routes.js';

export interface ApiLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ApiServer {
  app: FastifyInstance;
  runner: LocalJobRunner;
  /** Stops accepting requests, cancels running jobs (they undo themselves) and waits for them. */
  close(): Promise<void>;
}

/** 127.0.0.0/8, ::1 and localhost: the addresses only this host reaches. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}

/** Refuses, before anything listens, to serve tokens in clear text beyond this host. */
export function checkListenAddress(host: string, tls: Config['apiServer']['tls']): void {
  if (tls || isLoopback(host)) return;
  throw invalidInput(
    `refusing to listen on ${host} without TLS: bearer tokens would cross the network in clear text`,
    'set apiServer.tls.certFile and apiServer.tls.keyFile in the config, or listen on 127.0.0.1 (behind a TLS proxy)',
  );
}

async function readTls(tls: NonNullable<Config['apiServer']['tls']>): Promise<{ cert: Buffer; key: Buffer }> {
  const read = (path: string, what: string) =>
    readFile(path).catch((e: NodeJS.ErrnoException) => {
      throw new VmforgeError('INVALID_CONFIG', `apiServer.tls.${what}: cannot read ${path}: ${e.code ?? e.message}`, { hint: 'give the PEM file, readable by the server user' });
    });
  return { cert: await read(tls.certFile, 'certFile'), key: await read(tls.keyFile, 'keyFile') };
}

export async function buildApiServer(opts: { ctx: AppContext; log: ApiLog; now?: () => number }): Promise<ApiServer> {
  const { ctx, log } = opts;
  const cfg = ctx.config.apiServer;
  const idleMs = cfg.idleTimeoutSeconds * 1000;
  const app = fastify({
    logger: false,
    exposeHeadRoutes: false,
    bodyLimit: cfg.maxBodyBytes,
    connectionTimeout: idleMs,
    keepAliveTimeout: Math.min(idleMs, 5_000),
    // Whole-request limit for the request itself (not the response: an event stream lasts as long as its job).
    requestTimeout: idleMs,
    return503OnClosing: true,
    ...(cfg.tls ? { https: await readTls(cfg.tls) } : {}),
  }) as unknown as FastifyInstance;
  const runner = new LocalJobRunner(ctx.jobs, (e, jobId) => log.error({ job: jobId, err: { message: (e as Error).message, stack: (e as Error).stack } }, 'job bookkeeping failed'));
  const limiter = new AuthFailureLimiter(cfg.maxAuthFailures, cfg.authFailureWindowSeconds * 1000, opts.now);
  const callers = new WeakMap<FastifyRequest, string>();

  app.setErrorHandler((error, request, reply) => {
    const d = describeError(error, request.url.split('?')[0] as string);
    if (d.internal) log.error({ method: request.method, url: request.url, err: { message: (error as Error).message, stack: (error as Error).stack } }, 'request failed');
    return reply.code(d.problem.status).headers(d.headers).type('application/problem+json').send(d.problem);
  });
  app.setNotFoundHandler((request) => {
    throw new ApiError('NOT_FOUND', `no such endpoint: ${request.method} ${request.url.split('?')[0]}`, { hint: 'the routes are listed in GET /v1/openapi.json' });
  });
  app.addHook('onResponse', (request, reply, done) => {
    // The token's name, never the token.
    log.info({ method: request.method, url: request.url, status: reply.statusCode, token: callers.get(request) ?? null, ms: Math.round(reply.elapsedTime) }, 'request');
    done();
  });

  const deps = {
    authenticate: async (request: FastifyRequest, need: 'viewer' | 'operator' | 'admin') => {
      const caller = await authenticate(ctx, limiter, request.ip, request.headers.authorization, need);
      callers.set(request, caller.token);
      return caller;
    },
  };
  const routes: AnyRoute[] = apiRoutes({ ctx, runner });
  let doc: object | null = null;
  routes.push({
    method: 'GET',
    path: '/v1/openapi.json',
    operationId: 'openApi',
    summary: 'This document',
    tags: ['meta'],
    role: null,
    responses: { 200: { description: 'the OpenAPI 3.1 document of /v1' } },
    handler: async () => (doc ??= openApiDocument(routes)),
  });
  for (const r of routes) registerRoute(app, deps, r);

  return {
    app,
    runner,
    async close() {
      await runner.stopAll('the server is stopping');
      await app.close();
    },
  };
}
