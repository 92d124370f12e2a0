/**
 * The OpenAPI 3.1 document, generated from {@link apiOperations} and the zod schemas the API
 * validates with (zod 4's `z.toJSONSchema`, JSON Schema 2020-12, which is OpenAPI 3.1's
 * dialect), and served at `/openapi.json` and, as a page, at `/docs`. Built once per app: a
 * request for it costs a `send` of a prepared string.
 */
import { createHash } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import type { Config } from '@sluice/config';
import { API_ERROR_CODES, errorBodySchema, paymentResourceSchema } from './api-schemas.ts';
import { apiOperations, type OperationSpec } from './api-spec.ts';
import { DOCS_STYLE, renderDocsPage } from './docs-page.ts';
import type { JsonSchema, OpenApiDocument, OpenApiOperation } from './openapi-types.ts';

/** The document's types (openapi-types.ts), for the callers of this module. */
export type { JsonSchema, OpenApiDocument, OpenApiOperation };

const SECURITY = { merchant: [{ merchantKey: [] }], admin: [{ operatorBasic: [] }], none: [] };

/** JSON Schema 2020-12 of a zod schema, without `$schema` (the document declares the dialect). */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output' = 'output'): JsonSchema {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

function operation(op: OperationSpec): OpenApiOperation {
  const out: OpenApiOperation = {
    operationId: op.operationId,
    summary: op.summary,
    description: op.description,
    tags: [op.tag],
    security: SECURITY[op.auth],
    parameters: op.parameters.map((p) => ({
      name: p.name,
      in: p.in,
      required: p.required,
      description: p.description,
      schema: jsonSchemaOf(p.schema, 'input'),
      ...(Object.keys(p.examples).length ? { examples: Object.fromEntries(Object.entries(p.examples).map(([k, value]) => [k, { value }])) } : {}),
    })),
    responses: {},
  };
  if (op.requestBody) {
    out.requestBody = {
      required: true,
      description: op.requestBody.description,
      // The intake's body is a component; every other body is written where it is used.
      content: { 'application/json': { schema: op.operationId === 'createPayment' ? { $ref: '#/components/schemas/PaymentRequest' } : jsonSchemaOf(op.requestBody.schema), examples: op.requestBody.examples } },
    };
  }
  for (const [status, r] of Object.entries(op.responses)) {
    const schema = r.schema === paymentResourceSchema ? { $ref: '#/components/schemas/Payment' } : r.schema ? jsonSchemaOf(r.schema) : { type: 'string' };
    out.responses[status] = {
      description: r.description,
      ...(r.headers
        ? { headers: Object.fromEntries(Object.entries(r.headers).map(([name, description]) => [name, { description, schema: { type: 'string' } }])) }
        : {}),
      // An answer without a body (204) has no content.
      ...(r.contentType === '' ? {} : { content: { [r.contentType ?? 'application/json']: { schema } } }),
    };
  }
  return out;
}

/** The document for an app built with `config` (the currency, the body limit, the admin routes). */
export function buildOpenApi(config: Config): OpenApiDocument {
  const ops = apiOperations(config);
  const paths: OpenApiDocument['paths'] = {};
  for (const op of ops) (paths[op.path] ??= {})[op.method] = operation(op);
  const request = ops.find((o) => o.requestBody)?.requestBody;
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Sluice',
      version: '0.1.0',
      description:
        "Sluice takes merchants' payments at once (202, never 429) and drains them into a rate-limited PG as fast as it allows. " +
        'Every error body is `{ code, message, details? }`.',
    },
    tags: [
      { name: 'Payments', description: 'The merchant API (Bearer API key)' },
      { name: 'Operations', description: 'Probes and this documentation (no auth)' },
      { name: 'Admin', description: 'Operator pages (HTTP Basic; absent without ADMIN_USER and ADMIN_PASSWORD)' },
    ],
    paths,
    components: {
      securitySchemes: {
        merchantKey: { type: 'http', scheme: 'bearer', description: "A merchant's API key: `Authorization: Bearer <key>`" },
        operatorBasic: { type: 'http', scheme: 'basic', description: 'ADMIN_USER and ADMIN_PASSWORD' },
      },
      schemas: {
        ...(request ? { PaymentRequest: jsonSchemaOf(request.schema, 'input') } : {}),
        Payment: jsonSchemaOf(paymentResourceSchema),
        Error: jsonSchemaOf(errorBodySchema(API_ERROR_CODES)),
      },
    },
  };
}

/**
 * The page's own policy: no script at all, and only its one style block. Stricter than helmet's
 * default, which this route overrides.
 */
export const DOCS_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(DOCS_STYLE).digest('base64')}'`,
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** `/openapi.json` and `/docs`, without auth: the document holds no secret. */
export function docsRoutes(doc: OpenApiDocument): Router {
  const json = JSON.stringify(doc);
  const page = renderDocsPage(doc);
  const router = Router();
  router.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(json);
  });
  router.get('/docs', (_req, res) => {
    res.setHeader('Content-Security-Policy', DOCS_CSP);
    res.type('html').send(page);
  });
  return router;
}
