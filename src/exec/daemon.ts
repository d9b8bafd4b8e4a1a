/**
 * Long-running children (qemu-storage-daemon's FUSE export), which neither `run` (waits for the exit) nor
 * `pipeline` (streams data) fits: the caller starts the program, goes on working while it serves, then stops it.
 * Callers reach it through the runner's `spawnDaemon()` (runner.ts), so tests can substitute it like `run()`.
 */
import { spawn } from 'node:child_process';
import { VmforgeError } from '../errors.js';
import { refuseShell } from './no-shell.js';
import { missingTool, which } from './host-tools.js';

export interface DaemonSpec {
  argv: readonly string[];
  cwd?: string;
  env?: Record<string, string>;
}

export interface DaemonExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the program could not be started at all. */
  error?: Error;
  /** Last lines of stderr, for error messages. */
  stderrTail: string;
}

export interface RunningDaemon {
  pid: number;
  /** Resolves (never rejects) once the process has exited and its stdio is closed. */
  exited: Promise<DaemonExit>;
  /** Whether the process has exited already. */
  hasExited(): boolean;
  /** Sends `signal` (default SIGTERM) if the process is still running; false when it was not. */
  kill(signal?: NodeJS.Signals): boolean;
  /** stderr so far (tail), while it runs. */
  stderrTail(): string;
}

export interface DaemonRunner {
  spawnDaemon(spec: DaemonSpec): RunningDaemon;
}

/** The runner as a DaemonRunner, for the uses that start one (a FUSE export); a runner that cannot is a bug. */
export function requireDaemonRunner<R extends object>(runner: R): R & DaemonRunner {
  if (!('spawnDaemon' in runner) || typeof (runner as Partial<DaemonRunner>).spawnDaemon !== 'function') {
    throw new VmforgeError('INTERNAL', 'this use needs a runner that can start daemons (qemu-storage-daemon)');
  }
  return runner as R & DaemonRunner;
}

const STDERR_TAIL_CHARS = 2000;

export function spawnDaemon(spec: DaemonSpec): RunningDaemon {
  const [file, ...args] = spec.argv;
  if (!file) throw new VmforgeError('INTERNAL', 'empty argv for a daemon');
  refuseShell(spec.argv);
  if (!which(file, spec.env?.PATH)) throw missingTool(file);
  // Own process group: a Ctrl-C in the terminal reaches vmforge, whose undo then stops the daemon after
  // unmounting what sits on top of it. Were the daemon in the foreground group too, it would exit first and
  // the loop devices and mounts above it would see I/O errors while being taken down.
  const child = spawn(file, args, {
    cwd: spec.cwd,
    env: { ...process.env, ...spec.env, LC_ALL: 'C' },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-STDERR_TAIL_CHARS);
  });
  let exit: DaemonExit | undefined;
  const exited = new Promise<DaemonExit>((resolve) => {
    child.once('error', (error) => {
      // 'error' without a pid means spawn failed; no 'close' may follow.
      if (child.pid === undefined) {
        exit = { code: null, signal: null, error, stderrTail: tail };
        resolve(exit);
      }
    });
    child.once('close', (code, signal) => {
      exit = { code, signal, stderrTail: tail };
      resolve(exit);
    });
  });
  return {
    pid: child.pid ?? -1,
    exited,
    hasExited: () => exit !== undefined || child.exitCode !== null || child.signalCode !== null,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (exit !== undefined || child.exitCode !== null || child.signalCode !== null) return false;
      return child.kill(signal);
    },
    stderrTail: () => tail,
  };
}
