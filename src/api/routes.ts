/** The /v1 routes. Each only turns the request into a use case call (src/app) and the answer into JSON. */
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { buildVm, type BuildResult } from '../app/build.js';
import { buildInputFromApi, vmBuildRequestSchema } from '../app/build-api-request.js';
import type { AppContext } from '../app/context.js';
import { destroyVm } from '../app/destroy.js';
import { listVms, showVm } from '../app/inventory.js';
import { createNetwork, listNetworks, networkCreateRequestSchema, removeNetwork, showNetwork } from '../app/networks.js';
import { VmforgeError } from '../errors.js';
import type { LocalJobRunner } from '../jobs/local-runner.js';
import type { JobsTable } from '../store/schema.js';
import { ApiError } from './problem.js';
import { route, type AnyRoute } from './route.js';
import {
  bundleSchema,
  destroyQuery,
  jobAcceptedSchema,
  jobIdParams,
  jobViewSchema,
  networkDetailSchema,
  networkNameParams,
  networkViewSchema,
  vmNameParams,
  vmViewSchema,
} from './schemas.js';
import { streamJobEvents } from './sse.js';

export interface RouteContext {
  ctx: AppContext;
  runner: LocalJobRunner;
}

type JobRow = Omit<JobsTable, 'id'> & { id: number };

export function jobView(row: JobRow): z.infer<typeof jobViewSchema> {
  const json = (t: string | null) => (t === null ? null : (JSON.parse(t) as unknown));
  return {
    id: row.id,
    kind: row.kind,
    vm: row.vm_name,
    status: row.status,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    request: json(row.request),
    result: json(row.result),
    problem: json(row.problem) as z.infer<typeof jobViewSchema>['problem'],
    error: row.error,
    events: `/v1/jobs/${row.id}/events`,
  };
}

async function accepted(rc: RouteContext, reply: FastifyReply, jobId: number) {
  const row = await rc.ctx.jobs.get(jobId);
  if (!row) throw new VmforgeError('INTERNAL', `job ${jobId} vanished`);
  void reply.code(202).header('location', `/v1/jobs/${jobId}`);
  return { job: jobView(row) };
}

/** The build's result without the plan internals (the dry run's is not offered here). */
function buildResultView(r: BuildResult): unknown {
  if (r.dryRun) return { name: r.name, dryRun: true };
  return r;
}

const jobAccepted = { description: 'the job was started; watch it at job.events', schema: jobAcceptedSchema, headers: { location: { description: 'the job', schema: { type: 'string' } } } };

