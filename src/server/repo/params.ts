/** Names and versions from request paths, checked with the bundle-ref rules before they go near a path. */
import { bundleNameSchema, bundleVersionSchema, LATEST, type BundleRef } from '../../bundles/manifest.js';
import { HttpError } from './http-errors.js';

export interface RefParams {
  name: string;
  version: string;
}

/** `allowLatest`: reads and deletes may say `latest`; an upload names a concrete version. */
export function refFromParams(p: RefParams, opts: { allowLatest: boolean }): BundleRef {
  checkName(p.name);
  if (p.version === LATEST) {
    if (opts.allowLatest) return { name: p.name, version: LATEST };
    throw new HttpError('INVALID_INPUT', `'${LATEST}' is reserved for the newest version; upload under a concrete version`);
  }
  const v = bundleVersionSchema.safeParse(p.version);
  if (!v.success) throw new HttpError('INVALID_INPUT', `bundle version ${JSON.stringify(p.version)} ${v.error.issues[0]?.message ?? 'is invalid'}`);
  return { name: p.name, version: p.version };
}

export function checkName(name: string): void {
  const n = bundleNameSchema.safeParse(name);
  if (!n.success) throw new HttpError('INVALID_INPUT', `bundle name ${JSON.stringify(name)} ${n.error.issues[0]?.message ?? 'is invalid'}`);
}
