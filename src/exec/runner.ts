/**
 * The one way vmforge starts host programs, argv arrays only (never a shell string):
 * - CommandRunner.run: one program to completion, outputs buffered; optional stdin, timeout and AbortSignal;
 * - PipelineRunner.pipeline (pipeline.ts): `a | b | c` streamed, for bundle archives;
 * - DaemonRunner.spawnDaemon (daemon.ts): a long-running child the caller stops itself (qemu-storage-daemon).
 * A non-zero exit becomes a COMMAND_FAILED error carrying the tail of stderr, and a missing program becomes
 * MISSING_TOOL with the package that provides it. ExecaRunner is the host implementation of both (HostRunner).
 */
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

export class ExecaRunner implements HostRunner, DaemonRunner {
  constructor(private readonly defaults: { env?: Record<string, string> } = {}) {}

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const [file, ...args] = argv;
    if (!file) throw new VmforgeError('INTERNAL', 'empty argv');
    refuseShell(argv);
    // Loaded on first use: execa is a hundred modules, a noticeable part of start-up for commands that never run a program.
    const { execa, ExecaError } = await import('execa');
    try {
      const res = await execa(file, args, {
        input: opts.input,
        inputFile: opts.inputFile,
        cwd: opts.cwd,
        env: { ...this.defaults.env, ...opts.env, LC_ALL: 'C' },
        timeout: opts.timeoutMs,
        cancelSignal: opts.signal,
        reject: false,
        stripFinalNewline: false,
        maxBuffer: 64 * 1024 * 1024,
      });
      if ((res as { code?: string }).code === 'ENOENT' || (res.failed && res.exitCode === undefined && /ENOENT/.test(String(res.message)))) {
        throw missingTool(file);
      }
      if (res.isCanceled) throw new VmforgeError('CANCELLED', `${file} was cancelled`);
      if (res.timedOut) throw new VmforgeError('TIMEOUT', `${file} did not finish within ${opts.timeoutMs} ms`);
      const exitCode = res.exitCode ?? -1;
      if (exitCode !== 0 && !(opts.okCodes ?? []).includes(exitCode)) {
        throw commandFailed(argv, exitCode, String(res.stderr ?? ''), String(res.stdout ?? ''));
      }
      return { stdout: String(res.stdout ?? ''), stderr: String(res.stderr ?? ''), exitCode };
    } catch (e) {
      if (e instanceof VmforgeError) throw e;
      if (e instanceof ExecaError && /ENOENT/.test(e.message)) throw missingTool(file);
      throw e;
    }
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
