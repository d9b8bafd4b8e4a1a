/**
 * One contender of db-open-contenders.ts, in its own process: opens each database path it is sent with openDb
 * and answers {ok} or {ok:false, code, error}.
 */
import { openDb } from '../../src/store/db.js';

interface Round {
  path: string;
}

process.on('message', (m: Round) => {
  void (async () => {
    try {
      const db = await openDb(m.path);
      await db.destroy();
      process.send?.({ ok: true });
    } catch (e) {
      const err = e as Error & { code?: string; cause?: { code?: string } };
      process.send?.({ ok: false, code: err.cause?.code ?? err.code, error: err.message });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: true });
