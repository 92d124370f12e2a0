/**
 * The OpenAPI document against the app: every route the router has is documented and every
 * documented route exists; every documented example, sent to a live app (real Redis), is
 * answered with a documented status and a body that the documented zod schema accepts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from './app.ts';
import { apiOperations, type OperationSpec } from './api-spec.ts';
import { paymentResourceSchema } from './api-schemas.ts';
import { buildOpenApi, DOCS_CSP, type OpenApiDocument, type OpenApiOperation } from './openapi.ts';
import { useTestDatabase } from '@sluice/books/testing';
import { startTestApp, type TestApp } from './test-support.ts';
import { pino } from 'pino';

const db = useTestDatabase();
let t: TestApp;
let doc: OpenApiDocument;
beforeAll(async () => {
  t = await startTestApp({}, { databaseUrl: db.url });
  doc = (await (await fetch(`${t.url}/openapi.json`)).json()) as OpenApiDocument;
});
afterAll(async () => {
  await t.close();
});

/** Routers mounted whole (their sub-routes are their own): documented as one GET. */
const MOUNTS = new Set(['/admin/queues']);

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  /** A router has a stack; a mounted Express app (bull-board's) has one on its own router. */
  handle?: { stack?: Layer[]; router?: { stack?: Layer[] } };
  rawPath?: unknown;
}

/** `METHOD /path` of every route, walking nested routers (Express 5: app.router.stack). */
function routesOf(stack: Layer[], prefix = ''): Set<string> {
  const out = new Set<string>();
  for (const layer of stack) {
    if (layer.route) {
      const path = (prefix + layer.route.path).replace(/:(\w+)/g, '{$1}');
      for (const [m, on] of Object.entries(layer.route.methods)) if (on && m !== '_all') out.add(`${m.toUpperCase()} ${path}`);
    } else {
      const sub = layer.handle?.stack ?? layer.handle?.router?.stack;
      if (!sub) continue; // middleware
      const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      if (MOUNTS.has(prefix + mount)) out.add(`GET ${prefix + mount}`);
      else for (const r of routesOf(sub, prefix + mount)) out.add(r);
    }
  }
  return out;
}

const documented = (d: OpenApiDocument): Set<string> =>
  new Set(Object.entries(d.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)));

function appRoutes(overrides: Record<string, string | undefined> = {}): { routes: Set<string>; doc: OpenApiDocument } {
  const config = { ...t.config, ...overrides } as typeof t.config;
  const app = createApp({ config, store: t.store, queues: t.queues, logger: pino({ level: 'silent' }) });
  return { routes: routesOf((app.express as unknown as { router: { stack: Layer[] } }).router.stack), doc: buildOpenApi(config) };
}

describe('the document and the router', () => {
  it('/openapi.json is the OpenAPI 3.1 document built from the config', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.jsonSchemaDialect).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(doc).toEqual(JSON.parse(JSON.stringify(buildOpenApi(t.config))));
    expect(doc.components.securitySchemes).toEqual({
      merchantKey: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      operatorBasic: expect.objectContaining({ type: 'http', scheme: 'basic' }),
    });
  });

  it('documents every route the app has, and no route it does not have (with and without admin)', () => {
    const withAdmin = appRoutes();
    expect([...withAdmin.routes].sort()).toEqual([...documented(withAdmin.doc)].sort());
    expect(withAdmin.routes).toContain('GET /metrics');
    const without = appRoutes({ ADMIN_USER: undefined, ADMIN_PASSWORD: undefined });
    expect([...without.routes].sort()).toEqual([...documented(without.doc)].sort());
    expect(without.routes).not.toContain('GET /admin/queues');
  });

  it('takes the request schema from the one the intake validates with', () => {
    const body = doc.components.schemas.PaymentRequest!;
    expect(body).toMatchObject({ type: 'object', additionalProperties: false, required: ['paymentKey', 'orderId', 'amount'] });
    expect((body.properties as Record<string, unknown>).currency).toMatchObject({ type: 'string', const: t.config.PG_CURRENCY });
    expect((body.properties as Record<string, unknown>).metadata).toMatchObject({ maxProperties: 20 });
    expect(Object.keys(doc.components.schemas.Payment!.properties as object)).toContain('eta');
  });
});

interface Example {
  op: OpenApiOperation;
  spec: OperationSpec;
  method: string;
  name: string;
  path: string;
  headers: Record<string, string>;
  body?: unknown;
}

/** Every named example request of the document (the bare request for operations without any). */
function examplesOf(d: OpenApiDocument): Example[] {
  const specs = apiOperations(t.config);
  const out: Example[] = [];
  for (const [template, ops] of Object.entries(d.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const spec = specs.find((s) => s.operationId === op.operationId)!;
      const body = op.requestBody?.content['application/json']?.examples ?? {};
      const names = new Set([...op.parameters.flatMap((p) => Object.keys(p.examples ?? {})), ...Object.keys(body)]);
      for (const name of names.size ? names : ['']) {
        let path = template;
        const query = new URLSearchParams();
        const headers: Record<string, string> = {};
        for (const p of op.parameters) {
          const ex = p.examples?.[name]?.value;
          if (ex === undefined) continue;
          const v = String(ex);
          if (p.in === 'path') path = path.replace(`{${p.name}}`, encodeURIComponent(v));
          else if (p.in === 'query') query.set(p.name, v);
          else headers[p.name.toLowerCase()] = v;
        }
        if (spec.auth === 'merchant') headers.authorization = `Bearer ${t.keyA}`;
        if (spec.auth === 'admin') headers.authorization = `Basic ${Buffer.from(`${t.config.ADMIN_USER}:${t.config.ADMIN_PASSWORD}`).toString('base64')}`;
        const value = body[name]?.value;
        if (value !== undefined) headers['content-type'] = 'application/json';
        out.push({ op, spec, method, name, path: query.size ? `${path}?${query}` : path, headers, ...(value !== undefined ? { body: value } : {}) });
      }
    }
  }
  return out;
}

