/**
 * Streaming process pipelines (`tar ... | zstd ...` without a shell), which CommandRunner.run cannot express:
 * it buffers whole outputs. Adjacent stages are joined by an OS pipe (the data never passes through Node); Node
 * only feeds the first stage's stdin and/or reads the last stage's stdout, so it can hash and count the bytes.
 * Callers reach it through the runner's `pipeline()` (runner.ts), so tests can substitute it like `run()`.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { VmforgeError } from '../errors.js';
import { refuseShell } from './no-shell.js';
import { missingTool, which } from './host-tools.js';

export interface PipelineStage {
  argv: readonly string[];
  /**
   * Sees every stderr line of this stage; return true for lines that are data rather than diagnostics (e.g. tar's
   * verbose listing), so they stay out of the error tail.
   */
  onStderrLine?: (line: string) => boolean;
  /** Exit codes of this stage that are not failures (besides 0), e.g. tar's 1 "some files changed while read". */
  okCodes?: readonly number[];
}

export interface PipelineSpec {
  stages: readonly PipelineStage[];
  /** Streamed into the first stage's stdin; without it the first stage reads /dev/null. */
  stdin?: Readable;
  /** 'pipe' hands the last stage's stdout to the caller as `stdout`; default 'ignore'. */
  stdout?: 'pipe' | 'ignore';
  cwd?: string;
  env?: Record<string, string>;
  signal?: AbortSignal;
}

export interface RunningPipeline {
  stdout: Readable | null;
  /**
   * Resolves when every stage exited 0. Otherwise rejects with COMMAND_FAILED naming the stage that caused the
   * failure (stages that only died of a broken pipe are consequences), CANCELLED after the signal fired, or
   * MISSING_TOOL.
   */
  done: Promise<void>;
  /** Stops every stage that is still running (SIGTERM). */
  kill(): void;
}

export interface PipelineRunner {
  pipeline(spec: PipelineSpec): RunningPipeline;
}

const STDERR_TAIL_CHARS = 2000;

