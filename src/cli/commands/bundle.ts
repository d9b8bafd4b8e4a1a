import type { Command } from 'commander';
import { collect, interruptSignal, withContext } from './shared.js';
import { fmtMs, table } from '../render.js';
import { byteProgress, formatRate, progressLine } from '../progress.js';
import { formatSize } from '../../core/units.js';
import { invalidInput } from '../../errors.js';
import type { AppContext } from '../../app/context.js';
import type { ResolvedBundle } from '../../bundles/store.js';

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
    .description('pack a root filesystem (a live system\'s / by default) into a bundle in the local store')
    .requiredOption('--name <name>', 'bundle name')
    .option('--version <version>', 'bundle version (default: now as YYYYMMDD.HHMMSS)')
    .option('--root <dir>', 'root of the system to pack', '/')
    .option('--from <dir>', 'same as --root')
    .option('--exclude <pattern>', "extra exclude (tar wildcard; '/var/log/*' means the root's /var/log), repeatable", collect)
    .option('--compress <kind>', 'zstd, gzip or xz', 'zstd')
    .option('--level <n>', 'compression level (zstd 1-19, gzip 1-9, xz 0-9)')
    .option('--publish [url]', 'publish it afterwards (to URL, or to repository.url)')
    .option('--json', 'JSON output')
    .addHelpText(
      'after',
      `
Left out by default: the contents of /tmp, /var/tmp, /proc, /sys, /dev and /run; lost+found; active swap files;
package caches (apt, dnf, yum, zypper, pacman, apk); DHCP leases; SSH host keys; systemd's random seed; the
bundle store itself. /etc/machine-id is kept as an empty file (a VM makes its own on first boot).
On a live / (the default), files that change while being read are archived as read and listed as warnings.

Examples:
  vmforge bundle create --name web --version 1.0                      the running system
  vmforge bundle create --root /srv/templates/web --name web --version 1.0
  vmforge bundle create --root /mnt/tpl --name tpl --compress xz --exclude '/var/log/*' --publish`,
    )
    .action(async (opts: Record<string, unknown>, cmd: Command) => {
      const json = Boolean(opts.json);
      const p = progressLine(json);
      const { signal, dispose } = interruptSignal();
      try {
        await withContext(cmd, async (ctx) => {
          const { createBundle } = await import('../../bundles/create.js');
          const { COMPRESSIONS } = await import('../../bundles/manifest.js');
          const { liveExcludesFor } = await import('../../bundles/live-root.js');
          const { LIVE_SYSTEM_EMPTIED } = await import('../../bundles/live-excludes.js');
          const compression = opts.compress as (typeof COMPRESSIONS)[number];
          if (!COMPRESSIONS.includes(compression)) throw invalidInput(`--compress '${String(opts.compress)}' is not supported`, `use ${COMPRESSIONS.join(', ')}`);
          if (opts.from !== undefined && opts.root !== '/' && opts.from !== opts.root) throw invalidInput('--from and --root name different roots', '--from is another name for --root: give one');
          const rootDir = (opts.from as string | undefined) ?? (opts.root as string);
          const level = opts.level === undefined ? undefined : Number(opts.level);
          if (level !== undefined && !Number.isInteger(level)) throw invalidInput(`--level '${String(opts.level)}' is not a whole number`);
          const now = new Date();
          const version = (opts.version as string | undefined) ?? now.toISOString().replace(/[-:]/g, '').replace('T', '.').slice(0, 15);
          // Checked before packing gigabytes: a bad URL or token should not wait for the archive.
          const publisher = opts.publish === undefined ? undefined : await repoClient(ctx, opts.publish === true ? undefined : (opts.publish as string));
          await ctx.bundles.sweepTemp();
          const live = await liveExcludesFor(rootDir, ctx.config.bundles.dir, (opts.exclude as string[] | undefined) ?? []);
          const bp = byteProgress(p);
          const res = await createBundle(ctx.runner, {
            rootDir,
            name: opts.name as string,
            version,
            compression,
            ...(level !== undefined ? { level } : {}),
            excludes: live.excludes,
            emptyFiles: LIVE_SYSTEM_EMPTIED,
            allowHostRoot: true,
            tolerateChanges: live.root === '/',
            source: { kind: 'root', path: live.root },
            storeDir: ctx.config.bundles.dir,
            created: now.toISOString(),
            signal,
            onProgress: (e) => bp.update('packing', e.unpackedBytes, undefined, `, ${e.entries} files, ${formatSize(e.compressedBytes)} out`),
          });
          const m = res.manifest;
          const seconds = bp.seconds();
          p.clear();
          for (const f of res.changedWhileReading.slice(0, 20)) p.line(`warning: ${f} changed while it was read`);
          if (res.changedWhileReading.length > 20) p.line(`warning: ... and ${res.changedWhileReading.length - 20} more files changed while read`);
          const published = publisher ? await publishWithProgress(publisher, res, json, signal) : undefined;
          const out = { ...m, seconds, changedWhileReading: res.changedWhileReading, ...(published ? { published } : {}) };
          if (json) return void process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
          process.stdout.write(
            `bundle ${m.name}:${m.version}: ${m.os.prettyName}, ${m.fileCount} entries, ${formatSize(m.unpackedBytes)} unpacked -> ${formatSize(m.compressedBytes)} ${m.compression} ` +
              `in ${fmtMs(seconds * 1000)} (${formatRate(m.unpackedBytes / Math.max(seconds, 0.001))}), sha256 ${m.sha256.slice(0, 12)}…` +
              `${res.changedWhileReading.length ? `, ${res.changedWhileReading.length} file(s) changed while read` : ''}\n`,
          );
          if (published) process.stdout.write(`${publishedLine(published)}\n`);
        });
      } finally {
        dispose();
      }
    });

  bundle
    .command('import')
    .description('store a root filesystem archive made elsewhere (tar.gz, tar.zst, tar.xz) as a bundle')
    .argument('<file>', "the archive, e.g. made with 'tar -C ROOT --numeric-owner -czpf FILE .'")
    .option('--name <name>', 'bundle name (default: the file name without extensions)')
    .option('--version <version>', 'bundle version (default: DATE-SHA256PREFIX)')
    .option('--arch <arch>', 'architecture, when the archive has no ELF /usr/bin/env or /bin/sh to tell it')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge bundle import centos7-root.tar.gz --name centos --version 7.9\n  vmforge bundle import rootfs.tar.zst')
    .action(async (file: string, opts: Record<string, unknown>, cmd: Command) => {
      const json = Boolean(opts.json);
      const p = progressLine(json);
      const { signal, dispose } = interruptSignal();
      try {
        await withContext(cmd, async (ctx) => {
          const { importBundle } = await import('../../bundles/import.js');
          await ctx.bundles.sweepTemp();
          const bp = byteProgress(p);
          const labels = { inspect: 'reading', probe: 'probing', store: 'storing' } as const;
          const res = await importBundle(ctx.runner, {
            file,
            ...(opts.name ? { name: opts.name as string } : {}),
            ...(opts.version ? { version: opts.version as string } : {}),
            ...(opts.arch ? { arch: opts.arch as string } : {}),
            storeDir: ctx.config.bundles.dir,
            created: new Date().toISOString(),
            signal,
            onProgress: (e) => bp.update(labels[e.phase], e.bytes, e.total),
          });
          const m = res.manifest;
          const seconds = bp.seconds();
          p.clear();
          if (json) return void process.stdout.write(`${JSON.stringify({ ...m, seconds }, null, 2)}\n`);
          process.stdout.write(
            `bundle ${m.name}:${m.version}: ${m.os.prettyName} (family ${m.os.family}), ${m.arch}, kernels ${m.kernels.map((k) => k.version).join(', ') || 'none'}, ` +
              `bootloader ${m.bootloader ?? 'none'}, ${m.fileCount} entries, ${formatSize(m.unpackedBytes)} unpacked, ${formatSize(m.compressedBytes)} ${m.compression}, imported in ${fmtMs(seconds * 1000)}\n`,
          );
        });
      } finally {
        dispose();
      }
    });

  bundle
    .command('publish')
    .description('upload a bundle of the local store to a bundle repository')
    .argument('<ref>', 'NAME[:VERSION] (latest by default)')
    .option('--repo <url>', 'repository URL (default: repository.url from the config)')
    .option('--json', 'JSON output')
    .addHelpText('after', `\nThe token comes from ${'$'}VMFORGE_REPO_TOKEN or repository.tokenFile.\n\nExamples:\n  vmforge bundle publish debian-bookworm --repo http://10.0.0.5:8700\n  vmforge bundle publish web:1.0`)
    .action(async (ref: string, opts: { repo?: string; json?: boolean }, cmd: Command) => {
      const { signal, dispose } = interruptSignal();
      try {
        await withContext(cmd, async (ctx) => {
          const client = await repoClient(ctx, opts.repo);
          const entry = await ctx.bundles.resolve(ref);
          const r = await publishWithProgress(client, entry, Boolean(opts.json), signal);
          if (opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
          else process.stdout.write(`${publishedLine(r)}\n`);
        });
      } finally {
        dispose();
      }
    });

  bundle
    .command('pull')
    .description('download a bundle from a bundle repository into the local store (resumable, verified)')
    .argument('<ref>', 'NAME[:VERSION] (latest by default)')
    .option('--repo <url>', 'repository URL (default: repository.url from the config)')
    .option('--json', 'JSON output')
    .addHelpText(
      'after',
      `\nAn interrupted pull keeps what it downloaded; running it again resumes there. The bundle appears in the\nstore only once its sha256 matches the repository's manifest.\n\nExamples:\n  vmforge bundle pull debian-bookworm --repo http://10.0.0.5:8700\n  vmforge bundle pull web:1.0`,
    )
    .action(async (ref: string, opts: { repo?: string; json?: boolean }, cmd: Command) => {
      const json = Boolean(opts.json);
      const p = progressLine(json);
      const { signal, dispose } = interruptSignal();
      try {
        await withContext(cmd, async (ctx) => {
          const client = await repoClient(ctx, opts.repo);
          await ctx.bundles.sweepTemp();
          const bp = byteProgress(p);
          const r = await client.pull(ref, ctx.bundles, {
            signal,
            onProgress: (e) => bp.update(e.phase === 'verify' ? 'checking the partial file' : 'downloading', e.bytes, e.total),
            onNotice: (msg) => p.line(msg),
          });
          const seconds = bp.seconds();
          p.clear();
          const out = {
            ref: r.ref,
            alreadyPresent: r.alreadyPresent,
            bytes: r.manifest.compressedBytes,
            bytesFetched: r.bytesFetched,
            resumedFrom: r.resumedFrom,
            attempts: r.attempts,
            directIo: r.directIo,
            seconds,
            sha256: r.manifest.sha256,
            blobPath: r.blobPath,
          };
          if (json) return void process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
          process.stdout.write(
            r.alreadyPresent
              ? `bundle ${r.ref} is already in the local store (sha256 ${r.manifest.sha256.slice(0, 12)}…); nothing fetched\n`
              : `pulled ${r.ref}: ${formatSize(r.bytesFetched)} in ${fmtMs(seconds * 1000)} (${formatRate(bp.average(r.bytesFetched))})` +
                  `${r.resumedFrom ? `, resumed at ${formatSize(r.resumedFrom)}` : ''}${r.attempts > 1 ? `, ${r.attempts} attempts` : ''}, sha256 ${r.manifest.sha256.slice(0, 12)}… verified\n`,
          );
        });
      } finally {
        dispose();
      }
    });

  bundle
    .command('list')
    .description('list bundles in the local store, or in a bundle repository')
    .option('--repo <url>', "list the repository's bundles instead")
    .option('--remote', 'list the bundles of repository.url from the config')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge bundle list\n  vmforge bundle list --repo http://10.0.0.5:8700')
    .action(async (opts: { json?: boolean; repo?: string; remote?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const list = opts.repo !== undefined || opts.remote ? await (await repoClient(ctx, opts.repo)).list() : await ctx.bundles.list();
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
            `bootloader:  ${m.bootloader ?? 'not recorded'}`,
            `made on:     ${m.sourceHost ?? 'not recorded'}${m.source ? ` (${m.source.kind === 'debootstrap' ? 'debootstrap' : m.source.kind === 'root' ? `from ${m.source.path}` : `imported from ${m.source.file}`})` : ''}`,
            ...(m.excludes.length ? [`excluded:    ${m.excludes.join(' ')}`] : []),
            ...(m.emptied?.length ? [`emptied:     ${m.emptied.join(' ')}`] : []),
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

async function repoClient(ctx: AppContext, url: string | undefined) {
  const { repoClientFor } = await import('../../app/bundle-source.js');
  return repoClientFor(ctx.config, url);
}

interface Published {
  ref: string;
  repo: string;
  bytes: number;
  alreadyPresent: boolean;
  seconds: number;
  attempts: number;
}

async function publishWithProgress(client: Awaited<ReturnType<typeof repoClient>>, entry: ResolvedBundle, json: boolean, signal: AbortSignal): Promise<Published> {
  const p = progressLine(json);
  const bp = byteProgress(p);
  const r = await client.publish(entry, {
    signal,
    onProgress: (e) => bp.update('uploading', e.bytes, e.total),
    onNotice: (msg) => p.line(msg),
  });
  p.clear();
  return { ref: r.ref, repo: client.url, bytes: r.bytes, alreadyPresent: r.alreadyPresent, seconds: bp.seconds(), attempts: r.attempts };
}

function publishedLine(r: Published): string {
  return r.alreadyPresent
    ? `${r.ref} is already in ${r.repo} with the same content; nothing sent`
    : `published ${r.ref} to ${r.repo}: ${formatSize(r.bytes)} in ${fmtMs(r.seconds * 1000)} (${formatRate(r.bytes / Math.max(r.seconds, 0.001))})${r.attempts > 1 ? `, ${r.attempts} attempts` : ''}`;
}
