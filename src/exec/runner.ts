/**
 * CommandRunner: the one way vmforge starts host programs. argv arrays only (never a shell string),
 * optional stdin, timeout and AbortSignal; a non-zero exit becomes a COMMAND_FAILED error carrying the
 * tail of stderr, and a missing program becomes MISSING_TOOL with the package that provides it.
 */
import { execa, ExecaError } from 'execa';
import { VmforgeError } from '../errors.js';

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

/** Which Debian package ships each host program; used in MISSING_TOOL hints. */
export const TOOL_PACKAGES: Record<string, string> = {
  virsh: 'libvirt-clients',
  'qemu-img': 'qemu-utils',
  'qemu-storage-daemon': 'qemu-system-common',
  debootstrap: 'debootstrap',
  zstd: 'zstd',
  tar: 'tar',
  losetup: 'mount',
  partx: 'util-linux',
  sfdisk: 'fdisk',
  'mkfs.ext4': 'e2fsprogs',
  'mkfs.xfs': 'xfsprogs',
  mkswap: 'util-linux',
  blkid: 'util-linux',
  mount: 'mount',
  umount: 'mount',
  'grub-mkimage': 'grub-common',
  'virt-xml-validate': 'libvirt-clients',
  pigz: 'pigz',
  gzip: 'gzip',
  xz: 'xz-utils',
  openssl: 'openssl',
};

const STDERR_TAIL = 2000;

export class ExecaRunner implements CommandRunner {
  constructor(private readonly defaults: { env?: Record<string, string> } = {}) {}

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const [file, ...args] = argv;
    if (!file) throw new VmforgeError('INTERNAL', 'empty argv');
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
}

export function missingTool(file: string): VmforgeError {
  const pkg = TOOL_PACKAGES[file];
  return new VmforgeError('MISSING_TOOL', `required host program '${file}' is not installed`, {
    hint: pkg ? `install it with: apt-get install ${pkg}` : `install the package that provides '${file}'`,
  });
}

export function commandFailed(argv: readonly string[], exitCode: number, stderr: string, stdout = ''): VmforgeError {
  const tail = (stderr.trim() || stdout.trim()).slice(-STDERR_TAIL);
  const err = new VmforgeError('COMMAND_FAILED', `${argv.join(' ')} exited with ${exitCode}${tail ? `: ${tail}` : ''}`);
  return err;
}
