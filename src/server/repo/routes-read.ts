/** Reads: list, manifest, blob download (HEAD, Range). */
import { open } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { formatBundleRef, type BundleRef, type Manifest } from '../../bundles/manifest.js';
import type { ResolvedBundle } from '../../bundles/store.js';
import { VmforgeError } from '../../errors.js';
import { HttpError } from './http-errors.js';
import { checkName, refFromParams, type RefParams } from './params.js';
import { ifRangeAllows, noneMatchHits, parseRange } from './range.js';
import type { RepoContext } from './server.js';

// Bigger reads than the 64 KiB default: fewer syscalls at loopback speed, still a fixed amount per download.
const READ_CHUNK = 1024 * 1024;

export function registerReadRoutes(app: FastifyInstance, ctx: RepoContext): void {
  const read = { onRequest: ctx.requireScope('read') };

  app.get<{ Querystring: { name?: string; os?: string } }>('/v1/bundles', read, async (request) => {
    const { name, os } = request.query;
    if (name !== undefined) checkName(name);
    const all = await ctx.store.list({ onInvalid: (path, e) => ctx.log.warn({ path, reason: e.message }, 'invalid manifest in the store, not listed') });
    return all.filter((m) => (name === undefined || m.name === name) && (os === undefined || m.os.id === os)).sort(newestFirst);
  });

  app.get<{ Params: RefParams }>('/v1/bundles/:name/:version/manifest', read, async (request) => {
    return (await resolve(ctx, refFromParams(request.params, { allowLatest: true }))).manifest;
  });

  app.route<{ Params: RefParams }>({
    method: ['GET', 'HEAD'],
    url: '/v1/bundles/:name/:version/blob',
    ...read,
    handler: (request, reply) => sendBlob(ctx, request, reply),
  });
}

async function sendBlob(ctx: RepoContext, request: FastifyRequest<{ Params: RefParams }>, reply: FastifyReply): Promise<FastifyReply> {
  const { manifest, blobPath } = await resolve(ctx, refFromParams(request.params, { allowLatest: true }));
  // The open handle pins the bytes: a DELETE after this point cannot truncate a download in progress.
  const fh = await open(blobPath, 'r');
  let handedOver = false;
  try {
    const size = (await fh.stat()).size;
    const etag = `"${manifest.sha256}"`;
    void reply.header('etag', etag).header('accept-ranges', 'bytes').header('x-vmforge-sha256', manifest.sha256).type('application/octet-stream');
    if (noneMatchHits(request.headers['if-none-match'], etag)) return await reply.code(304).send();
    const ifRange = request.headers['if-range'];
    const range = ifRangeAllows(typeof ifRange === 'string' ? ifRange : undefined, etag) ? parseRange(request.headers.range, size) : ({ kind: 'full' } as const);
    if (range.kind === 'unsatisfiable') {
      void reply.header('content-range', `bytes */${size}`);
      throw new HttpError('RANGE_NOT_SATISFIABLE', `range ${String(request.headers.range)} is outside the blob (${size} bytes)`);
    }
    const start = range.kind === 'partial' ? range.start : 0;
    const end = range.kind === 'partial' ? range.end : size - 1;
    if (range.kind === 'partial') void reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
    void reply.header('content-length', String(end - start + 1));
    if (request.method === 'HEAD' || size === 0) return await reply.send();
    handedOver = true;
    return await reply.send(fh.createReadStream({ start, end, highWaterMark: READ_CHUNK }));
  } finally {
    if (!handedOver) await fh.close();
  }
}

async function resolve(ctx: RepoContext, ref: BundleRef): Promise<ResolvedBundle> {
  try {
    return await ctx.store.resolve(ref);
  } catch (e) {
    // The store's own message names its directory; the client gets one without host paths.
    if (e instanceof VmforgeError && e.code === 'NOT_FOUND') throw new HttpError('NOT_FOUND', `bundle ${formatBundleRef(ref)} does not exist`);
    throw e;
  }
}

function newestFirst(a: Manifest, b: Manifest): number {
  const dt = Date.parse(b.created) - Date.parse(a.created);
  if (dt !== 0) return dt;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return a.version < b.version ? 1 : a.version > b.version ? -1 : 0;
}
