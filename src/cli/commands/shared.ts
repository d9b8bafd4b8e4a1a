import type { Command } from 'commander';
import type { AppContext } from '../../app/context.js';
import { makeRenderer, type Renderer } from '../render.js';

/** Opens the app context for a command, closes it afterwards. Imported lazily to keep --help fast. */
export async function withContext<T>(cmd: Command, fn: (ctx: AppContext) => Promise<T>, opts: { readOnly?: boolean } = {}): Promise<T> {
  const { createContext } = await import('../../app/context.js');
  const globals = cmd.optsWithGlobals() as { config?: string; connect?: string };
  const ctx = await createContext({
    configPath: globals.config,
    readOnly: opts.readOnly ?? false,
    ...(globals.connect ? { libvirtUri: globals.connect } : {}),
    selfCommand: { execPath: process.execPath, execArgv: process.execArgv, entry: process.argv[1] },
  });
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

export function rendererFor(cmd: Command): Renderer {
  return makeRenderer(Boolean((cmd.opts() as { json?: boolean }).json));
}

/** AbortSignal fired by Ctrl-C / SIGTERM, so a running pipeline stops and undoes what it did. */
export function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  let count = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    count++;
    if (count === 1) {
      process.stderr.write(`\n${sig}: stopping and undoing what was done (press again to leave things as they are)\n`);
      ac.abort(new Error(sig));
    } else {
      process.stderr.write(`${sig} again: exiting without finishing the undo; run 'vmforge recover' later\n`);
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: ac.signal,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

export const collect = (value: string, previous: string[] = []) => [...previous, value];