interface StageState {
  argv: readonly string[];
  okCodes: readonly number[];
  child: ChildProcess;
  tail: string;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

export function spawnPipeline(spec: PipelineSpec): RunningPipeline {
  if (spec.stages.length === 0) throw new VmforgeError('INTERNAL', 'empty pipeline');
  // Checked up front so a missing program fails before anything starts writing.
  for (const st of spec.stages) {
    const file = st.argv[0];
    if (!file) throw new VmforgeError('INTERNAL', 'empty argv in pipeline');
    refuseShell(st.argv);
    if (!which(file, spec.env?.PATH)) throw missingTool(file);
  }
  if (spec.signal?.aborted) throw cancelled(spec.stages);

  const env = { ...process.env, ...spec.env, LC_ALL: 'C' };
  const states: StageState[] = [];
  let prevOut: Readable | null = null;
  try {
    for (const [i, st] of spec.stages.entries()) {
      const last = i === spec.stages.length - 1;
      const stdio: StdioOptions = [
        i === 0 ? (spec.stdin ? 'pipe' : 'ignore') : (prevOut as Readable),
        last ? (spec.stdout ?? 'ignore') : 'pipe',
        'pipe',
      ];
      const [file, ...args] = st.argv as [string, ...string[]];
      const child: ChildProcess = spawn(file, args, { stdio, cwd: spec.cwd, env });
      // The parent's copy of the joining pipe must go: while Node holds a read end, a producer whose consumer died
      // would block on a full pipe instead of getting EPIPE.
      prevOut?.destroy();
      prevOut = last ? null : child.stdout;
      const state: StageState = { argv: st.argv, okCodes: st.okCodes ?? [], child, tail: '' };
      states.push(state);
      collectStderr(child, state, st.onStderrLine);
    }
  } catch (e) {
    for (const s of states) s.child.kill('SIGKILL');
    throw e;
  }

  let aborted = false;
  const kill = () => {
    for (const s of states) if (s.exit === undefined) s.child.kill('SIGTERM');
  };
  const onAbort = () => {
    aborted = true;
    kill();
    spec.stdin?.destroy();
  };
  spec.signal?.addEventListener('abort', onAbort, { once: true });

  const first = states[0] as StageState;
  if (spec.stdin && first.child.stdin) {
    const sink = first.child.stdin;
    // EPIPE here only means the first stage stopped reading; its exit status says why.
    sink.on('error', () => undefined);
    const source = spec.stdin;
    source.on('error', () => sink.destroy());
    // If the stage exits before reading everything, release the source (an open file) instead of leaving it paused.
    sink.on('close', () => source.destroy());
    source.pipe(sink);
  }

  const exits = states.map(
    (s) =>
      new Promise<Error | undefined>((resolve) => {
        s.child.once('error', (err) => resolve(err));
        s.child.once('close', (code, signal) => {
          s.exit = { code, signal };
          resolve(undefined);
        });
      }),
  );

  const done = Promise.all(exits).then((spawnErrors) => {
    spec.signal?.removeEventListener('abort', onAbort);
    if (aborted) throw cancelled(spec.stages);
    const failedAt = spawnErrors.findIndex((e) => e !== undefined);
    const spawnError = spawnErrors[failedAt];
    if (spawnError) {
      const file = String(spec.stages[failedAt]?.argv[0]);
      if ((spawnError as NodeJS.ErrnoException).code === 'ENOENT') throw missingTool(file);
      throw new VmforgeError('COMMAND_FAILED', `${file} could not be started: ${spawnError.message}`, { cause: spawnError });
    }
    const failed = states.filter((s) => s.exit?.code !== 0 && !(s.exit?.code != null && s.okCodes.includes(s.exit.code)));
    if (failed.length === 0) return;
    const rootCause = failed.find((s) => !diedOfBrokenPipe(s)) ?? (failed[0] as StageState);
    const others = failed.filter((s) => s !== rootCause);
    const detail = (s: StageState) => `${s.argv.join(' ')} ${describeExit(s)}${s.tail.trim() ? `: ${s.tail.trim()}` : ''}`;
    const message = [detail(rootCause), ...others.map((s) => `(then ${detail(s)})`)].join('\n');
    throw new VmforgeError('COMMAND_FAILED', message);
  });
  // Callers that bail out early (and kill) must not leave an unhandled rejection behind.
  done.catch(() => undefined);

  // Consumed from here on: a child that exits makes Node resume (and drop) any stdout nobody listens to yet, and the
  // caller may attach its reader only after a few awaits.
  const lastOut = (states[states.length - 1] as StageState).child.stdout;
  const stdout = lastOut ? lastOut.pipe(new PassThrough({ highWaterMark: 1024 * 1024 })) : null;
  return { stdout, done, kill };
}

function collectStderr(child: ChildProcess, state: StageState, onLine: PipelineStage['onStderrLine']): void {
  const stderr = child.stderr;
  if (!stderr) return;
  stderr.setEncoding('utf8');
  let partial = '';
  const keep = (line: string) => {
    if (onLine?.(line)) return;
    state.tail = (state.tail + line + '\n').slice(-STDERR_TAIL_CHARS);
  };
  stderr.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) keep(line);
  });
  stderr.on('end', () => {
    if (partial) keep(partial);
    partial = '';
  });
}

function diedOfBrokenPipe(s: StageState): boolean {
  return s.exit?.signal === 'SIGPIPE' || s.exit?.code === 141 || /broken pipe/i.test(s.tail);
}

function describeExit(s: StageState): string {
  return s.exit?.signal ? `was killed by ${s.exit.signal}` : `exited with ${s.exit?.code ?? '?'}`;
}

function cancelled(stages: readonly PipelineStage[]): VmforgeError {
  return new VmforgeError('CANCELLED', `${stages.map((s) => s.argv[0]).join(' | ')} was cancelled`);
}
