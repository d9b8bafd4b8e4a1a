/** Writes: upload (PUT, streamed to disk, published exclusively) and delete. */
import { mkdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { formatBundleRef, LATEST, parseManifest, type Manifest } from '../../bundles/manifest.js';
import type { StagedBlob } from '../../bundles/store.js';
import { formatSize } from '../../core/units.js';
import { VmforgeError } from '../../errors.js';
import { HttpError } from './http-errors.js';
import { refFromParams, type RefParams } from './params.js';
import type { RepoContext } from './server.js';

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
  const declared = declaredLength(request);
  if (declared > ctx.maxUploadBytes) {
    throw new HttpError('PAYLOAD_TOO_LARGE', `the upload is ${formatSize(declared)}; this repository takes at most ${formatSize(ctx.maxUploadBytes)}`);
  }
  const sha256 = shaHeader(request.headers['x-vmforge-sha256']);
  const manifest = manifestHeader(request.headers['x-vmforge-manifest']);
  const refText = formatBundleRef(ref);
  if (manifest.name !== ref.name || manifest.version !== ref.version) {
    throw new HttpError('INVALID_INPUT', `the manifest is for ${formatBundleRef(manifest)}, the URL for ${refText}`);
  }
  if (manifest.sha256 !== sha256) throw new HttpError('DIGEST_MISMATCH', `X-Vmforge-Sha256 is ${sha256}, the manifest says ${manifest.sha256}`);
  if (manifest.compressedBytes !== declared) {
    throw new HttpError('DIGEST_MISMATCH', `Content-Length is ${declared}, the manifest says ${manifest.compressedBytes} bytes`);
  }
  // Early answer only; the publish below decides for real (someone may publish in between).
  if (await ctx.store.has(ref.name, ref.version)) throw new HttpError('CONFLICT', `bundle ${refText} already exists`);
  await checkFreeSpace(ctx.store.dir, declared);

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

/** Refuses an upload that cannot fit, instead of finding out gigabytes later. */
async function checkFreeSpace(storeDir: string, bytes: number): Promise<void> {
  const tmp = join(storeDir, 'tmp');
  await mkdir(tmp, { recursive: true });
  const fs = await statfs(tmp);
  const free = fs.bavail * fs.bsize;
  if (free < bytes) {
    throw new HttpError('INSUFFICIENT_SPACE', `the repository has ${formatSize(free)} free; this upload needs ${formatSize(bytes)}`);
  }
}

function declaredLength(request: FastifyRequest): number {
  const cl = request.headers['content-length'];
  if (cl === undefined) {
    throw new HttpError('LENGTH_REQUIRED', 'an upload needs a Content-Length header (chunked uploads are not accepted)');
  }
  // Node's parser has already refused malformed and conflicting lengths; this is a guard against the odd one left.
  if (!/^\d+$/.test(cl) || !Number.isSafeInteger(Number(cl))) throw new HttpError('INVALID_INPUT', `Content-Length ${JSON.stringify(cl)} is not a byte count`);
  return Number(cl);
}

function shaHeader(value: string | string[] | undefined): string {
  if (typeof value !== 'string') throw new HttpError('INVALID_INPUT', 'an upload needs one X-Vmforge-Sha256 header (the blob sha256, 64 hex digits)');
  const sha = value.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(sha)) throw new HttpError('INVALID_INPUT', 'X-Vmforge-Sha256 must be 64 hex digits');
  return sha;
}

function manifestHeader(value: string | string[] | undefined): Manifest {
  if (typeof value !== 'string') throw new HttpError('INVALID_INPUT', 'an upload needs one X-Vmforge-Manifest header (base64url of the manifest JSON)');
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(value.trim())) throw new HttpError('INVALID_INPUT', 'X-Vmforge-Manifest is not base64url');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(value.trim(), 'base64url').toString('utf8'));
  } catch {
    throw new HttpError('INVALID_INPUT', 'X-Vmforge-Manifest does not decode to JSON');
  }
  try {
    const m = parseManifest(json, 'X-Vmforge-Manifest');
    if (m.version === LATEST) throw new HttpError('INVALID_INPUT', `'${LATEST}' is not a version`);
    return m;
  } catch (e) {
    if (e instanceof VmforgeError) throw new HttpError('INVALID_INPUT', e.message);
    throw e;
  }
}
