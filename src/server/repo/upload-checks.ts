/**
 * What an upload must pass before a byte of its body is accepted, shared by both upload paths (the plain PUT
 * route and the `Upgrade: vmforge-blob` path, docs/repository.md): names, size limit, digest and manifest
 * headers, an early conflict answer, and free space.
 */
import { mkdir, statfs } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { formatBundleRef, LATEST, parseManifest, type BundleRef, type Manifest } from '../../bundles/manifest.js';
import { formatSize } from '../../core/units.js';
import { VmforgeError } from '../../errors.js';
import { HttpError } from './http-errors.js';
import type { RepoContext } from './server.js';

export interface CheckedUpload {
  manifest: Manifest;
  sha256: string;
  refText: string;
}

/** `declared`: the body's byte count as the client announced it in the `lengthHeader` (Content-Length or X-Vmforge-Length). */
export async function checkUpload(
  ctx: Pick<RepoContext, 'store' | 'maxUploadBytes'>,
  ref: BundleRef,
  declared: number,
  lengthHeader: string,
  headers: IncomingHttpHeaders,
): Promise<CheckedUpload> {
  if (declared > ctx.maxUploadBytes) {
    throw new HttpError('PAYLOAD_TOO_LARGE', `the upload is ${formatSize(declared)}; this repository takes at most ${formatSize(ctx.maxUploadBytes)}`);
  }
  const sha256 = shaHeader(headers['x-vmforge-sha256']);
  const manifest = manifestHeader(headers['x-vmforge-manifest']);
  const refText = formatBundleRef(ref);
  if (manifest.name !== ref.name || manifest.version !== ref.version) {
    throw new HttpError('INVALID_INPUT', `the manifest is for ${formatBundleRef(manifest)}, the URL for ${refText}`);
  }
  if (manifest.sha256 !== sha256) throw new HttpError('DIGEST_MISMATCH', `X-Vmforge-Sha256 is ${sha256}, the manifest says ${manifest.sha256}`);
  if (manifest.compressedBytes !== declared) {
    throw new HttpError('DIGEST_MISMATCH', `${lengthHeader} is ${declared}, the manifest says ${manifest.compressedBytes} bytes`);
  }
  // Early answer only; the publish decides for real (someone may publish in between).
  if (await ctx.store.has(ref.name, ref.version)) throw new HttpError('CONFLICT', `bundle ${refText} already exists`);
  await checkFreeSpace(ctx.store.dir, declared);
  return { manifest, sha256, refText };
}

/** A byte count header (Content-Length, X-Vmforge-Length); `what` names it in the error. */
export function parseLength(value: string | string[] | undefined, what: string): number {
  if (value === undefined) {
    throw new HttpError('LENGTH_REQUIRED', `an upload needs a ${what} header (chunked uploads are not accepted)`);
  }
  // Node's parser has already refused malformed and conflicting Content-Lengths; this is a guard against the odd one left.
  if (typeof value !== 'string' || !/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new HttpError('INVALID_INPUT', `${what} ${JSON.stringify(value)} is not a byte count`);
  }
  return Number(value);
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
