import type { Command } from 'commander';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve the HTTP API (/v1): build, list, show and destroy VMs, jobs with live events; bearer tokens from `vmforge token`')
    .option('--listen <host:port>', 'address to listen on (port 0: any free port); beyond loopback only with apiServer.tls in the config', '127.0.0.1:8780')
    .addHelpText(
      'after',
      `
Jobs run in this process against this host's state, beside the CLI; at start, jobs a killed process left
half-done are undone first (as 'vmforge recover' does). Tokens: 'vmforge token create'. TLS,
body size limit, failed-auth limit and idle timeout: the apiServer section of the config (docs/api.md).
Stops on Ctrl-C or SIGTERM: running jobs are cancelled and undo themselves first.

Examples:
  vmforge serve --listen 127.0.0.1:8780
  TOKEN=$(vmforge token create --name ci --role operator)
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8780/v1/vms`,
    )
    .action(async (opts: { listen: string }, cmd: Command) => {
      const { createContext } = await import('../../app/context.js');
      const { jsonLinesLog } = await import('../../app/log.js');
      const { buildApiServer, checkListenAddress } = await import('../../api/server.js');
      const { parseListen } = await import('../../server/repo/listen.js');
      const { withHostLock } = await import('../../app/mutating.js');

      const { host, port } = parseListen(opts.listen);
      const ctx = await createContext({ configPath: (cmd.optsWithGlobals() as { config?: string }).config });
      try {
        checkListenAddress(host, ctx.config.apiServer.tls);
        // Jobs a killed server (or CLI) left half-done are undone before new ones are taken.
        await withHostLock(ctx, {}, async (recovered) => {
          for (const r of recovered) process.stderr.write(`recovered job ${r.jobId} (${r.kind} ${r.vm}): ${r.undone} step(s) undone${r.failures.length ? `, ${r.failures.length} undo failure(s)` : ''}\n`);
        });
        // Request lines on stderr; they carry a token's name, never the token.
        const log = jsonLinesLog((line) => process.stderr.write(line));
        const server = await buildApiServer({ ctx, log });
        await server.app.listen({ host, port });
        const addr = server.app.server.address();
        const scheme = ctx.config.apiServer.tls ? 'https' : 'http';
        const shown = addr !== null && typeof addr === 'object' ? { host: addr.address, port: addr.port } : { host, port };
        process.stdout.write(`vmforge API serving at ${scheme}://${shown.host.includes(':') ? `[${shown.host}]` : shown.host}:${shown.port}/v1\n`);
        await untilSignal();
        process.stderr.write('stopping: cancelling running jobs (they undo what they did)\n');
        await server.close();
        process.stdout.write('stopped\n');
      } finally {
        await ctx.close();
      }
    });
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
