/** Writes: upload (PUT, streamed to disk, published exclusively) and delete. */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { formatBundleRef } from '../../bundles/manifest.js';
import type { StagedBlob } from '../../bundles/store.js';
import { VmforgeError } from '../../errors.js';
import { HttpError } from './http-errors.js';
import { refFromParams, type RefParams } from './params.js';
import type { RepoContext } from './server.js';
import { checkUpload, parseLength } from './upload-checks.js';

export function registerWriteRoutes(app: FastifyInstance, ctx: RepoContext): void {
  const write = { onRequest: ctx.requireScope('write') };

  app.put<{ Params: RefParams }>('/v1/bundles/:name/:version', write, (request, reply) => upload(ctx, request, reply));

  app.delete<{ Params: RefParams }>('/v1/bundles/:name/:version', write, async (request) => {
    const ref = refFromParams(request.params, { allowLatest: true });
    try {
      const res = await ctx.serialized(() => ctx.store.remove(ref));
      return { removed: formatBundleRef(res.manifest), blobRemoved: res.blobRemoved };
    } catch (e) {
      if (e instanceof VmforgeError && e.code === 'NOT_FOUND') throw new HttpError('NOT_FOUND', `bundle ${formatBundleRef(ref)} does not exist`);
      throw e;
    }
  });
}

/**
 * Everything that can be decided from the headers is, before a byte of the body is read (and before
 * `100 Continue` for clients that asked). Then the body streams into the store's tmp/ while hashed; the
 * bundle becomes visible only when its bytes and sha256 match the headers and the manifest, and only if
 * nobody published the same name:version meanwhile.
 */
async function upload(ctx: RepoContext, request: FastifyRequest<{ Params: RefParams }>, reply: FastifyReply): Promise<FastifyReply> {
  const ref = refFromParams(request.params, { allowLatest: false });
  const declared = parseLength(request.headers['content-length'], 'Content-Length');
  const { manifest, sha256, refText } = await checkUpload(ctx, ref, declared, 'Content-Length', request.headers);

  const raw = request.raw;
  if (/^\s*100-continue\s*$/i.test(request.headers.expect ?? '')) reply.raw.writeContinue();
  // Once the last byte is in, the client waits for our answer: the final fsync of a large blob must not
  // count as the client being idle. Node re-arms the idle timer for the next request on the connection.
  raw.once('end', () => raw.socket?.setTimeout(0));
  // stageBlob destroys its source on a write error (ENOSPC); through this wrapper that leaves the request
  // alive, so the client can still be told why.
  const body = Readable.from(raw.iterator({ destroyOnReturn: false }), { objectMode: false });
  const t0 = performance.now();
  let staged: StagedBlob;
  try {
    staged = await ctx.store.stageBlob(body);
  } catch (e) {
    if (!raw.complete) {
      ctx.log.warn({ bundle: refText, reason: (e as Error).message }, 'upload abandoned by the client; nothing stored');
    }
    throw e;
  }
  if (staged.bytes !== declared || staged.sha256 !== sha256) {
    await staged.discard();
    throw new HttpError(
      'DIGEST_MISMATCH',
      `received ${staged.bytes} bytes with sha256 ${staged.sha256}; expected ${declared} bytes with sha256 ${sha256}. Nothing was stored`,
    );
  }
  const published = await ctx.serialized(() => ctx.store.publishStaged(manifest, staged));
  ctx.log.info({ bundle: refText, bytes: staged.bytes, ms: Math.round(performance.now() - t0) }, 'bundle published');
  return reply
    .code(201)
    .header('location', `/v1/bundles/${encodeURIComponent(ref.name)}/${encodeURIComponent(ref.version)}/manifest`)
    .send(published.manifest);
}
