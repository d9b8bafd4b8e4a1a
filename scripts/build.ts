/**
 * `npm run build`: the CLI as an esbuild bundle in dist/ (docs/performance.md, CLI start-up). Loading ~260
 * modules one by one from dist/ and node_modules was most of every command's start-up; a few chunks load in a
 * fraction of that. Code splitting keeps the CLI's lazy imports lazy: `--version` loads the entry only, and
 * each command's module (and what only it needs, e.g. fastify for `repo serve`) is a chunk of its own.
 * Types are checked by `npm run check` (tsc --noEmit), not here.
 */
import { build } from 'esbuild';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..');
const OUT = join(REPO, 'dist');

// Nothing is external: better-sqlite3's JavaScript is bundled too, and src/store/db.ts hands it the path of its
// native addon (resolved from node_modules at run time).
const EXTERNAL: string[] = [];

await rm(OUT, { recursive: true, force: true });
const result = await build({
  absWorkingDir: REPO,
  entryPoints: { 'cli/main': 'src/cli/main.ts' },
  outdir: OUT,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  // Stack traces of internal errors: `node --enable-source-maps dist/cli/main.js ...` maps them to src/.
  sourcemap: 'linked',
  sourcesContent: false,
  // CommonJS dependencies bundled into ESM call require() for Node built-ins; ESM has none, so give them one.
  banner: { js: "import { createRequire as __vmforgeCreateRequire } from 'node:module'; const require = __vmforgeCreateRequire(import.meta.url);" },
  logLevel: 'warning',
  metafile: true,
});
if (result.warnings.length > 0) throw new Error(`esbuild: ${result.warnings.length} warning(s) (see above); the build refuses them`);

// The chunks are ES modules wherever dist/ is copied to (bench/warm-ab.ts compares two copies).
await writeFile(join(OUT, 'package.json'), '{ "type": "module" }\n');
await chmod(join(OUT, 'cli/main.js'), 0o755);
if (process.env.VMFORGE_BUILD_META) await writeFile(process.env.VMFORGE_BUILD_META, JSON.stringify(result.metafile));
