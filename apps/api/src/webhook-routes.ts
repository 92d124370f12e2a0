/**
 * Signed webhooks, the merchant's side of the API:
 * - `POST /v1/webhook-endpoints` registers an endpoint (its URL checked against the address
 *   policy, its event types) and shows its secret once; the secret is sealed at rest;
 * - `GET /v1/webhook-endpoints` lists them (never the secret); `DELETE …/{id}` removes one;
 * - `GET /v1/events?after=&limit=` lists the merchant's events in order, from the books;
 * - `POST /v1/events/{id}/redeliver` sends one again to the endpoints that take its type.
 * Deliveries are the worker's (apps/worker webhooks.ts).
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { webhookPolicyOf, type Config } from '@sluice/config';
import { SluiceError, WEBHOOK_EVENT_TYPES, type WebhookEventType } from '@sluice/domain';
import { deliveryJobId, DELIVERY_JOB_OPTIONS, type DeliveryJob } from '@sluice/queue';
import { BooksStream, newEndpointId, takesEvent, WebhookEndpoints, WEBHOOKS_GROUP, type PaymentStore, type WebhookEndpoint } from '@sluice/store';
import { newEndpointSecret, SecretBox, urlProblem } from '@sluice/webhooks';
import type { BooksReader } from '@sluice/books';
import type { Queue } from 'bullmq';
import type { MerchantAuth } from './auth.ts';
import { jsonBody, requireJson } from './json-body.ts';
import type { ApiLocals } from './request-context.ts';

/** What the webhook routes need. */
export interface WebhookRouteDeps {
  config: Config;
  store: PaymentStore;
  auth: MerchantAuth;
  books: BooksReader | null;
  /** Where redeliveries go (the worker's delivery queue). */
  deliveries: () => Queue<DeliveryJob>;
}

/** `POST /v1/webhook-endpoints`' body. */
export const endpointRequestSchema = z.strictObject({
  url: z.string().max(2_048).describe('https (plain http outside production); no loopback, private or link-local address unless WEBHOOK_ALLOW_PRIVATE'),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).max(WEBHOOK_EVENT_TYPES.length).optional().describe('The event types to deliver; all of them by default'),
});

/** An endpoint as merchants see it (`secret` only in the answer that made it). */
export interface EndpointResource {
  id: string;
  url: string;
  events: WebhookEventType[];
  createdAt: string;
  /** When it was disabled (its receiver answered 410 Gone), or null. */
  disabledAt: string | null;
  secret?: string;
}

const render = (e: WebhookEndpoint, secret?: string): EndpointResource => ({
  id: e.id, url: e.url, events: e.events, createdAt: new Date(e.createdAt).toISOString(),
  disabledAt: e.disabledAt === null ? null : new Date(e.disabledAt).toISOString(),
  ...(secret ? { secret } : {}),
});

const eventsQuery = z.strictObject({
  after: z.string().regex(/^evt_[A-Za-z0-9_-]{1,120}$/).optional().describe('The last event id of the previous page'),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});

const invalid = (path: string, message: string) => new SluiceError('INVALID_REQUEST', 'The request is invalid', 400, false, [{ path, code: 'invalid', message }]);

