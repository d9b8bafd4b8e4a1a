/**
 * The bundle repository over HTTP (docs/repository.md): a BundleStore served by fastify. Bodies are never
 * parsed or buffered by fastify: uploads stream from the socket into the store's temp dir (plain PUT through
 * Node's parser, or `Upgrade: vmforge-blob` straight off the socket, upload-upgrade.ts), downloads stream
 * from the blob file. Every error reaches the client as `{ error: { code, message } }` through one table.
 */
import fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type onRequestHookHandler } from 'fastify';
import type { BundleStore } from '../../bundles/store.js';
import type { Config } from '../../config/schema.js';
import { parseSize } from '../../core/units.js';
import { checkAuth, resolveTokens, type RepoToken, type Scope } from './auth.js';
import { describeError, errorBody, HttpError } from './http-errors.js';
import { registerReadRoutes } from './routes-read.js';
import { registerWriteRoutes } from './routes-write.js';
import { handleUploadUpgrades } from './upload-upgrade.js';

/** The logger the server uses (src/app/log.ts JsonLog fits). Requests are logged with the token's name, never the token. */
export interface RepoLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RepoServerOptions {
  store: BundleStore;
  config: Config['repoServer'];
  log: RepoLog;
  /** Already resolved tokens; by default the config's are resolved (token files read) here. */
  tokens?: readonly RepoToken[];
  /** Write upgraded uploads with O_DIRECT where the store's filesystem takes it (default false; see directIoWanted()). */
  directIo?: boolean;
}

/** What the route modules share. */
export interface RepoContext {
  store: BundleStore;
  log: RepoLog;
  maxUploadBytes: number;
  /** Scope check for a route, as an onRequest hook (runs before anything reads the body). */
  requireScope(scope: Scope): onRequestHookHandler;
  /** Runs store changes (publish, delete) one at a time, so a delete's blob cleanup cannot race a publish of the same blob. */
  serialized<T>(fn: () => Promise<T>): Promise<T>;
}

// Manifests travel in a header (base64url JSON); Node's default 16 KiB for all headers is tight for one with
// many excludes and kernels.
const MAX_HEADER_BYTES = 64 * 1024;

export async function buildRepoServer(opts: RepoServerOptions): Promise<FastifyInstance> {
  const { store, config, log } = opts;
  const tokens = opts.tokens ?? (await resolveTokens(config));
  const maxUploadBytes = parseSize(config.maxUploadBytes, 'repoServer.maxUploadBytes');
  const idleMs = config.idleTimeoutSeconds * 1000;
  await store.sweepTemp();

  const app = fastify({
    logger: false,
    exposeHeadRoutes: false,
    http: { maxHeaderSize: MAX_HEADER_BYTES },
    // Inactivity on the socket (no byte either way) for idleMs destroys it: a stalled upload or a download
    // nobody reads. No limit on a whole request: a 4 GiB upload takes as long as it takes.
    connectionTimeout: idleMs,
    keepAliveTimeout: idleMs,
    requestTimeout: 0,
    return503OnClosing: true,
    frameworkErrors: (error, _req, reply) => {
      const d = describeError(error);
      void (reply as FastifyReply).code(d.status).send(d.body);
    },
  });
  app.server.headersTimeout = Math.min(idleMs, 60_000);

  // Clients that send `Expect: 100-continue` get every early refusal (auth, names, size, digest, conflict)
  // before they send a byte of the body: the upload route answers 100 only once its checks pass.
  app.server.on('checkContinue', (req, res) => {
    if (req.method !== 'PUT') res.writeContinue();
    app.server.emit('request', req, res);
  });

  // No body parsing anywhere: the upload route reads request.raw itself, other routes take no body.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  const tokenNames = new WeakMap<FastifyRequest, string>();
  const requireScope =
    (scope: Scope): onRequestHookHandler =>
    (request, reply, done) => {
      const res = checkAuth(tokens, request.headers.authorization, scope, config.anonymousRead);
      if (res.ok) {
        if (res.tokenName !== null) tokenNames.set(request, res.tokenName);
        done();
        return;
      }
      if (res.status === 401) void reply.header('www-authenticate', 'Bearer realm="vmforge"');
      done(new HttpError(res.code, res.message));
    };

  let chain: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn, fn);
    chain = p.catch(() => undefined);
    return p;
  };

  app.setErrorHandler((error, request, reply) => {
    const d = describeError(error);
    const where = { method: request.method, url: request.url, token: tokenNames.get(request) ?? null };
    if (d.internal) log.error({ ...where, err: { message: (error as Error).message, stack: (error as Error).stack } }, 'request failed');
    // An upload refused before its body was read: closing the connection is cheaper than reading and
    // discarding gigabytes only to keep it alive.
    if (request.method === 'PUT' && !request.raw.complete) void reply.header('connection', 'close');
    return reply.code(d.status).send(d.body);
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send(errorBody('NOT_FOUND', `no such endpoint: ${request.method} ${request.url.split('?')[0]}`)));

  app.addHook('onResponse', (request, reply, done) => {
    log.info(
      { method: request.method, url: request.url, status: reply.statusCode, token: tokenNames.get(request) ?? null, ms: Math.round(reply.elapsedTime) },
      'request',
    );
    done();
  });

  app.get('/v1/health', async () => ({ ok: true }));
  const ctx: RepoContext = { store, log, maxUploadBytes, requireScope, serialized };
  registerReadRoutes(app, ctx);
  registerWriteRoutes(app, ctx);
  const cutUploads = handleUploadUpgrades(app.server, { ...ctx, tokens, anonymousRead: config.anonymousRead, idleMs, directIo: opts.directIo ?? false });
  // Upgraded uploads are no longer the HTTP server's connections: cutting "all connections" must include them.
  const closeAll = app.server.closeAllConnections.bind(app.server);
  app.server.closeAllConnections = () => {
    closeAll();
    cutUploads();
  };
  return app;
}

