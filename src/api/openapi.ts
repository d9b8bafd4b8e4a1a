/** The OpenAPI 3.1 document of `/v1`, made from the route declarations (route.ts) and their zod schemas. */
import { zodToJsonSchema } from 'zod-to-json-schema';
import type { z } from 'zod';
import { VERSION } from '../version.js';
import type { AnyRoute } from './route.js';
import { problemSchema } from './schemas.js';

type JsonSchema = Record<string, unknown>;

/** JSON Schema 2020-12 as OpenAPI 3.1 takes it: no $schema of its own, everything inline. */
export function jsonSchemaOf(schema: z.ZodTypeAny): JsonSchema {
  const { $schema: _s, ...rest } = zodToJsonSchema(schema, { $refStrategy: 'none', target: 'jsonSchema2019-09' }) as JsonSchema;
  return rest;
}

const PROBLEM_REF = { $ref: '#/components/schemas/Problem' };
const problemResponse = (description: string) => ({ description, content: { 'application/problem+json': { schema: PROBLEM_REF } } });

export function openApiDocument(routes: readonly AnyRoute[]): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const parameters: unknown[] = [];
    for (const [where, schema] of [['path', r.params], ['query', r.query]] as const) {
      if (!schema) continue;
      const js = jsonSchemaOf(schema) as { properties?: Record<string, JsonSchema & { description?: string }>; required?: string[] };
      for (const [name, s] of Object.entries(js.properties ?? {})) {
        const { description, ...propSchema } = s;
        parameters.push({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema: propSchema, ...(description ? { description } : {}) });
      }
    }
    for (const [name, h] of Object.entries(r.headers ?? {})) parameters.push({ name, in: 'header', required: false, ...h });
    const responses: Record<string, unknown> = {};
    for (const [status, res] of Object.entries(r.responses)) {
      responses[status] = {
        description: res.description,
        ...(res.headers ? { headers: res.headers } : {}),
        ...(res.schema || res.contentType ? { content: { [res.contentType ?? 'application/json']: { schema: res.schema ? jsonSchemaOf(res.schema) : { type: 'string' } } } } : {}),
      };
    }
    if (r.body || r.params || r.query) responses['400'] ??= problemResponse('invalid request: `errors` lists each field with a JSON pointer');
    if (r.body) responses['413'] ??= problemResponse('request body larger than the server takes');
    if (r.role !== null) {
      responses['401'] ??= problemResponse('no token, or an unknown or revoked one');
      responses['403'] ??= problemResponse(`the token's role is below ${r.role}`);
      responses['429'] ??= problemResponse('too many failed authentication attempts from this address');
    }
    responses.default = problemResponse('any other error, with the message and hint the CLI prints');
    (paths[r.path] ??= {})[r.method.toLowerCase()] = {
      operationId: r.operationId,
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      tags: r.tags,
      ...(parameters.length ? { parameters } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchemaOf(r.body) } } } } : {}),
      responses,
      security: r.role === null ? [] : [{ bearer: [] }],
      ...(r.role !== null ? { 'x-vmforge-role': r.role } : {}),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'vmforge API',
      version: VERSION,
      description: 'Build, watch and destroy libvirt VMs on this host. Long work returns a job; its events stream as Server-Sent Events.',
    },
    paths,
    components: {
      schemas: { Problem: jsonSchemaOf(problemSchema) },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: "a token made with 'vmforge token create'" } },
    },
    security: [{ bearer: [] }],
  };
}
