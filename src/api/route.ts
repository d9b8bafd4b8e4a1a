/**
 * Every route is declared once: method, path, role, zod schemas of its inputs and outputs. `registerRoute`
 * turns the declaration into a fastify route (auth, then the inputs parsed by the same schemas) and keeps it
 * for the OpenAPI document (openapi.ts), so what is validated and what is documented cannot drift.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { ApiRole } from '../store/schema.js';
import type { Caller } from './auth.js';
import { ApiError, fieldErrors } from './problem.js';

export interface ResponseSpec {
  description: string;
  schema?: z.ZodTypeAny;
  /** Default application/json. */
  contentType?: string;
  headers?: Record<string, { description: string; schema: { type: string } }>;
}

export interface RouteSpec<P extends z.ZodTypeAny, Q extends z.ZodTypeAny, B extends z.ZodTypeAny> {
  method: 'GET' | 'POST' | 'DELETE';
  /** OpenAPI style: /v1/vms/{name} */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  /** null: no token needed. */
  role: ApiRole | null;
  params?: P;
  query?: Q;
  body?: B;
  /** Request headers the route reads (documented as parameters). */
  headers?: Record<string, { description: string; schema: { type: string } }>;
  responses: Record<number, ResponseSpec>;
  handler(input: { params: z.infer<P>; query: z.infer<Q>; body: z.infer<B>; caller: Caller | null; request: FastifyRequest; reply: FastifyReply }): Promise<unknown>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRoute = RouteSpec<any, any, any>;

/** Declares a route with its handler typed by its schemas (the list of routes is then of AnyRoute). */
export function route<P extends z.ZodTypeAny = z.ZodUndefined, Q extends z.ZodTypeAny = z.ZodUndefined, B extends z.ZodTypeAny = z.ZodUndefined>(spec: RouteSpec<P, Q, B>): AnyRoute {
  return spec;
}

export interface RouteDeps {
  authenticate(request: FastifyRequest, need: ApiRole): Promise<Caller>;
}

export function registerRoute<P extends z.ZodTypeAny, Q extends z.ZodTypeAny, B extends z.ZodTypeAny>(
  app: FastifyInstance,
  deps: RouteDeps,
  spec: RouteSpec<P, Q, B>,
): void {
  const callers = new WeakMap<FastifyRequest, Caller>();
  app.route({
    method: spec.method,
    url: spec.path.replace(/\{([^}]+)\}/g, ':$1'),
    // Auth before the body is read: a caller without the role never gets to send one.
    onRequest: async (request) => {
      if (spec.role !== null) callers.set(request, await deps.authenticate(request, spec.role));
    },
    handler: async (request, reply) => {
      const params = parse(spec.params, request.params, '/path');
      const query = parse(spec.query, request.query, '/query');
      const body = parse(spec.body, request.body, '');
      return spec.handler({ params, query, body, caller: callers.get(request) ?? null, request, reply });
    },
  });
}

function parse<S extends z.ZodTypeAny>(schema: S | undefined, value: unknown, base: string): z.infer<S> {
  if (!schema) return undefined as z.infer<S>;
  const r = schema.safeParse(value);
  if (r.success) return r.data as z.infer<S>;
  const errors = fieldErrors(r.error.issues, base);
  const first = errors[0];
  throw new ApiError('INVALID_INPUT', `invalid request: ${errors.map((e) => `${e.pointer}: ${e.message}`).join('; ')}`, {
    ...(first ? { hint: 'fix the fields listed in errors (JSON pointers into the request)' } : {}),
    errors,
  });
}
