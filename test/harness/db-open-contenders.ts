/**
 * N processes that open the same state database at the same moment, round after round (the concurrent-open test
 * and bench/db-open-stress.ts). Each is a long-lived Node process forked with an IPC channel
 * (db-open-worker.ts): a round costs the opens, not N Node start-ups, so tens of rounds fit in a few seconds.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '../..');

export interface OpenAnswer {
  ok: boolean;
  code?: string;
  error?: string;
}

export interface Contenders {
  /** Every contender opens `dbPath` (sent to all at once); their answers in contender order. */
  openAll(dbPath: string): Promise<OpenAnswer[]>;
  stop(): Promise<void>;
}

export async function startContenders(n: number): Promise<Contenders> {
  const kids: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      kids.map(
        (k) =>
          new Promise<void>((res) => {
            if (k.exitCode !== null || k.signalCode !== null) return res();
            k.once('exit', () => res());
            if (k.connected) k.disconnect();
            else k.kill();
          }),
      ),
    );
  };
  try {
    for (let i = 0; i < n; i++) {
      kids.push(fork(join(REPO, 'test/harness/db-open-worker.ts'), [], { cwd: REPO, execArgv: ['--import', 'tsx'] }));
    }
    await Promise.all(kids.map((k) => nextMessage(k)));
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    openAll: (dbPath) =>
      Promise.all(
        kids.map((k) => {
          const answer = nextMessage(k) as Promise<OpenAnswer>;
          k.send({ path: dbPath });
          return answer;
        }),
      ),
    stop,
  };
}

function nextMessage(k: ChildProcess): Promise<unknown> {
  return new Promise((res, rej) => {
    const onExit = (code: number | null) => rej(new Error(`contender ${k.pid} exited (${code}) before answering`));
    k.once('exit', onExit);
    k.once('message', (m) => {
      k.off('exit', onExit);
      res(m);
    });
  });
}
