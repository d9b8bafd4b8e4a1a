/**
 * The HTTP API for integration tests: a `vmforge serve` server in this process on 127.0.0.1 (port 0) against a
 * test env's config, tokens, JSON requests and an event-stream reader over real HTTP.
 */
import { createContext, type AppContext } from '../../src/app/context.js';
import { createToken } from '../../src/app/tokens.js';
import { buildApiServer, type ApiServer } from '../../src/api/server.js';
import type { TestEnv } from './env.js';

/** The answers' JSON, read field by field by the tests (and checked with the API's zod schemas where it matters). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface TestApi {
  url: string;
  ctx: AppContext;
  server: ApiServer;
  /** Request log lines the server wrote. */
  logLines: string[];
  token(role: 'viewer' | 'operator' | 'admin', name?: string): Promise<string>;
  req(method: string, path: string, opts?: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> }): Promise<{ status: number; headers: Headers; json: Json }>;
  close(): Promise<void>;
}

let tokenCount = 0;

export async function startApi(env: TestEnv, configOverride?: Partial<AppContext['config']['apiServer']>): Promise<TestApi> {
  const ctx = await createContext({ configPath: env.configPath });
  if (configOverride) ctx.config = { ...ctx.config, apiServer: { ...ctx.config.apiServer, ...configOverride } };
  const logLines: string[] = [];
  const log = { info: (o: object, m: string) => logLines.push(JSON.stringify({ ...o, msg: m })), error: (o: object, m: string) => logLines.push(JSON.stringify({ ...o, msg: m })) };
  const server = await buildApiServer({ ctx, log });
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = server.app.server.address() as { port: number };
  const url = `${ctx.config.apiServer.tls ? 'https' : 'http'}://127.0.0.1:${addr.port}`;
  return {
    url,
    ctx,
    server,
    logLines,
    async token(role, name) {
      return (await createToken(ctx, name ?? `api-${role}-${++tokenCount}-${process.pid}`, role)).token;
    },
    async req(method, path, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      let body: string | undefined;
      if (opts.rawBody !== undefined) body = opts.rawBody;
      else if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await fetch(`${url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      let json: unknown = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        json = text;
      }
      return { status: res.status, headers: res.headers, json };
    },
    async close() {
      await server.close();
      await ctx.close();
    },
  };
}

export interface SseEvent {
  id: number;
  data: Json;
}

/**
 * Reads a job's event stream until it ends (or `stopWhen` says so: then the connection is dropped, as a client
 * that goes away would). Calls `onEvent` as each arrives.
 */
export async function readEvents(
  api: TestApi,
  jobId: number,
  token: string,
  opts: { lastEventId?: number; stopWhen?: (e: SseEvent) => boolean; onEvent?: (e: SseEvent) => void | Promise<void> } = {},
): Promise<{ events: SseEvent[]; contentType: string | null; ended: 'stream-end' | 'stopped' }> {
  const ac = new AbortController();
  const res = await fetch(`${api.url}/v1/jobs/${jobId}/events`, {
    headers: { authorization: `Bearer ${token}`, ...(opts.lastEventId !== undefined ? { 'last-event-id': String(opts.lastEventId) } : {}) },
    signal: ac.signal,
  });
  if (res.status !== 200 || !res.body) throw new Error(`event stream answered ${res.status}: ${await res.text()}`);
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buf = '';
  const reader = res.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { events, contentType: res.headers.get('content-type'), ended: 'stream-end' };
    buf += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let id: number | null = null;
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) id = Number(line.slice(4));
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (id === null) continue; // a comment (heartbeat)
      const e = { id, data: JSON.parse(data) };
      events.push(e);
      await opts.onEvent?.(e);
      if (opts.stopWhen?.(e)) {
        ac.abort();
        return { events, contentType: res.headers.get('content-type'), ended: 'stopped' };
      }
    }
  }
}

/** Polls GET /v1/jobs/{id} until the job is no longer running. */
export async function waitForJob(api: TestApi, jobId: number, token: string, timeoutMs = 300_000): Promise<Json> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await api.req('GET', `/v1/jobs/${jobId}`, { token });
    if (r.status !== 200) throw new Error(`GET job ${jobId}: ${r.status} ${JSON.stringify(r.json)}`);
    if (r.json.status !== 'running') return r.json;
    if (Date.now() > until) throw new Error(`job ${jobId} still running after ${timeoutMs} ms`);
    await new Promise((r2) => setTimeout(r2, 100));
  }
}