/** The webhook routes, behind merchant auth. */
export function webhookRoutes(deps: WebhookRouteDeps): Router {
  const { config, store } = deps;
  const endpoints = new WebhookEndpoints(store.redis, store.keys.prefix);
  const box = config.WEBHOOK_ENCRYPTION_KEY ? new SecretBox(config.WEBHOOK_ENCRYPTION_KEY) : null;
  const policy = webhookPolicyOf(config);
  const router = Router();
  const authenticate = deps.auth.middleware();
  router.use(['/v1/webhook-endpoints', '/v1/events'], (req: Request, res: Response<unknown, ApiLocals>, next: NextFunction) => {
    res.setHeader('Cache-Control', 'no-store');
    authenticate(req, res, next);
  });
  const needBox = (): SecretBox => {
    if (!box) throw new SluiceError('WEBHOOKS_UNAVAILABLE', 'Webhooks are not configured (WEBHOOK_ENCRYPTION_KEY)', 503);
    return box;
  };
  const needBooks = (): BooksReader => {
    if (!deps.books) throw new SluiceError('BOOKS_UNAVAILABLE', 'The books are not configured (DATABASE_URL)', 503);
    return deps.books;
  };

  router.post('/v1/webhook-endpoints', requireJson, jsonBody(config.BODY_LIMIT_BYTES), async (req: Request, res: Response<unknown, ApiLocals>) => {
    const seal = needBox();
    const parsed = endpointRequestSchema.safeParse(req.body);
    if (!parsed.success) throw invalid(String(parsed.error.issues[0]?.path.join('.') ?? ''), parsed.error.issues[0]?.message ?? 'invalid');
    const problem = urlProblem(parsed.data.url, policy);
    if (problem) throw invalid('url', `url ${problem}`);
    const id = newEndpointId();
    const secret = newEndpointSecret();
    const e = { id, merchantId: res.locals.merchantId, url: parsed.data.url, events: [...new Set(parsed.data.events ?? WEBHOOK_EVENT_TYPES)], sealedSecret: seal.seal(secret, id), createdAt: Date.now() };
    // The dispatchers' group: from now on (an endpoint hears of events after it was made).
    for (const k of store.keys.shards) await new BooksStream(store.redis, k, WEBHOOKS_GROUP).ensureGroup('$');
    if (!(await endpoints.create(e))) throw new SluiceError('ENDPOINT_LIMIT_REACHED', 'This merchant has as many endpoints as it may (20); delete one first', 409);
    res.status(201).json(render({ ...e, disabledAt: null }, secret));
  });

  router.get('/v1/webhook-endpoints', async (_req: Request, res: Response<unknown, ApiLocals>) => {
    res.json({ data: (await endpoints.list(res.locals.merchantId)).map((e) => render(e)) });
  });

  router.delete('/v1/webhook-endpoints/:id', async (req: Request<{ id: string }>, res: Response<unknown, ApiLocals>) => {
    if (!(await endpoints.delete(res.locals.merchantId, req.params.id))) throw new SluiceError('NOT_FOUND', 'No such endpoint', 404);
    res.status(204).end();
  });

  router.get('/v1/events', async (req: Request, res: Response<unknown, ApiLocals>) => {
    const q = eventsQuery.safeParse(req.query);
    if (!q.success) throw invalid(`query.${String(q.error.issues[0]?.path.join('.') ?? '')}`, q.error.issues[0]?.message ?? 'invalid');
    const books = needBooks();
    const merchantId = res.locals.merchantId;
    if (q.data.after && !(await books.event(merchantId, q.data.after))) throw invalid('query.after', 'after: no such event');
    const page = await books.events(merchantId, q.data.after ?? null, q.data.limit);
    const data = page.events.map((b) => JSON.parse(b) as { id: string });
    res.json({ data, hasMore: page.hasMore, nextAfter: data.length > 0 ? data[data.length - 1]!.id : (q.data.after ?? null) });
  });

  router.post('/v1/events/:id/redeliver', async (req: Request<{ id: string }>, res: Response<unknown, ApiLocals>) => {
    const books = needBooks();
    const merchantId = res.locals.merchantId;
    const body = /^evt_[A-Za-z0-9_-]{1,120}$/.test(req.params.id) ? await books.event(merchantId, req.params.id) : null;
    if (!body) throw new SluiceError('NOT_FOUND', 'No such event', 404);
    const ev = JSON.parse(body) as { id: string; type: WebhookEventType; timestamp: string };
    const targets = (await endpoints.list(merchantId)).filter((e) => takesEvent(e, ev.type));
    const tag = `r${Date.now().toString(36)}`;
    await deps.deliveries().addBulk(targets.map((e) => ({
      name: 'deliver',
      data: { eventId: ev.id, endpointId: e.id, body, createdAt: Date.now() },
      opts: { ...DELIVERY_JOB_OPTIONS, jobId: deliveryJobId(ev.id, e.id, tag) },
    })));
    res.status(202).json({ id: ev.id, endpoints: targets.map((e) => e.id) });
  });

  return router;
}
