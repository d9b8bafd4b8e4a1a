/**
 * A pool of RSA host keys made ahead of time. RSA 3072 is the one host key type that is slow to make (a prime
 * search of 0.1 to over 1 CPU-second, by luck), and on a busy host it was the largest single cost of a warm
 * build: the build waited for it, and 20 builds at once spent more CPU on primes than on everything else.
 * Ed25519 and ECDSA keys take about a millisecond and are always made fresh.
 *
 * Each key is one file, `<random hex>.pem` (PKCS#1, mode 0600, in a 0700 directory under the state dir), written
 * to a temp name, fsynced and renamed, so a reader never sees half a key. A build claims a key by reading a file
 * and then unlinking it: only the process whose unlink succeeds uses it, so two builds never share a key, and a
 * key leaves the pool before it goes into a guest. A filler (`vmforge cache keys --fill`, started in the
 * background at low priority when a build leaves the pool below its target) tops it up under a lock file.
 *
 * The trade-off: private keys of VMs not yet built rest on the host's disk (root-only), where the images of the
 * built VMs, holding the same kind of keys, already are. `ssh.hostKeyPool: 0` turns the pool off.
 */
import { spawn } from 'node:child_process';
import { generateKeyPair, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { refuseShell } from '../no-shell.js';
import { pidAlive } from '../pid.js';

/** Only RSA of this size is pooled (see above); ssh-host-keys.ts makes the same size when the pool is empty. */
export const POOLED_RSA_BITS = 3072;
const KEY_FILE = /^[0-9a-f]{32}\.pem$/;
const TMP_PREFIX = '.tmp-';
const LOCK = '.fill.lock';

const generateKeyPairAsync = promisify(generateKeyPair);

export function hostKeyPoolDir(stateDir: string): string {
  return join(stateDir, 'host-key-pool', `rsa-${POOLED_RSA_BITS}`);
}

async function keyFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => KEY_FILE.test(f));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

export async function pooledKeyCount(dir: string): Promise<number> {
  return (await keyFiles(dir)).length;
}

/**
 * Takes one key out of the pool: its PKCS#1 PEM, now nobody else's; null when the pool is empty (or absent).
 * The caller checks the key (a damaged file is the caller's to refuse; it is gone from the pool either way).
 */
export async function claimPooledKey(dir: string): Promise<Buffer | null> {
  const files = await keyFiles(dir);
  // Random start: concurrent builds mostly reach for different files instead of racing for the first one.
  const start = files.length ? randomBytes(2).readUInt16BE(0) % files.length : 0;
  for (let i = 0; i < files.length; i++) {
    const path = join(dir, files[(start + i) % files.length] as string);
    let pem: Buffer;
    try {
      pem = await readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // another build took it
      throw e;
    }
    try {
      await unlink(path);
    } catch (e) {
      pem.fill(0);
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // read by two, unlinked by the other: theirs
      throw e;
    }
    return pem;
  }
  return null;
}

/** One fresh RSA private key as PKCS#1 PEM (what the guest's /etc/ssh/ssh_host_rsa_key holds). */
export async function makeRsaPem(): Promise<Buffer> {
  const { privateKey } = await generateKeyPairAsync('rsa', {
    modulusLength: POOLED_RSA_BITS,
    publicExponent: 0x10001,
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return Buffer.from(privateKey);
}

export interface FillResult {
  /** Keys added by this call. */
  made: number;
  /** Keys in the pool when it finished. */
  count: number;
  /** Another filler held the lock: this call did nothing. */
  busy: boolean;
}

export interface FillOptions {
  signal?: AbortSignal;
  /** The lock was taken for this process by the one that started it (refillInBackground). */
  lockTakenForMe?: boolean;
  make?: () => Promise<Buffer>;
  onKey?: (count: number) => void;
  /** Keys made at once (each holds a libuv pool thread for its prime search). Default 1. */
  concurrency?: number;
}

/**
 * Makes keys until the pool holds `target`, one at a time, under the pool's lock (a second filler returns busy
 * at once). Stops early, without error, when `signal` aborts or the pool directory disappears (a state dir
 * removed while the background filler runs).
 */
export async function fillPool(dir: string, target: number, opts: FillOptions = {}): Promise<FillResult> {
  const make = opts.make ?? makeRsaPem;
  // A background filler never creates the directory: its starter did, and if it is gone the state dir is.
  if (!opts.lockTakenForMe) await mkdir(dir, { recursive: true, mode: 0o700 });
  const mine = opts.lockTakenForMe ? await lockIsMine(dir) : await takeLock(dir, String(process.pid));
  if (!mine) return { made: 0, count: await pooledKeyCount(dir), busy: true };
  let made = 0;
  try {
    await removeStaleTemps(dir);
    const missing = target - (await pooledKeyCount(dir));
    let started = 0;
    let gone = false;
    // Builds may claim keys meanwhile; the pool is topped up to what it lacked at the start, which is enough.
    const worker = async () => {
      while (started < missing && !gone && !opts.signal?.aborted) {
        started++;
        const pem = await make();
        try {
          if (!(await addKey(dir, pem))) gone = true;
          else made++;
        } finally {
          pem.fill(0);
        }
        if (!gone) opts.onKey?.(await pooledKeyCount(dir));
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 1) }, worker));
    return { made, count: await pooledKeyCount(dir), busy: false };
  } finally {
    if ((await readLock(dir))?.text.trim() === String(process.pid)) await rm(join(dir, LOCK), { force: true });
  }
}

