/**
 * Jobs through `vmforge serve` over real HTTP on 127.0.0.1, with the real template bundle and libvirt: a build
 * and a destroy as jobs, their events as Server-Sent Events (every step the CLI renders, resumable with
 * Last-Event-ID), a watcher that disconnects without stopping the build, cancel undoing a build that waits for
 * its boot (nothing left), and a CLI build beside an API build on the same state. Warm builds (qcow2 clones)
 * without starting the VM keep it fast.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobEventSchema, jobViewSchema, vmViewSchema } from '../../src/api/schemas.js';
import { ensureLibvirt, ensureTemplate, leftovers, makeTestEnv, uniqueName, type TestEnv } from '../harness/env.js';
import { readEvents, startApi, waitForJob, type Json, type SseEvent, type TestApi } from '../harness/api.js';

let env: TestEnv;
let api: TestApi;
let bundle: string;
let viewer: string;
let operator: string;
const made: string[] = [];

const small = (name: string) => ({ name, bundle, memoryMiB: 256, diskBytes: 2 * 2 ** 30, swapBytes: 128 * 2 ** 20, nic: 'none', start: false });

beforeAll(async () => {
  await ensureLibvirt();
  bundle = await ensureTemplate();
  env = await makeTestEnv('storage:\n  clone: qcow2\n', 'api-jobs-');
  // A short idle timeout: event streams must outlive it on their heartbeats (the cancel test waits past it).
  api = await startApi(env, { idleTimeoutSeconds: 5 });
  viewer = await api.token('viewer');
  operator = await api.token('operator');
});

afterAll(async () => {
  try {
    for (const name of made) {
      await env.cli(['vm', 'destroy', name]);
      expect(await leftovers(env, name)).toEqual([]);
    }
  } finally {
    await api?.close();
    await env?.cleanup();
  }
});

async function startBuild(body: Json): Promise<number> {
  made.push(body.name);
  const r = await api.req('POST', '/v1/vms', { token: operator, body });
  expect(r.status, JSON.stringify(r.json)).toBe(202);
  jobViewSchema.strict().parse(r.json.job);
  expect(r.json.job).toMatchObject({ kind: 'build', vm: body.name, status: 'running', request: body, events: `/v1/jobs/${r.json.job.id}/events` });
  expect(r.headers.get('location')).toBe(`/v1/jobs/${r.json.job.id}`);
  return r.json.job.id;
}

const types = (events: SseEvent[]) => events.map((e) => e.data.type as string);

describe('a build and a destroy as jobs', () => {
  const name = uniqueName('api-b');
  let jobId: number;
  let all: SseEvent[];

  it('builds: 202 with a job, whose event stream carries every step with its timing and ends with the result', async () => {
    jobId = await startBuild(small(name));
    const s = await readEvents(api, jobId, viewer);
    all = s.events;
    expect(s.contentType).toMatch(/^text\/event-stream/);
    expect(s.ended).toBe('stream-end');
    for (const e of all) jobEventSchema.parse(e.data);
    expect(all.map((e) => e.id)).toEqual(all.map((_, i) => i + 1));
    const starts = all.filter((e) => e.data.type === 'step.start').map((e) => e.data.step as string);
    const dones = all.filter((e) => e.data.type === 'step.done').map((e) => e.data.step as string);
    expect(starts).toEqual(dones);
    expect(starts).toEqual(expect.arrayContaining(['inventory.reserve', 'clone.create', 'guest.configure', 'domain.define', 'inventory.commit']));
    expect(starts).not.toContain('domain.start');
    expect(all.filter((e) => e.data.type === 'step.done').every((e) => typeof e.data.durationMs === 'number')).toBe(true);
    expect(types(all).slice(-2)).toEqual(['pipeline.done', 'job.finished']);
    const fin = all.at(-1)?.data;
    expect(fin).toMatchObject({ status: 'succeeded', result: { name, state: 'defined', dryRun: false } });

    const job = await api.req('GET', `/v1/jobs/${jobId}`, { token: viewer });
    expect(job.json).toMatchObject({ status: 'succeeded', problem: null, result: { name, state: 'defined' } });
    expect(job.json.finishedAt).not.toBeNull();
  });

  it('replays the stream after Last-Event-ID, and the whole of it to a new watcher, once the job is over', async () => {
    const again = await readEvents(api, jobId, viewer);
    expect(again.events).toEqual(all);
    const k = 5;
    const tail = await readEvents(api, jobId, viewer, { lastEventId: k });
    expect(tail.events).toEqual(all.slice(k));
  });

  it('shows the VM as `vm show --json` does, and lists it', async () => {
    const one = await api.req('GET', `/v1/vms/${name}`, { token: viewer });
    expect(one.status).toBe(200);
    const v = vmViewSchema.strict().parse(one.json);
    const cli = await env.cli(['vm', 'show', name, '--json']);
    expect(cli.exitCode, cli.stderr).toBe(0);
    expect(v).toEqual(JSON.parse(cli.stdout));
    expect(v).toMatchObject({ name, status: 'defined', memoryMiB: 256, diskBytes: 2 * 2 ** 30, swapBytes: 128 * 2 ** 20 });
    expect(v.timings.map((t) => t.step)).toEqual(all.filter((e) => e.data.type === 'step.done').map((e) => e.data.step));
    const list = await api.req('GET', '/v1/vms', { token: viewer });
    expect(list.json.vms.map((x: Json) => x.name)).toContain(name);
  });

  it('destroys: DELETE answers 202 with a job that removes everything', async () => {
    const r = await api.req('DELETE', `/v1/vms/${name}`, { token: operator });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    expect(r.json.job).toMatchObject({ kind: 'destroy', vm: name, request: { name, keepDisk: false } });
    const s = await readEvents(api, r.json.job.id, viewer);
    expect(s.events.at(-1)?.data).toMatchObject({ type: 'job.finished', status: 'succeeded' });
    expect(types(s.events)).toContain('step.done');
    expect(await leftovers(env, name)).toEqual([]);
    expect((await api.req('GET', `/v1/vms/${name}`, { token: viewer })).status).toBe(404);
    made.splice(made.indexOf(name), 1);
  });
});

describe('watchers and cancel', () => {
  it('a watcher that disconnects mid-stream does not stop the build', async () => {
    const name = uniqueName('api-d');
    const jobId = await startBuild(small(name));
    const s = await readEvents(api, jobId, viewer, { stopWhen: (e) => e.data.type === 'step.start' });
    expect(s.ended).toBe('stopped');
    const job = await waitForJob(api, jobId, viewer);
    expect(job.status).toBe('succeeded');
    expect((await api.req('GET', `/v1/vms/${name}`, { token: viewer })).json.status).toBe('defined');
  });

  it('cancel stops a build at its next step and undoes it: the job ends undone and nothing is left; the quiet stream outlives the idle timeout', async () => {
    const name = uniqueName('api-c');
    // Started and waiting for a login prompt that a 300 s timeout would give it: only the cancel ends it.
    const jobId = await startBuild({ ...small(name), start: true, wait: true, waitTimeoutSeconds: 300 });
    let cancel: Promise<{ status: number; json: Json }> | undefined;
    const s = await readEvents(api, jobId, viewer, {
      onEvent: (e) => {
        if (e.data.type === 'step.start' && e.data.step === 'boot.wait') {
          // Quiet for longer than the server's idle timeout first: the heartbeat keeps the stream open.
          cancel = new Promise((r) => setTimeout(r, 7_000)).then(() => api.req('POST', `/v1/jobs/${jobId}/cancel`, { token: operator }));
        }
      },
    });
    expect(cancel, 'the build reached boot.wait').toBeDefined();
    const c = await (cancel as Promise<{ status: number; json: Json }>);
    expect(c.status, JSON.stringify(c.json)).toBe(202);
    const t = types(s.events);
    expect(t).toContain('step.failed');
    expect(t).toContain('undo.start');
    expect(t.filter((x) => x === 'undo.done').length).toBeGreaterThan(3);
    expect(t).not.toContain('undo.failed');
    const fin = s.events.at(-1)?.data;
    expect(fin).toMatchObject({ type: 'job.finished', status: 'undone', problem: { code: 'CANCELLED' } });
    expect(fin.problem.message).toMatch(/cancelled/);
    const job = await api.req('GET', `/v1/jobs/${jobId}`, { token: viewer });
    expect(job.json).toMatchObject({ status: 'undone', result: null, problem: { code: 'CANCELLED' } });
    expect(await leftovers(env, name)).toEqual([]);
    made.splice(made.indexOf(name), 1);
    // Cancelling a job that is over is refused.
    const late = await api.req('POST', `/v1/jobs/${jobId}/cancel`, { token: operator });
    expect(late.status).toBe(409);
    expect(late.json.detail).toMatch(/is not running in this server \(it is undone\)/);
  });

  it('a build refused by the host (a taken name) ends as a failed job with the CLI message and hint', async () => {
    const name = made[0] as string;
    const r = await api.req('POST', '/v1/vms', { token: operator, body: small(name) });
    expect(r.status).toBe(202);
    const job = await waitForJob(api, r.json.job.id, viewer);
    expect(job).toMatchObject({
      status: 'failed',
      problem: { code: 'CONFLICT', message: `a VM named '${name}' exists already`, hint: `pick another name, or remove it with 'vmforge vm destroy ${name}'` },
    });
  });
});

describe('the CLI beside the server', () => {
  it('builds with the CLI while the API builds, on the same state; each sees both', async () => {
    const viaCli = uniqueName('api-cli');
    const viaApi = uniqueName('api-srv');
    made.push(viaCli);
    const cli = env.cli(['vm', 'build', viaCli, '--bundle', bundle, '--memory', '256M', '--disk', '2G', '--swap', '128M', '--net', 'none', '--no-start']);
    const jobId = await startBuild(small(viaApi));
    const [c, j] = await Promise.all([cli, waitForJob(api, jobId, viewer)]);
    expect(c.exitCode, c.stderr).toBe(0);
    expect(j.status).toBe('succeeded');
    const names = (await api.req('GET', '/v1/vms', { token: viewer })).json.vms.map((v: Json) => v.name);
    expect(names).toEqual(expect.arrayContaining([viaCli, viaApi]));
    const list = await env.cli(['vm', 'list', '--json']);
    expect(JSON.parse(list.stdout).map((v: Json) => v.name)).toEqual(expect.arrayContaining([viaCli, viaApi]));
  });
});
