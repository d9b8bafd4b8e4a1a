/**
 * A job's events as Server-Sent Events: `id: N` and one `data:` JSON line per event, replayed after the
 * client's Last-Event-ID, then live until `job.finished`, when the stream ends. A comment line every
 * HEARTBEAT_MS (or half the idle timeout) keeps idle proxies and the server's own idle timeout from cutting a
 * long quiet step.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { LocalJobRunner, NumberedEvent } from '../jobs/local-runner.js';

const HEARTBEAT_MS = 15_000;

/** `idleMs`: the server's idle timeout; heartbeats come at least twice within it. */
export async function streamJobEvents(runner: LocalJobRunner, jobId: number, request: FastifyRequest, reply: FastifyReply, idleMs: number): Promise<void> {
  const raw = request.headers['last-event-id'];
  const last = Number(Array.isArray(raw) ? raw[0] : raw);
  const after = Number.isInteger(last) && last > 0 ? last : 0;
  // From here on the response is ours, written straight to the socket.
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-accel-buffering': 'no',
  });
  res.write(': vmforge job events\n\n');
  let ended = false;
  let unsubscribe = () => {};
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), Math.min(HEARTBEAT_MS, Math.floor(idleMs / 2)));
  heartbeat.unref();
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    unsubscribe();
    res.end();
  };
  // The client went away: stop writing to it. The job goes on; it never knew about this watcher.
  res.on('close', end);
  unsubscribe = await runner.watch(jobId, after, {
    onEvent: (n: NumberedEvent) => {
      if (!ended) res.write(`id: ${n.seq}\ndata: ${JSON.stringify(n.event)}\n\n`);
    },
    onEnd: end,
  });
  if (ended) unsubscribe();
}
