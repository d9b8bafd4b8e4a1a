/**
 * A separate process for the host-lock tests: argv LOCK RECORD HOLD_MS WAIT_MS [GO_FILE].
 * With GO_FILE, prints "ready" and waits until that file exists (so many contenders start racing at once); takes
 * the lock, appends "enter <ns>" and
 * "exit <ns>" (CLOCK_MONOTONIC, shared by all processes) around holding it HOLD_MS, and releases it. HOLD_MS -1
 * holds until killed, after printing "locked" on stdout.
 */
import { appendFileSync, existsSync } from 'node:fs';
import { acquireHostLock } from '../../src/exec/host-lock.js';
import { VmforgeError } from '../../src/errors.js';

const [lockPath, record, holdArg, waitArg, goFile] = process.argv.slice(2);
const holdMs = Number(holdArg);
if (goFile) {
  process.stdout.write('ready\n');
  while (!existsSync(goFile)) await new Promise((r) => setTimeout(r, 2));
}
try {
  const lock = await acquireHostLock(lockPath as string, {
    waitMs: Number(waitArg),
    command: `lock-contender ${process.pid}`,
    pollMs: 20,
    onWait: (h) => process.stdout.write(`waiting for ${h.pid}\n`),
  });
  appendFileSync(record as string, `enter ${process.hrtime.bigint()} ${process.pid}\n`);
  if (holdMs < 0) {
    process.stdout.write('locked\n');
    setInterval(() => {}, 1 << 30);
    await new Promise(() => {});
  }
  await new Promise((r) => setTimeout(r, holdMs));
  appendFileSync(record as string, `exit ${process.hrtime.bigint()} ${process.pid}\n`);
  await lock.release();
} catch (e) {
  process.stderr.write(`${e instanceof VmforgeError ? e.code : 'ERROR'}: ${(e as Error).message}\n`);
  process.exit(3);
}