/** Sends a request and checks the answer against the documented responses; returns it. */
async function sendChecked(e: Pick<Example, 'spec' | 'method' | 'path' | 'headers' | 'body'>): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${t.url}${e.path}`, {
    method: e.method.toUpperCase(),
    headers: e.headers,
    ...(e.body !== undefined ? { body: JSON.stringify(e.body) } : {}),
  });
  const text = await res.text();
  const documentedAnswer = e.spec.responses[res.status];
  expect(documentedAnswer, `${e.method} ${e.path} answered an undocumented ${res.status}: ${text.slice(0, 300)}`).toBeDefined();
  const type = documentedAnswer!.contentType ?? 'application/json';
  expect(res.headers.get('content-type') ?? '').toMatch(new RegExp(`^${type.replace('/', '\\/')}`));
  let body: unknown = text;
  if (documentedAnswer!.schema) {
    body = JSON.parse(text);
    const parsed = documentedAnswer!.schema.safeParse(body);
    expect(parsed.success, `${e.method} ${e.path} → ${res.status}: ${parsed.error?.message ?? ''}`).toBe(true);
  }
  return { status: res.status, body, headers: res.headers };
}

describe('the documented examples, sent to a live app', () => {
  it('has an example for every operation that takes parameters or a body', () => {
    for (const ops of Object.values(doc.paths)) {
      for (const op of Object.values(ops)) {
        if (op.parameters.length || op.requestBody) expect(examplesOf(doc).some((e) => e.op === op && e.name !== ''), op.operationId).toBe(true);
      }
    }
  });

  it('answers each with a documented status and a body its schema accepts', async () => {
    const statuses: string[] = [];
    for (const e of examplesOf(doc)) {
      const res = await sendChecked(e);
      statuses.push(`${e.op.operationId}:${e.name}:${res.status}`);
    }
    // The examples do what they say: both POSTs are accepted, the order is found, the list and
    // the summary answer from the books, the probes and pages answer, and the example id (nobody's payment) is an honest 404.
    expect(statuses).toEqual(
      expect.arrayContaining([
        'createPayment:minimal:202', 'createPayment:withMetadata:202', 'getPayment:byId:404', 'getPayment:longPoll:404',
        'listPayments:byOrderId:200', 'listPayments:approved:200', 'dailySummary:month:200', 'liveness::200', 'readiness::200', 'openapi::200', 'docs::200',
        'adminQueues::200', 'dashboard::200', 'dashboardData::200', 'metrics::200',
      ]),
    );
  });

  it('answers the examples with a real id with the documented payment resource', async () => {
    const created = examplesOf(doc).find((e) => e.op.operationId === 'createPayment' && e.name === 'minimal')!;
    const getSpec = apiOperations(t.config).find((o) => o.operationId === 'getPayment')!;
    // Sent again: the same key and body replay the stored 202.
    const replay = await sendChecked(created);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    const id = (replay.body as { id: string }).id;
    for (const e of examplesOf(doc).filter((x) => x.op.operationId === 'getPayment')) {
      const path = e.path.replace(/pay_[0-9a-z]+/, id).replace(/wait=\d+/, 'wait=1');
      const res = await sendChecked({ ...e, path });
      expect(res.status).toBe(200);
      expect(paymentResourceSchema.parse(res.body)).toMatchObject({ id, status: 'QUEUED', eta: expect.any(String) });
    }
    // And the error answers are documented too: another merchant's key, and a bad wait.
    const read = (path: string, key: string) => sendChecked({ spec: getSpec, method: 'get', path, headers: { authorization: `Bearer ${key}` } });
    expect((await read(`/v1/payments/${id}`, t.keyB)).status).toBe(404);
    expect((await read(`/v1/payments/${id}?wait=99`, t.keyA)).status).toBe(400);
    expect((await read(`/v1/payments/${id}`, 'sk_unknown')).status).toBe(401);
  });
});

describe('/docs', () => {
  it('is a self-contained page describing every operation, under a CSP that allows no script', async () => {
    const res = await fetch(`${t.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toBe(DOCS_CSP);
    expect(DOCS_CSP).not.toMatch(/script-src|unsafe/);
    const page = await res.text();
    // Nothing loaded from elsewhere: no script, no handler, no attribute pointing off the page (an
    // example URL in a body's text is text).
    expect(page).not.toMatch(/<script|\bon\w+=|\b(?:src|href|action)=["']?(?:https?:)?\/\//i);
    for (const ops of Object.values(doc.paths)) for (const op of Object.values(ops)) expect(page).toContain(`id="${op.operationId}"`);
    expect(page).toContain('eta');
    expect(page).toContain('TOO_MANY_WAITERS');
  });
});
