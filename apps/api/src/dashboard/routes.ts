/**
 * The operators' read-only pages: `/dashboard` (HTML), `/dashboard/data` (its JSON) and
 * `/metrics` (Prometheus), behind the same HTTP Basic auth as bull-board. Like bull-board, they
 * do not exist without ADMIN_USER and ADMIN_PASSWORD: an unconfigured deployment never shows its
 * figures to anyone who asks.
 */
import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { Redis } from 'ioredis';
import { providersOf, type Config } from '@sluice/config';
import { SluiceError } from '@sluice/domain';
import type { Queues } from '@sluice/queue';
import { makeKeys, type PaymentStore } from '@sluice/store';
import { ApiMetrics } from '../metrics.ts';
import { readDashboardData } from './data.ts';
import { OpsReader } from './ops-reader.ts';
import { DASHBOARD_CSP, DASHBOARD_HTML } from './page.ts';

/** Past this a read counts as failed: the page polls every second and a scrape has its own timeout. */
export const OPS_READ_TIMEOUT_MS = 2_000;

/** What the operator routes need: Redis, the keys, the PG's limit, credentials and a logger. */
export interface OperatorDeps {
  config: Config;
  store: PaymentStore;
  queues: Queues;
  /** The operator pages' auth (auth.ts `operatorAuthOf`); null: no operator pages. */
  auth: RequestHandler | null;
}

/** The operator routes (dashboard, bull-board, metrics) and how to close what they hold. */
export interface OperatorRoutes {
  /** Counts intake answers by outcome; mount on POST /v1/payments in front of the intake route. */
  countIntake: RequestHandler;
  /** `/dashboard`, `/dashboard/data`, `/metrics`; null without operator credentials. */
  router: Router | null;
  metrics: ApiMetrics;
}

/** The PG's limit scaled to one second (PG_RATE_LIMIT per PG_RATE_WINDOW_MS). */
export function limitPerSecond(c: Pick<Config, 'PG_RATE_LIMIT' | 'PG_RATE_WINDOW_MS'>): number {
  return (c.PG_RATE_LIMIT * 1000) / c.PG_RATE_WINDOW_MS;
}

async function withDeadline<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SluiceError('REDIS_UNAVAILABLE', `${what}: Redis did not answer in time`, 503, true)), OPS_READ_TIMEOUT_MS);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Builds the operator routes and the intake counter (which exists with or without them). */
export function operatorRoutes(deps: OperatorDeps): OperatorRoutes {
  const { config, store, queues } = deps;
  // The queues' connection, not the intake's: a dashboard read never queues in front of a
  // payment's one round trip (main.ts gives them separate connections for this reason).
  // (On a Redis Cluster it is a cluster client typed as one: connectRedis in @sluice/store.)
  const redis = () => queues.confirm.client as unknown as Promise<Redis>;
  // The charts, breaker tile and merchants' queues are the first provider's (with one PG, that
  // PG's); every provider has its row.
  const providers = providersOf(config).map((p) => ({ id: p.id, keys: makeKeys(p.config.REDIS_PREFIX, p.id, p.config.REDIS_SHARDS), limitPerSecond: limitPerSecond(p.config) }));
  const first = providers[0]!;
  const reader = new OpsReader(redis, first.keys, first.limitPerSecond, providers);
  const metrics = new ApiMetrics(reader, queues);
  const auth = deps.auth;
  if (!auth) return { countIntake: metrics.countIntake, router: null, metrics };

  const router = Router();
  const noStore = (_req: Request, res: Response, next: () => void) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  };
  router.use(['/dashboard', '/metrics'], auth, noStore);

  router.get('/dashboard', (_req, res) => {
    res.setHeader('Content-Security-Policy', DASHBOARD_CSP);
    res.type('html').send(DASHBOARD_HTML);
  });
  router.get('/dashboard/data', async (_req, res) => {
    res.json(await withDeadline(readDashboardData(reader, limitPerSecond(config)), 'dashboard data'));
  });
  router.get('/metrics', async (_req, res) => {
    const body = await withDeadline(metrics.render(), 'metrics');
    res.setHeader('Content-Type', metrics.contentType);
    res.send(body);
  });
  return { countIntake: metrics.countIntake, router, metrics };
}
