/**
 * `vmforge serve` as its own process, killed (SIGKILL) while a build it runs waits for its boot: started
 * again, it undoes that build before serving (the journal's recovery), the job reads undone and nothing of the
 * VM is left. SIGTERM instead cancels the running build, which undoes itself before the server exits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { join } from 'node:path';
import { createContext } from '../../src/app/context.js';
import { createToken } from '../../src/app/tokens.js';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, REPO, uniqueName, type TestEnv } from '../harness/env.js';
import { readEvents, type Json, type TestApi } from '../harness/api.js';

let env: TestEnv;
let bundle: string;
let token: string;
const servers: ResultPromise[] = [];

beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
  env = await makeTestEnv('storage:\n  clone: qcow2\n', 'api-restart-');
  const ctx = await createContext({ configPath: env.configPath });
  token = (await createToken(ctx, 'api-restart', 'operator')).token;
  await ctx.close();
});

afterAll(async () => {
  for (const s of servers) if (s.exitCode === null) s.kill('SIGKILL');
  await Promise.allSettled(servers);
  await env?.cleanup();
});

/** Starts `vmforge serve` (from source) and resolves once it prints its URL. */
async function serve(): Promise<{ proc: ResultPromise; api: TestApi; stderr: () => string }> {
  const proc = execa(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'serve', '--listen', '127.0.0.1:0'], {
    cwd: REPO,
    env: { VMFORGE_CONFIG: env.configPath },
    reject: false,
    buffer: false,
  });
  servers.push(proc);
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /at (http:\/\/\S+)\/v1/.exec(out);
      if (m) resolve(m[1] as string);
    });
    void proc.then(() => reject(new Error(`serve exited: ${err}`)));
  });
  const api = {
    url,
    async req(method: string, path: string, opts: { body?: unknown } = {}) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(opts.body ? { 'content-type': 'application/json' } : {}) },
        ...(opts.body ? { body: JSON.stringify(opts.body) } : {}),
      });
      return { status: res.status, headers: res.headers, json: (await res.json()) as Json };
    },
  } as unknown as TestApi;
  return { proc, api, stderr: () => err };
}

const waiting = (name: string) => ({ name, bundle, memoryMiB: 256, diskBytes: 2 * 2 ** 30, swapBytes: 0, nic: 'none', start: true, wait: true, waitTimeoutSeconds: 300 });

async function buildUntilBootWait(api: TestApi, name: string): Promise<number> {
  const r = await api.req('POST', '/v1/vms', { body: waiting(name) });
  expect(r.status, JSON.stringify(r.json)).toBe(202);
  const jobId = r.json.job.id as number;
  const s = await readEvents(api, jobId, token, { stopWhen: (e) => e.data.type === 'step.start' && e.data.step === 'boot.wait' });
  expect(s.ended).toBe('stopped');
  return jobId;
}

describe('vmforge serve, stopped mid-build', () => {
  it('killed (SIGKILL): the next start undoes the build before serving; the job reads undone', async () => {
    const name = uniqueName('api-k');
    const first = await serve();
    const jobId = await buildUntilBootWait(first.api, name);
    first.proc.kill('SIGKILL');
    await first.proc;
    expect(await leftovers(env, name)).not.toEqual([]);

    const second = await serve();
    expect(second.stderr()).toMatch(new RegExp(`recovered job ${jobId} \\(build ${name}\\): \\d+ step\\(s\\) undone`));
    const job = await second.api.req('GET', `/v1/jobs/${jobId}`);
    expect(job.json).toMatchObject({ status: 'undone', error: expect.stringMatching(/^recovered: process \d+ had died$/) });
    expect(await leftovers(env, name)).toEqual([]);

    // SIGTERM: the running build is cancelled and undoes itself before the server exits.
    const other = uniqueName('api-t');
    const jobId2 = await buildUntilBootWait(second.api, other);
    second.proc.kill('SIGTERM');
    const ended = await second.proc;
    expect(ended.exitCode).toBe(0);
    expect(await leftovers(env, other)).toEqual([]);
    const ctx = await createContext({ configPath: env.configPath });
    try {
      expect((await ctx.jobs.get(jobId2))?.status).toBe('undone');
    } finally {
      await ctx.close();
    }
  });
});
