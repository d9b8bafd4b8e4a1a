/**
 * zod schemas of what the API answers (for the OpenAPI document; the integration tests parse real answers with
 * them). Each is checked against the TypeScript type it mirrors at the bottom of this file, so a field added to
 * a view without its schema fails the typecheck.
 */
import { z } from 'zod';
import { manifestSchema } from '../bundles/manifest.js';
import type { NetworkDetail, NetworkView } from '../app/networks.js';
import type { VmView } from '../app/inventory.js';
import type { PipelineEvent } from '../pipeline/events.js';
import type { ErrorSummary } from '../errors.js';

export const problemSchema = z.object({
  type: z.string().describe("'about:blank': the code says what went wrong"),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().describe('what is wrong: the message the CLI prints'),
  code: z.string().describe('the error code (INVALID_INPUT, NOT_FOUND, CONFLICT, ...)'),
  hint: z.string().optional().describe('what to do: the hint the CLI prints'),
  errors: z.array(z.object({ pointer: z.string(), message: z.string() })).optional().describe('invalid requests: one entry per field'),
  instance: z.string().optional(),
});

const hostKeySchema = z.object({ type: z.enum(['ed25519', 'ecdsa', 'rsa']), publicKey: z.string(), fingerprint: z.string() });

export const vmViewSchema = z.object({
  name: z.string(),
  uuid: z.string(),
  status: z.string().describe('building, defined, running, failed or destroying'),
  state: z.string().nullable().describe("libvirt's live state, null when the domain is not defined"),
  bundle: z.string(),
  bundleSha256: z.string(),
  cpus: z.number().int(),
  memoryMiB: z.number().int(),
  diskBytes: z.number().int(),
  swapBytes: z.number().int(),
  fs: z.string(),
  diskPath: z.string(),
  mac: z.string().nullable(),
  ip: z.string().nullable(),
  nic: z.string(),
  net: z.string(),
  consoleLog: z.string().nullable(),
  bootSeconds: z.number().nullable(),
  sshHostKeys: z.array(hostKeySchema),
  cloudInitSeed: z.string().nullable(),
  createdAt: z.string(),
  timings: z.array(z.object({ step: z.string(), title: z.string(), durationMs: z.number(), status: z.string() })).describe('the build steps with their durations (GET of one VM only)'),
});

export const errorSummarySchema = z.object({
  code: z.string(),
  message: z.string(),
  hint: z.string().nullable(),
  undoErrors: z.array(z.string()),
});

export const pipelineEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('step.start'), step: z.string(), title: z.string(), index: z.number().int(), total: z.number().int() }),
  z.object({ type: z.literal('step.progress'), step: z.string(), done: z.number(), total: z.number().optional(), unit: z.string() }),
  z.object({ type: z.literal('step.info'), step: z.string(), message: z.string() }),
  z.object({ type: z.literal('step.done'), step: z.string(), title: z.string(), durationMs: z.number() }),
  z.object({ type: z.literal('step.failed'), step: z.string(), title: z.string(), durationMs: z.number(), error: z.string() }),
  z.object({ type: z.literal('undo.start'), count: z.number().int() }),
  z.object({ type: z.literal('undo.done'), what: z.string(), durationMs: z.number() }),
  z.object({ type: z.literal('undo.failed'), what: z.string(), error: z.string() }),
  z.object({ type: z.literal('pipeline.done'), durationMs: z.number() }),
  z.object({ type: z.literal('pipeline.failed'), durationMs: z.number(), error: z.string(), undone: z.number().int(), undoFailures: z.number().int() }),
]);

export const jobStatusSchema = z.enum(['running', 'succeeded', 'failed', 'undone', 'undo-failed']);

export const jobFinishedEventSchema = z.object({
  type: z.literal('job.finished'),
  status: jobStatusSchema,
  result: z.unknown().optional(),
  problem: errorSummarySchema.optional(),
});

/** One `data:` line of the event stream; its `id:` is the event's number in the job (1, 2, ...). */
export const jobEventSchema = z.union([pipelineEventSchema, jobFinishedEventSchema]);

export const jobViewSchema = z.object({
  id: z.number().int(),
  kind: z.string().describe('build or destroy'),
  vm: z.string(),
  status: jobStatusSchema.describe('undone: it failed or was cancelled, and everything it had done was undone'),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  request: z.unknown().describe('what the job was asked (null for jobs the CLI started)'),
  result: z.unknown().describe("the use case's result once it succeeded, else null"),
  problem: errorSummarySchema.nullable().describe('why it failed: the message and hint the CLI prints'),
  error: z.string().nullable(),
  events: z.string().describe('URL of its event stream'),
});

export const jobAcceptedSchema = z.object({ job: jobViewSchema });

export const networkViewSchema = z.object({
  name: z.string(),
  cidr: z.string(),
  gateway: z.string(),
  range: z.string(),
  excludes: z.array(z.string()),
  bridge: z.string(),
  vlan: z.number().int().nullable(),
  dnsServers: z.array(z.string()),
  dnsZone: z.string().nullable(),
  ipv6: z.string().nullable(),
  dhcp: z.union([
    z.object({ mode: z.literal('none') }),
    z.object({ mode: z.literal('libvirt'), network: z.string() }),
    z.object({ mode: z.literal('dnsmasq'), dir: z.string() }),
  ]),
  createdAt: z.string(),
  capacity: z.number().int(),
  leased: z.number().int(),
  free: z.number().int(),
  dhcpText: z.string(),
});

export const networkDetailSchema = networkViewSchema.extend({
  leases: z.array(z.object({ vmName: z.string(), ipv4: z.string(), ipv6: z.string().nullable(), mac: z.string(), createdAt: z.string() })),
});

export const networkNameParams = z.object({ name: z.string().max(63).describe('network name') }).strict();

export const bundleSchema = manifestSchema;

export const vmNameParams = z.object({ name: z.string().max(63).describe('VM name') }).strict();
export const jobIdParams = z.object({ id: z.coerce.number().int().positive().describe('job id') }).strict();
export const destroyQuery = z.object({ keepDisk: z.enum(['true', 'false']).optional().describe('keep the disk image') }).strict();

// The schemas and the types they mirror must agree both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const agree = <T extends true>(_: T) => _;
agree<Same<z.infer<typeof vmViewSchema>, VmView>>(true);
agree<Same<z.infer<typeof networkViewSchema>, NetworkView>>(true);
agree<Same<z.infer<typeof networkDetailSchema>, NetworkDetail>>(true);
agree<Same<z.infer<typeof pipelineEventSchema>, PipelineEvent>>(true);
agree<Same<Omit<z.infer<typeof errorSummarySchema>, 'code'>, Omit<ErrorSummary, 'code'>>>(true);
