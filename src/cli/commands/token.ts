import type { Command } from 'commander';
import { table } from '../render.js';
import { withContext } from './shared.js';

export function registerTokenCommands(program: Command): void {
  const token = program
    .command('token')
    .description("bearer tokens of the HTTP API ('vmforge serve'): viewer reads, operator builds and destroys, admin also networks and tokens")
    .addHelpText('after', '\nExamples:\n  vmforge token create --name ci --role operator\n  vmforge token list\n  vmforge token revoke ci');

  token
    .command('create')
    .description('make a token and print it (only now: the server keeps its sha256, never the token)')
    .requiredOption('--name <name>', 'what the token is for; shown in the server log instead of the token')
    .requiredOption('--role <role>', 'viewer, operator or admin')
    .option('--json', 'JSON output')
    .addHelpText('after', '\nExamples:\n  vmforge token create --name ci --role operator > /etc/vmforge/ci.token\n  vmforge token create --name dashboard --role viewer --json')
    .action(async (opts: { name: string; role: string; json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { createToken } = await import('../../app/tokens.js');
        const t = await createToken(ctx, opts.name, opts.role);
        process.stdout.write(opts.json ? `${JSON.stringify(t)}\n` : `${t.token}\n`);
        if (!opts.json) process.stderr.write(`token '${t.name}' (${t.role}) made; it is shown only this once\n`);
      });
    });

  token
    .command('list')
    .description('list the tokens: name, role, when made (never the tokens themselves)')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { listTokens } = await import('../../app/tokens.js');
        const list = await listTokens(ctx);
        if (opts.json) return void process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        if (!list.length) return void process.stdout.write("no tokens; make one with 'vmforge token create --name NAME --role viewer'\n");
        process.stdout.write(`${table(list.map((t) => [t.name, t.role, t.createdAt]), ['NAME', 'ROLE', 'CREATED'])}\n`);
      });
    });

  token
    .command('revoke')
    .description('remove a token: requests with it are refused from now on (401)')
    .argument('<name>', 'token name')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const { revokeToken } = await import('../../app/tokens.js');
        await revokeToken(ctx, name);
        process.stdout.write(`token '${name}' revoked\n`);
      });
    });
}