/** Writes one key into the pool; false when the directory is gone. */
async function addKey(dir: string, pem: Buffer): Promise<boolean> {
  const name = randomBytes(16).toString('hex');
  const tmp = join(dir, `${TMP_PREFIX}${process.pid}-${name}`);
  let fh;
  try {
    fh = await open(tmp, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  try {
    await fh.writeFile(pem);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, join(dir, `${name}.pem`));
  } catch (e) {
    await rm(tmp, { force: true });
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  return true;
}

/**
 * The lock file holds the filler's pid. It is created empty and the pid written right after (by the filler, or
 * by the process that starts one in the background): an empty lock younger than LOCK_EMPTY_GRACE_MS is held.
 * One left by a filler that died is taken over.
 */
const LOCK_EMPTY_GRACE_MS = 10_000;

async function readLock(dir: string): Promise<{ text: string; mtimeMs: number } | null> {
  const path = join(dir, LOCK);
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, mtimeMs: st.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function lockHeld(lock: { text: string; mtimeMs: number }): boolean {
  const text = lock.text.trim();
  // The pool's own clock check, not the pure core's: an empty lock older than the grace is a starter that died.
  if (text === '') return Date.now() - lock.mtimeMs < LOCK_EMPTY_GRACE_MS;
  const pid = Number(text);
  return Number.isInteger(pid) && pid > 0 && pidAlive(pid);
}

async function takeLock(dir: string, content: string): Promise<boolean> {
  const path = join(dir, LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      try {
        if (content) await fh.writeFile(`${content}\n`);
      } finally {
        await fh.close();
      }
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const lock = await readLock(dir);
    if (lock && lockHeld(lock)) return false;
    await rm(path, { force: true });
  }
  return false;
}

/** For a filler started by refillInBackground: waits (briefly) for its starter to write this pid. */
async function lockIsMine(dir: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const lock = await readLock(dir);
    if (!lock) return existsSync(dir) && takeLock(dir, String(process.pid)); // the starter gave up
    const text = lock.text.trim();
    if (text === String(process.pid)) return true;
    if (text !== '') return lockHeld(lock) ? false : takeLock(dir, String(process.pid));
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

async function removeStaleTemps(dir: string): Promise<void> {
  for (const f of await readdir(dir).catch(() => [])) {
    if (!f.startsWith(TMP_PREFIX)) continue;
    const pid = Number(f.slice(TMP_PREFIX.length).split('-')[0]);
    if (!pidAlive(pid)) await rm(join(dir, f), { force: true });
  }
}

/** Whether a filler is running on this pool now (or being started). */
export async function fillerRunning(dir: string): Promise<boolean> {
  const lock = await readLock(dir);
  return lock !== null && lockHeld(lock);
}

/** Removes every pooled key (and the directory). */
export async function clearPool(dir: string): Promise<number> {
  const n = await pooledKeyCount(dir);
  await rm(dir, { recursive: true, force: true });
  return n;
}

/**
 * Starts `vmforge cache keys --fill --background` as a detached process when the pool is below `target` and
 * no filler runs, and returns without waiting. The lock is taken here, before the start, so the builds of a
 * burst that all end at once start one filler, not one each. `cli` is how this process was started (node, its
 * flags, the entry script), so a test running the sources through tsx starts the same sources.
 */
export async function refillInBackground(dir: string, target: number, cli: { execPath: string; execArgv: readonly string[]; entry: string | undefined; configPath: string | null }): Promise<boolean> {
  if (target <= 0 || !cli.entry) return false;
  if ((await pooledKeyCount(dir)) >= target) return false;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (!(await takeLock(dir, ''))) return false;
  const argv = [cli.execPath, ...cli.execArgv, cli.entry, 'cache', 'keys', '--fill', '--background'];
  refuseShell(argv);
  // stdio to /dev/null, own session: it outlives this command and no terminal signal reaches it.
  const devnull = openSync('/dev/null', 'r+');
  try {
    const child = spawn(argv[0] as string, argv.slice(1), {
      detached: true,
      stdio: [devnull, devnull, devnull],
      env: { ...process.env, ...(cli.configPath ? { VMFORGE_CONFIG: cli.configPath } : {}) },
    });
    child.on('error', () => {}); // a pool left empty only costs the next build its own key
    if (child.pid === undefined) throw new Error('not started');
    await writeFile(join(dir, LOCK), `${child.pid}\n`);
    child.unref();
    return true;
  } catch {
    await rm(join(dir, LOCK), { force: true });
    return false;
  } finally {
    closeSync(devnull);
  }
}
