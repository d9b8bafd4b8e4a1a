import type { Command } from 'commander';
import { collect, interruptSignal, withContext } from './shared.js';
import { fmtMs, table } from '../render.js';
import { formatSize } from '../../core/units.js';
import { invalidInput } from '../../errors.js';

/** Progress on stderr: one updating line on a terminal, a line every few seconds otherwise. */
function progressLine(json: boolean) {
  const tty = Boolean(process.stderr.isTTY) && !json;
  let last = 0;
  return {
    update(text: string) {
      const now = Date.now();
      if (json || now - last < (tty ? 200 : 5000)) return;
      last = now;
      process.stderr.write(tty ? `\r\x1b[K  ${text}` : `  ${text}\n`);
    },
    line(text: string) {
      if (json) return;
      if (tty) process.stderr.write('\r\x1b[K');
      process.stderr.write(`  ${text}\n`);
    },
  };
}

export function registerBundleCommands(program: Command): void {
  const bundle = program
    .command('bundle')
    .description('make, list, inspect, verify and remove template bundles')
    .addHelpText('after', '\nExamples:\n  vmforge bundle bootstrap debian\n  vmforge bundle create --from /srv/tpl/web --name web --version 1\n  vmforge bundle list\n  vmforge bundle verify debian-bookworm');

  bundle
    .command('bootstrap')
    .description('make a template bundle with debootstrap (cached: skipped when an identical one exists)')
    .argument('<distro>', "only 'debian' for now")
    .option('--suite <suite>', 'Debian suite', 'bookworm')
    .option('--mirror <url>', 'Debian mirror', 'http://deb.debian.org/debian')
    .option('--kernel <package>', 'kernel package', 'linux-image-cloud-amd64')
    .option('--include <package>', 'extra package (repeatable)', collect)
    .option('--name <name>', 'bundle name (default debian-SUITE)')
    .option('--version <version>', 'bundle version (default DATE-CACHEKEY)')
    .option('--force', 'bootstrap again even when a cached bundle with the same inputs exists')
    .option('--json', 'JSON output')
    .addHelpText(
      'after',
      `
Examples:
  vmforge bundle bootstrap debian
  vmforge bundle bootstrap debian --suite bookworm --kernel linux-image-amd64 --include vim --name debian-vim`,
    )
    .action(async (distro: string, opts: Record<string, unknown>, cmd: Command) => {
      if (distro !== 'debian') throw invalidInput(`cannot bootstrap '${distro}'`, "only 'debian' is supported; for others, make a root tree and use 'vmforge bundle create --from DIR'");
      const json = Boolean(opts.json);
      const p = progressLine(json);
      const { signal, dispose } = interruptSignal();
      try {
        await withContext(cmd, async (ctx) => {
          const { bootstrapDebian } = await import('../../bundles/bootstrap.js');
          const { mkdir } = await import('node:fs/promises');
          const workDir = `${ctx.config.stateDir}/tmp`;
          await mkdir(workDir, { recursive: true, mode: 0o700 });
          const t0 = performance.now();
          let phase = '';
          const res = await bootstrapDebian(ctx.runner, {
            workDir,
            storeDir: ctx.config.bundles.dir,
            created: new Date().toISOString(),
            suite: opts.suite as string,
            mirror: opts.mirror as string,
            kernelPackage: opts.kernel as string,
            extraPackages: (opts.include as string[] | undefined) ?? [],
            ...(opts.name ? { name: opts.name as string } : {}),
            ...(opts.version ? { version: opts.version as string } : {}),
            force: Boolean(opts.force),
            signal,
            onProgress: (e) => {
              if (e.phase !== phase) {
                if (phase) p.line(`${phase} done at ${fmtMs(performance.now() - t0)}`);
                phase = e.phase;
              }
              if (e.phase === 'debootstrap') p.update(`debootstrap: ${e.message.slice(0, 100)}`);
              if (e.phase === 'bundle') p.update(`bundle: ${e.entries} files, ${formatSize(e.unpackedBytes)} in, ${formatSize(e.compressedBytes)} out`);
            },
          });
          const m = res.manifest;
          const out = { ref: `${m.name}:${m.version}`, reused: res.reused, cacheKey: res.cacheKey, manifest: m, seconds: (performance.now() - t0) / 1000 };
          if (json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
          else
            process.stdout.write(
              res.reused
                ? `bundle ${out.ref} already exists for these inputs (cache key ${res.cacheKey.slice(0, 12)}); nothing to do\n`
                : `bundle ${out.ref}: ${m.os.prettyName}, ${formatSize(m.unpackedBytes)} unpacked, ${formatSize(m.compressedBytes)} ${m.compression}, made in ${fmtMs(performance.now() - t0)}\n`,
            );
        });
      } finally {
        dispose();
      }
    });

  bundle
    .command('create')
    .description('pack a root filesystem tree into a bundle in the local store')
    .requiredOption('--from <dir>', 'root of the template system')
    .requiredOption('--name <name>', 'bundle name')
    .option('--version <version>', 'bundle version (default: today as YYYYMMDD.HHMMSS)')
    .option('--exclude <pattern>', 'extra tar --exclude pattern, relative to the root like ./srv/cache (repeatable)', collect)
    .option('--compress <kind>', 'zstd, gzip or xz', 'zstd')
    .option('--level <n>', 'compression level')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge bundle create --from /srv/templates/web --name web --version 1.0\n  vmforge bundle create --from /mnt/tpl --name tpl --compress gzip --exclude \'./var/log/*\'')
    .action(async (opts: Record<string, unknown>, cmd: Command) => {
      const json = Boolean(opts.json);
      const p = progressLine(json);
      const { signal, dispose } = interruptSignal();
      try {
        await withContext(cmd, async (ctx) => {
          const { createBundle, DEFAULT_TEMPLATE_EXCLUDES } = await import('../../bundles/create.js');
          const { COMPRESSIONS } = await import('../../bundles/manifest.js');
          const compression = opts.compress as (typeof COMPRESSIONS)[number];
          if (!COMPRESSIONS.includes(compression)) throw invalidInput(`--compress '${String(opts.compress)}' is not supported`, `use ${COMPRESSIONS.join(', ')}`);
          const now = new Date();
          const version = (opts.version as string | undefined) ?? now.toISOString().replace(/[-:]/g, '').replace('T', '.').slice(0, 15);
          await ctx.bundles.sweepTemp();
          const t0 = performance.now();
          const res = await createBundle(ctx.runner, {
            rootDir: opts.from as string,
            name: opts.name as string,
            version,
            compression,
            ...(opts.level !== undefined ? { level: Number(opts.level) } : {}),
            excludes: [...DEFAULT_TEMPLATE_EXCLUDES, ...((opts.exclude as string[] | undefined) ?? [])],
            storeDir: ctx.config.bundles.dir,
            created: now.toISOString(),
            signal,
            onProgress: (e) => p.update(`${e.entries} files, ${formatSize(e.unpackedBytes)} in, ${formatSize(e.compressedBytes)} out`),
          });
          const m = res.manifest;
          if (json) process.stdout.write(`${JSON.stringify(m, null, 2)}\n`);
          else process.stdout.write(`bundle ${m.name}:${m.version}: ${m.fileCount} entries, ${formatSize(m.unpackedBytes)} unpacked, ${formatSize(m.compressedBytes)} ${m.compression}, sha256 ${m.sha256.slice(0, 12)}…, ${fmtMs(performance.now() - t0)}\n`);
        });
      } finally {
        dispose();
      }
    });

  bundle
    .command('list')
    .description('list bundles in the local store')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge bundle list')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const list = await ctx.bundles.list();
        if (opts.json) return void process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        if (!list.length) return void process.stdout.write("no bundles; make one with 'vmforge bundle bootstrap debian'\n");
        process.stdout.write(
          `${table(
            list.map((m) => [`${m.name}:${m.version}`, m.os.prettyName, formatSize(m.unpackedBytes), `${formatSize(m.compressedBytes)} ${m.compression}`, m.created]),
            ['BUNDLE', 'OS', 'UNPACKED', 'COMPRESSED', 'CREATED'],
          )}\n`,
        );
      });
    });

  bundle
    .command('inspect')
    .description("print a bundle's manifest")
    .argument('<ref>', 'NAME[:VERSION] (latest by default)')
    .option('--json', 'JSON output (the manifest itself)')
    .addHelpText('after', '\nExamples:\n  vmforge bundle inspect debian-bookworm\n  vmforge bundle inspect debian-bookworm:20261125-ab12cd34 --json')
    .action(async (ref: string, opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { manifest: m, blobPath } = await ctx.bundles.resolve(ref);
        if (opts.json) return void process.stdout.write(`${JSON.stringify(m, null, 2)}\n`);
        process.stdout.write(
          [
            `bundle:      ${m.name}:${m.version}`,
            `os:          ${m.os.prettyName} (${m.os.id} ${m.os.versionId}, family ${m.os.family}), ${m.arch}`,
            `kernels:     ${m.kernels.map((k) => k.version).join(', ') || 'none'}`,
            `unpacked:    ${formatSize(m.unpackedBytes)} in ${m.fileCount} entries`,
            `compressed:  ${formatSize(m.compressedBytes)} ${m.compression}`,
            `sha256:      ${m.sha256}`,
            `created:     ${m.created}`,
            `file:        ${blobPath}`,
          ].join('\n') + '\n',
        );
      });
    });

  bundle
    .command('verify')
    .description("re-hash a bundle's file and compare it with its manifest")
    .argument('<ref>', 'NAME[:VERSION]')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge bundle verify debian-bookworm')
    .action(async (ref: string, opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const r = await ctx.bundles.verify(ref);
        if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        else process.stdout.write(r.ok ? `${r.ref}: OK (sha256 ${r.actualSha256.slice(0, 12)}…)\n` : `${r.ref}: CORRUPT: expected sha256 ${r.expectedSha256} (${r.expectedBytes} bytes), got ${r.actualSha256} (${r.actualBytes} bytes)\n`);
        if (!r.ok) process.exitCode = 8;
      });
    });

  bundle
    .command('rm')
    .description('remove a bundle from the local store (its file goes when no other manifest uses it)')
    .argument('<ref>', 'NAME[:VERSION]')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge bundle rm debian-bookworm:20261125-ab12cd34')
    .action(async (ref: string, opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const r = await ctx.bundles.remove(ref);
        if (opts.json) process.stdout.write(`${JSON.stringify({ removed: `${r.manifest.name}:${r.manifest.version}`, blobRemoved: r.blobRemoved })}\n`);
        else process.stdout.write(`removed ${r.manifest.name}:${r.manifest.version}${r.blobRemoved ? '' : ' (file kept: another manifest uses it)'}\n`);
      });
    });
}
