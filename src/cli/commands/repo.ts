import type { Command } from 'commander';

export function registerRepoCommands(program: Command): void {
  const repo = program
    .command('repo')
    .description('serve a bundle repository over HTTP (docs/repository.md)')
    .addHelpText('after', '\nExamples:\n  vmforge repo serve --listen 127.0.0.1:8700 --data /srv/vmforge/bundles');

  repo
    .command('serve')
    .description('serve a bundle store to other hosts: list, download (resumable), upload, delete; bearer tokens from repoServer in the config')
    .option('--listen <host:port>', 'address to listen on (port 0: any free port)', '127.0.0.1:8700')
    .option('--data <dir>', 'bundle store to serve (default: bundles.dir from the config)')
    .addHelpText(
      'after',
      `
Tokens, anonymous reads, the upload size limit and the idle timeout come from the repoServer section of the
config file (docs/repo-server.md); bundles.directIo: on writes uploaded blobs with O_DIRECT (docs/config.md).
Stops on Ctrl-C or SIGTERM; uploads cut short are discarded, never half stored.

Examples:
  vmforge repo serve --listen 127.0.0.1:8700 --data /srv/vmforge/bundles
  vmforge repo serve --listen [::1]:0 --config ./repo.yaml
  curl -H "Authorization: Bearer $(cat /etc/vmforge/repo.token)" http://127.0.0.1:8700/v1/bundles`,
    )
    .action(async (opts: { listen: string; data?: string }, cmd: Command) => {
      const { resolve } = await import('node:path');
      const { mkdir } = await import('node:fs/promises');
      const { jsonLinesLog } = await import('../../app/log.js');
      const { loadConfig } = await import('../../config/load.js');
      const { BundleStore } = await import('../../bundles/store.js');
      const { buildRepoServer } = await import('../../server/repo/server.js');
      const { baseUrl, parseListen } = await import('../../server/repo/listen.js');

      const { host, port } = parseListen(opts.listen);
      const config = await loadConfig((cmd.optsWithGlobals() as { config?: string }).config);
      const dir = resolve(opts.data ?? config.bundles.dir);
      await mkdir(dir, { recursive: true });
      // Request lines on stderr; they carry a token's configured name, never the token.
      const log = jsonLinesLog((line) => process.stderr.write(line));
      const { directIoWanted } = await import('../../bundles/direct-io.js');
      const directIo = directIoWanted(config.bundles.directIo);
      const app = await buildRepoServer({ store: new BundleStore(dir), config: config.repoServer, log, directIo });
      await app.listen({ host, port });
      const addr = app.server.address();
      const url = addr !== null && typeof addr === 'object' ? baseUrl(addr.address, addr.port) : baseUrl(host, port);
      if (config.repoServer.tokens.length === 0) {
        process.stderr.write(
          config.repoServer.anonymousRead
            ? 'warning: no tokens in repoServer.tokens: reads are anonymous, uploads and deletes are refused\n'
            : 'warning: no tokens in repoServer.tokens and anonymousRead is off: every request except /v1/health is refused\n',
        );
      }
      process.stdout.write(`vmforge repository serving ${dir} at ${url}\n`);
      await untilStopped(app);
      process.stdout.write('stopped\n');
    });
}

/**
 * Resolves once the server is closed after SIGINT/SIGTERM. Requests in flight get a grace period (or until a
 * second signal); then their connections are cut, and uploads among them discard their temp files.
 */
async function untilStopped(app: { close(): Promise<void>; server: { closeAllConnections(): void } }): Promise<void> {
  const GRACE_MS = 10_000;
  await new Promise<void>((resolveStop) => {
    let stopping = false;
    let timer: NodeJS.Timeout | undefined;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`${sig} again: cutting the transfers in flight\n`);
        app.server.closeAllConnections();
        return;
      }
      stopping = true;
      process.stderr.write(`${sig}: stopping; transfers in flight get ${GRACE_MS / 1000} s (signal again to cut them now)\n`);
      timer = setTimeout(() => app.server.closeAllConnections(), GRACE_MS);
      timer.unref();
      app.close().then(
        () => {
          clearTimeout(timer);
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolveStop();
        },
        (e: unknown) => {
          process.stderr.write(`error while stopping: ${(e as Error).message}\n`);
          resolveStop();
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
