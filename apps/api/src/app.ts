/**
 * The API's composition: `createApp(deps)` wires middleware and routes over clients it is given.
 * `main.ts` builds those clients from the environment; tests build them over real Redis with a
 * prefix of their own. Nothing here opens a connection or reads `process.env`.
 *
 * What it returns is Node's request listener: the intake front (intake.ts) takes
 * `POST /v1/payments`, Express everything else.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { Logger } from 'pino';
import { required, type Config } from '@sluice/config';
import type { PaymentStore, Redis, ReplicaWaiter } from '@sluice/store';
import type { BooksReader } from '@sluice/books';
import { createWebhookQueue, type DeliveryJob, type Queues } from '@sluice/queue';
import type { Queue } from 'bullmq';
import { adminRoutes } from './admin.ts';
import { operatorRoutes } from './dashboard/routes.ts';
import { MerchantAuth, operatorAuthOf } from './auth.ts';
import { errorHandler, notFoundRoute } from './errors.ts';
import { healthRoutes, redisCheck, type ReadinessCheck } from './health.ts';
import { fromBooksOf } from './answers.ts';
import { intakeFront, intakeHandler } from './intake.ts';
import { FinalWaiters } from './long-poll.ts';
import { buildOpenApi, docsRoutes } from './openapi.ts';
import { allowedMethods } from './methods.ts';
import { paymentRoutes } from './payments.ts';
import { providerRoutes } from './providers.ts';
import { webhookRoutes } from './webhook-routes.ts';
import { parseTrustProxy, refuseRepeatedHeaders, requestId } from './request-context.ts';
import { securityHeaders, securityHeaderSetter } from './security-headers.ts';

/** What the API runs on. */
export interface AppDeps {
  config: Config;
  store: PaymentStore;
  /** For the admin board only: intake puts payments in the merchants' fair queues, and the workers add the jobs. */
  queues: Queues;
  logger: Logger;
  /** The clock for `createdAt` (ms). Defaults to `Date.now`. */
  now?: () => number;
  /** Readiness checks besides Redis (which is always checked, on the store's connection). */
  readinessChecks?: ReadinessCheck[];
  /** The books (PostgreSQL): what Redis has forgotten, lists, summaries. Null or absent: Redis only. */
  books?: BooksReader | null;
  /** Replicas a write must be on before its 202 (`replicaWaiterOf`); null or absent: none. */
  replicas?: ReplicaWaiter | null;
  /**
   * Long polls wait here; give one to close it at shutdown. By default the app makes its own
   * (it opens its subscriber connection only on the first `?wait`).
   */
  waiters?: FinalWaiters;
}

/** The API: Node's request listener, and the Express app behind it (whose routes the OpenAPI test walks). */
export type ApiApp = ((req: IncomingMessage, res: ServerResponse) => void) & { readonly express: express.Express };

/** Builds the API. Throws at start-up when API_KEY_PEPPER is missing. */
export function createApp(deps: AppDeps): ApiApp {
  const { config, logger } = deps;
  const auth = new MerchantAuth(required(config, 'API_KEY_PEPPER'), config.MERCHANTS);
  if (config.MERCHANTS.length === 0) logger.warn('MERCHANTS is empty: every payment request will be refused with 401');

  const app = express();
  app.disable('x-powered-by');
  // Payment resources change under the merchant's feet and are private: no ETags (the routes
  // send Cache-Control: no-store), and no hashing of every body.
  app.set('etag', false);
  app.set('trust proxy', parseTrustProxy(config.TRUST_PROXY));

  const setSecurityHeaders = securityHeaderSetter(); // helmet()'s headers, computed once
  app.use(securityHeaders(setSecurityHeaders));
  app.use(requestId());
  app.use(refuseRepeatedHeaders());
  const methods = allowedMethods(app);
  app.use(methods.options);

  // Failed operator logins are counted on the queues' connection, never the intake's.
  const operatorAuth = operatorAuthOf(config, () => deps.queues.confirm.client as unknown as Promise<Redis>, deps.store.keys);
  const ops = operatorRoutes({ config, store: deps.store, queues: deps.queues, auth: operatorAuth });
  app.post('/v1/payments', ops.countIntake); // intake outcomes for /metrics: one listener, no Redis
  // The front serves POST /v1/payments; Express's intake route, for the paths the front leaves to
  // it, is still matched first.
  const waiters = deps.waiters ?? new FinalWaiters(() => deps.store.redis.duplicate({ enableAutoPipelining: false }), deps.store.keys.finalChannel);
  const now = deps.now ?? Date.now;
  const books = deps.books ?? null;
  const intake = intakeHandler({ config, store: deps.store, now, fromBooks: fromBooksOf(books), replicas: deps.replicas ?? null });
  app.use(paymentRoutes({ config, store: deps.store, auth, now, waiters, books, replicas: deps.replicas ?? null, intake }));
  app.use(providerRoutes({ config, store: deps.store, auth, now }));
  let deliveries: Queue<DeliveryJob> | null = null;
  app.use(webhookRoutes({
    config, store: deps.store, auth, books: deps.books ?? null,
    // Opened on the first redelivery, on the queues' connection.
    deliveries: () => (deliveries ??= createWebhookQueue(deps.queues.confirm.opts.connection, config.REDIS_PREFIX)),
  }));
  app.use(healthRoutes([redisCheck(deps.store.redis), ...(deps.readinessChecks ?? [])]));
  const admin = adminRoutes(config, deps.queues, operatorAuth);
  if (admin) app.use(admin);
  if (ops.router) app.use(ops.router);
  app.use(docsRoutes(buildOpenApi(config)));

  app.use(methods.notAllowed);
  app.use(notFoundRoute());
  app.use(errorHandler(logger));

  const front = intakeFront({
    handle: intake, auth, bodyLimitBytes: config.BODY_LIMIT_BYTES, securityHeaders: setSecurityHeaders, countAnswer: ops.metrics.countAnswer, logger,
  });
  return Object.assign((req: IncomingMessage, res: ServerResponse): void => {
    if (!front(req, res)) app(req, res);
  }, { express: app });
}
