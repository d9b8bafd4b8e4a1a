/**
 * The one way vmforge starts host programs, argv arrays only (never a shell string):
 * - CommandRunner.run: one program to completion, outputs buffered; optional stdin, timeout and AbortSignal;
 * - PipelineRunner.pipeline (pipeline.ts): `a | b | c` streamed, for bundle archives;
 * - DaemonRunner.spawnDaemon (daemon.ts): a long-running child the caller stops itself (qemu-storage-daemon).
 * A non-zero exit becomes a COMMAND_FAILED error carrying the tail of stderr, and a missing program becomes
 * MISSING_TOOL with the package that provides it. HostProcessRunner is the host implementation of all three.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { VmforgeError } from '../errors.js';
import { missingTool } from './host-tools.js';
import { refuseShell } from './no-shell.js';
import { spawnDaemon, type DaemonRunner, type DaemonSpec, type RunningDaemon } from './daemon.js';
import { spawnPipeline, type PipelineRunner, type PipelineSpec, type RunningPipeline } from './pipeline.js';

export interface RunOptions {
  input?: string | Buffer;
  /** File to feed on stdin (streamed, never loaded in memory). */
  inputFile?: string;
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Exit codes that are not failures (besides 0). */
  okCodes?: number[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface CommandRunner {
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
}

/** Everything use cases start on the host: one-shot commands and streaming pipelines. */
export interface HostRunner extends CommandRunner, PipelineRunner {}

const STDERR_TAIL = 2000;
/** Per stream; a command that prints more is killed (nothing vmforge runs comes close). */
const MAX_OUTPUT = 64 * 1024 * 1024;
/** After SIGTERM (timeout or cancel), a child that is still there after this long gets SIGKILL. */
const FORCE_KILL_MS = 5_000;

export class HostProcessRunner implements HostRunner, DaemonRunner {
  constructor(private readonly defaults: { env?: Record<string, string> } = {}) {}

  // node:child_process directly, not execa: execa is ~100 modules, and loading it cost ~100 ms of every build's
  // first host command (the wall time a warm build is judged by).
  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const [file, ...args] = argv;
    if (!file) throw new VmforgeError('INTERNAL', 'empty argv');
    refuseShell(argv);
    if (opts.signal?.aborted) throw cancelled(file);
    const { code, signal, stdout, stderr, outcome } = await runChild(file, args, {
      ...opts,
      env: { ...process.env, ...this.defaults.env, ...opts.env, LC_ALL: 'C' },
    });
    if (outcome === 'missing') throw missingTool(file);
    if (outcome === 'cancelled') throw cancelled(file);
    if (outcome === 'timeout') throw new VmforgeError('TIMEOUT', `${file} did not finish within ${opts.timeoutMs} ms`);
    if (outcome === 'overflow') throw new VmforgeError('COMMAND_FAILED', `${argv.join(' ')} wrote more than ${MAX_OUTPUT} bytes of output`);
    if (signal) throw commandFailed(argv, -1, `killed by ${signal}${stderr.trim() ? `: ${stderr}` : ''}`, stdout);
    const exitCode = code ?? -1;
    if (exitCode !== 0 && !(opts.okCodes ?? []).includes(exitCode)) throw commandFailed(argv, exitCode, stderr, stdout);
    return { stdout, stderr, exitCode };
  }

  pipeline(spec: PipelineSpec): RunningPipeline {
    return spawnPipeline(this.defaults.env ? { ...spec, env: { ...this.defaults.env, ...spec.env } } : spec);
  }

  spawnDaemon(spec: DaemonSpec): RunningDaemon {
    return spawnDaemon(this.defaults.env ? { ...spec, env: { ...this.defaults.env, ...spec.env } } : spec);
  }
}

export function commandFailed(argv: readonly string[], exitCode: number, stderr: string, stdout = ''): VmforgeError {
  const tail = (stderr.trim() || stdout.trim()).slice(-STDERR_TAIL);
  const err = new VmforgeError('COMMAND_FAILED', `${argv.join(' ')} exited with ${exitCode}${tail ? `: ${tail}` : ''}`);
  return err;
}

function cancelled(file: string): VmforgeError {
  return new VmforgeError('CANCELLED', `${file} was cancelled`);
}

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  outcome: 'exited' | 'missing' | 'cancelled' | 'timeout' | 'overflow';
}

/** Runs one program to its end (stdio closed), collecting its output; never rejects for the child's own failures. */
function runChild(file: string, args: string[], opts: RunOptions & { env: NodeJS.ProcessEnv }): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const feeds = opts.input !== undefined || opts.inputFile !== undefined;
    // No input: stdin is /dev/null, so a program that would ask a question reads EOF instead of waiting forever.
    const child = spawn(file, args, { cwd: opts.cwd, env: opts.env, stdio: [feeds ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let outcome: ChildResult['outcome'] = 'exited';
    let forceKill: NodeJS.Timeout | undefined;
    const stop = (why: ChildResult['outcome']) => {
      if (outcome !== 'exited' || child.exitCode !== null || child.signalCode !== null) return;
      outcome = why;
      child.kill('SIGTERM');
      forceKill = setTimeout(() => child.kill('SIGKILL'), FORCE_KILL_MS);
    };
    child.stdout?.on('data', (b: Buffer) => {
      outBytes += b.length;
      if (outBytes > MAX_OUTPUT) stop('overflow');
      else out.push(b);
    });
    child.stderr?.on('data', (b: Buffer) => {
      errBytes += b.length;
      if (errBytes > MAX_OUTPUT) stop('overflow');
      else err.push(b);
    });
    const timer = opts.timeoutMs !== undefined ? setTimeout(() => stop('timeout'), opts.timeoutMs) : undefined;
    const onAbort = () => stop('cancelled');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (child.stdin) {
      // A program may exit without reading all of its input; its exit status says whether that was a failure.
      child.stdin.on('error', () => {});
      if (opts.inputFile !== undefined) {
        const src = createReadStream(opts.inputFile);
        src.on('error', (e) => {
          child.kill('SIGTERM');
          reject(new VmforgeError('INVALID_INPUT', `cannot read ${opts.inputFile}: ${e.message}`));
        });
        src.pipe(child.stdin);
      } else {
        child.stdin.end(opts.input);
      }
    }
    let spawnError: NodeJS.ErrnoException | undefined;
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e;
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (forceKill) clearTimeout(forceKill);
      opts.signal?.removeEventListener('abort', onAbort);
      if (spawnError?.code === 'ENOENT') return resolve({ code, signal, stdout: '', stderr: '', outcome: 'missing' });
      if (spawnError) return reject(new VmforgeError('COMMAND_FAILED', `${file} could not be started: ${spawnError.message}`));
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), outcome });
    });
  });
}
