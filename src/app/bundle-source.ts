/**
 * Where bundles come from when they are not in the local store: the configured repository. Also how a
 * RepoClient is made from the config (URL, token from VMFORGE_REPO_TOKEN or repository.tokenFile).
 */
import { readFile } from 'node:fs/promises';
import { directIoWanted } from '../bundles/direct-io.js';
import { formatBundleRef, parseBundleRef } from '../bundles/manifest.js';
import { RepoClient, type RepoClientOptions } from '../bundles/repo-client.js';
import type { ResolvedBundle } from '../bundles/store.js';
import type { Config } from '../config/schema.js';
import { invalidInput, VmforgeError } from '../errors.js';
import type { EventSink } from '../pipeline/events.js';
import type { AppContext } from './context.js';

export const REPO_TOKEN_ENV = 'VMFORGE_REPO_TOKEN';

/** The bearer token: VMFORGE_REPO_TOKEN when set, else the first line of repository.tokenFile, else none. */
export async function repoToken(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const fromEnv = env[REPO_TOKEN_ENV]?.trim();
  if (fromEnv) return fromEnv;
  const file = config.repository.tokenFile;
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new VmforgeError('INVALID_CONFIG', `repository.tokenFile ${file} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      hint: 'create it with the token on its first line (mode 0600), or fix repository.tokenFile in the config',
    });
  }
  const token = (text.split('\n')[0] ?? '').trim();
  if (!token) throw new VmforgeError('INVALID_CONFIG', `repository.tokenFile ${file} is empty`, { hint: 'put the token on its first line' });
  return token;
}

/**
 * A client for `url`, or for repository.url when no URL is given. Pulls write with O_DIRECT as bundles.directIo
 * (or VMFORGE_DIRECT_IO) says.
 */
export async function repoClientFor(config: Config, url?: string, opts: RepoClientOptions = {}): Promise<RepoClient> {
  const target = url ?? config.repository.url;
  if (!target) throw invalidInput('no bundle repository given', 'pass --repo URL, or set repository.url in the config');
  return new RepoClient(target, await repoToken(config), { directIo: directIoWanted(config.bundles.directIo), ...opts });
}

/**
 * The local bundle for `ref`; when the store does not have it and repository.url is configured, it is pulled
 * first (progress as `step.progress` events under the id `bundle.pull`). A dry run pulls nothing: it plans with
 * the repository's manifest and the path the blob would get.
 */
export async function resolveOrPull(
  ctx: AppContext,
  ref: string,
  emit: EventSink,
  opts: { dryRun?: boolean; signal?: AbortSignal } = {},
): Promise<ResolvedBundle> {
  try {
    return await ctx.bundles.resolve(ref);
  } catch (e) {
    if (!(e instanceof VmforgeError) || e.code !== 'NOT_FOUND' || !ctx.config.repository.url) throw e;
  }
  const client = await repoClientFor(ctx.config);
  const step = 'bundle.pull';
  if (opts.dryRun) {
    const manifest = await client.manifest(parseBundleRef(ref), opts.signal ? { signal: opts.signal } : {});
    emit({ type: 'step.info', step, message: `bundle ${formatBundleRef(manifest)} is not local; a build would pull it from ${client.url}` });
    return {
      manifest,
      blobPath: ctx.bundles.blobPath(manifest.sha256, manifest.compression),
      manifestPath: ctx.bundles.manifestPath(manifest.name, manifest.version),
    };
  }
  emit({ type: 'step.info', step, message: `bundle ${ref} is not local; pulling it from ${client.url}` });
  const t0 = performance.now();
  const res = await client.pull(ref, ctx.bundles, {
    ...(opts.signal ? { signal: opts.signal } : {}),
    onProgress: (p) => {
      if (p.phase === 'download') emit({ type: 'step.progress', step, done: p.bytes, total: p.total, unit: 'bytes' });
    },
    onNotice: (message) => emit({ type: 'step.info', step, message }),
  });
  const s = (performance.now() - t0) / 1000;
  emit({
    type: 'step.info',
    step,
    message: `pulled ${res.ref}: ${res.bytesFetched} bytes in ${s.toFixed(1)} s${res.resumedFrom ? ` (resumed at byte ${res.resumedFrom})` : ''}, sha256 verified`,
  });
  return res;
}