export function apiRoutes(rc: RouteContext): AnyRoute[] {
  const { ctx, runner } = rc;
  return [
    route({
      method: 'POST',
      path: '/v1/vms',
      operationId: 'buildVm',
      summary: 'Build a VM',
      description:
        'Starts a build job and answers at once. Shapes and bounds are checked here (400 with a pointer per field); what needs the host (bundle, names in use, networks) fails the job, with the message the CLI prints.',
      tags: ['vms'],
      role: 'operator',
      body: vmBuildRequestSchema,
      responses: { 202: jobAccepted },
      handler: async ({ body, reply }) => {
        const { request, options } = buildInputFromApi(body, ctx.config);
        const jobId = await runner.start({
          kind: 'build',
          vm: body.name,
          request: body,
          run: ({ jobId: id, emit, signal }) => buildVm(ctx, request, { ...options, jobId: id, emit, signal }),
          resultView: buildResultView,
        });
        return accepted(rc, reply, jobId);
      },
    }),
    route({
      method: 'GET',
      path: '/v1/vms',
      operationId: 'listVms',
      summary: 'List VMs with their live libvirt state',
      tags: ['vms'],
      role: 'viewer',
      responses: { 200: { description: 'the inventory', schema: z.object({ vms: z.array(vmViewSchema) }) } },
      handler: async () => ({ vms: await listVms(ctx) }),
    }),
    route({
      method: 'GET',
      path: '/v1/vms/{name}',
      operationId: 'showVm',
      summary: "One VM: spec, state, SSH host keys and its build's step timings",
      tags: ['vms'],
      role: 'viewer',
      params: vmNameParams,
      responses: { 200: { description: 'what `vmforge vm show --json` prints', schema: vmViewSchema } },
      handler: async ({ params }) => showVm(ctx, params.name),
    }),
    route({
      method: 'DELETE',
      path: '/v1/vms/{name}',
      operationId: 'destroyVm',
      summary: 'Destroy a VM: domain, disk, console log, DNS records, DHCP entry, lease, inventory',
      tags: ['vms'],
      role: 'operator',
      params: vmNameParams,
      query: destroyQuery,
      responses: { 202: jobAccepted },
      handler: async ({ params, query, reply }) => {
        const { name } = params;
        // Refused now rather than as a failed job: the client named something that is not there.
        if (!(await ctx.vms.get(name))) throw new VmforgeError('NOT_FOUND', `no VM named '${name}' in the inventory`, { hint: "list VMs with 'vmforge vm list'" });
        const keepDisk = query.keepDisk === 'true';
        const jobId = await runner.start({
          kind: 'destroy',
          vm: name,
          request: { name, keepDisk },
          run: ({ jobId: id, emit, signal }) => destroyVm(ctx, name, { keepDisk, jobId: id, emit, signal }),
        });
        return accepted(rc, reply, jobId);
      },
    }),
    route({
      method: 'GET',
      path: '/v1/jobs/{id}',
      operationId: 'showJob',
      summary: 'A job: status, request, result or problem',
      tags: ['jobs'],
      role: 'viewer',
      params: jobIdParams,
      responses: { 200: { description: 'the job', schema: jobViewSchema } },
      handler: async ({ params }) => jobView(await requireJob(rc, params.id)),
    }),
    route({
      method: 'GET',
      path: '/v1/jobs/{id}/events',
      operationId: 'jobEvents',
      summary: "A job's events as Server-Sent Events",
      description:
        'Every pipeline event (step start, progress, info, done with its duration, failed, undo) as one `data:` JSON line with an `id:`; the last is `job.finished` with the status and the result or problem, then the stream ends. Reconnect with `Last-Event-ID` to get only what followed. A client going away does not stop the job.',
      tags: ['jobs'],
      role: 'viewer',
      params: jobIdParams,
      headers: { 'last-event-id': { description: 'the id of the last event received: the stream resumes after it', schema: { type: 'string' } } },
      responses: { 200: { description: 'text/event-stream; each data line is a JobEvent', contentType: 'text/event-stream' } },
      handler: async ({ params, request, reply }) => {
        const job = await requireJob(rc, params.id);
        await streamJobEvents(runner, job.id, request, reply, ctx.config.apiServer.idleTimeoutSeconds * 1000);
      },
    }),
    route({
      method: 'POST',
      path: '/v1/jobs/{id}/cancel',
      operationId: 'cancelJob',
      summary: 'Cancel a running job: it stops before its next step and undoes what it did',
      tags: ['jobs'],
      role: 'operator',
      params: jobIdParams,
      responses: { 202: { description: 'cancel asked; the job ends as undone (watch its events)', schema: jobAcceptedSchema } },
      handler: async ({ params, reply }) => {
        const job = await requireJob(rc, params.id);
        if (!runner.cancel(job.id, 'cancelled through the API')) {
          throw new VmforgeError('CONFLICT', `job ${job.id} is not running in this server (it is ${job.status})`, {
            hint: job.status === 'running' ? 'another process runs it: stop that process (Ctrl-C undoes the job)' : 'only a running job can be cancelled',
          });
        }
        return accepted(rc, reply, job.id);
      },
    }),
    route({
      method: 'GET',
      path: '/v1/bundles',
      operationId: 'listBundles',
      summary: 'Bundles in the local store',
      tags: ['bundles'],
      role: 'viewer',
      responses: { 200: { description: 'their manifests', schema: z.object({ bundles: z.array(bundleSchema) }) } },
      handler: async () => ({ bundles: await ctx.bundles.list() }),
    }),
    route({
      method: 'GET',
      path: '/v1/networks',
      operationId: 'listNetworks',
      summary: 'vmforge networks with their pool usage',
      tags: ['networks'],
      role: 'viewer',
      responses: { 200: { description: 'the networks', schema: z.object({ networks: z.array(networkViewSchema) }) } },
      handler: async () => ({ networks: await listNetworks(ctx) }),
    }),
    route({
      method: 'GET',
      path: '/v1/networks/{name}',
      operationId: 'showNetwork',
      summary: 'One vmforge network with its pool usage and leases',
      tags: ['networks'],
      role: 'viewer',
      params: networkNameParams,
      responses: { 200: { description: 'what `vmforge network show NAME --json` prints', schema: networkDetailSchema } },
      handler: async ({ params }) => showNetwork(ctx, params.name),
    }),
    route({
      method: 'POST',
      path: '/v1/networks',
      operationId: 'createNetwork',
      summary: 'Create a vmforge network (an address pool on a bridge)',
      tags: ['networks'],
      role: 'admin',
      body: networkCreateRequestSchema,
      responses: { 201: { description: 'the network', schema: networkViewSchema } },
      handler: async ({ body, reply }) => {
        const n = await createNetwork(ctx, body);
        void reply.code(201).header('location', `/v1/networks/${n.name}`);
        return n;
      },
    }),
    route({
      method: 'DELETE',
      path: '/v1/networks/{name}',
      operationId: 'removeNetwork',
      summary: 'Remove a vmforge network that has no leases',
      tags: ['networks'],
      role: 'admin',
      params: networkNameParams,
      responses: { 204: { description: 'removed' } },
      handler: async ({ params, reply }) => {
        await removeNetwork(ctx, params.name);
        return reply.code(204).send();
      },
    }),
  ];
}

async function requireJob(rc: RouteContext, id: number): Promise<JobRow> {
  const row = await rc.ctx.jobs.get(id);
  if (!row) throw new ApiError('NOT_FOUND', `no job ${id}`, { hint: 'a job id comes from the answer to the request that started it' });
  return row;
}
