/**
 * `GET /v1/providers`: routing advice for new checkouts (several PGs, 이중화). A merchant's
 * checkout page asks it before it opens a PG's payment window: which PGs take payments now, how
 * long a new payment of this merchant would wait at each, and which one to use.
 *
 * A paymentKey can only be confirmed at the PG that issued it, so what moves during an outage is
 * new checkouts: payments already authorised at a failed PG wait for it (their queue, their
 * breaker), and the advice sends the next customers elsewhere.
 */
import { merchantWeight, providersOf, type Config, type Provider } from '@sluice/config';
import { estimateAll, etaMs, fairShares, makeKeys, readBreaker, sumCounters, type BreakerState, type Keys, type PaymentStore } from '@sluice/store';
import { Router, type Request, type Response } from 'express';
import type { MerchantAuth } from './auth.ts';
import type { ApiLocals } from './request-context.ts';

/** A provider's state for new checkouts. */
export type ProviderState = 'available' | 'degraded' | 'down';

/** One provider as the advice shows it. */
export interface ProviderAdvice {
  id: string;
  state: ProviderState;
  breaker: BreakerState;
  /** Failed calls ÷ calls over the breaker's window (null: no calls). */
  errorRate: number | null;
  /** Its share of new checkouts among those available (PROVIDERS `weight`). */
  weight: number;
  limitPerSecond: number;
  /** Payments waiting in its merchants' queues, and admitted and not yet sent. */
  backlog: { waiting: number; admitted: number };
  /** When a new payment of this merchant accepted now should reach this PG. */
  eta: string;
}

/** Past this error rate (with at least {@link MIN_CALLS} calls in the window) a provider is `degraded`. */
export const DEGRADED_ERROR_RATE = 0.1;
const MIN_CALLS = 10;

/** A provider's state: `down` while its breaker is open, `degraded` while half-open or failing often, else `available`. */
export function providerState(breaker: BreakerState, errorRate: number | null): ProviderState {
  if (breaker === 'open') return 'down';
  if (breaker === 'half_open' || (errorRate !== null && errorRate >= DEGRADED_ERROR_RATE)) return 'degraded';
  return 'available';
}

/**
 * The recommended provider: one of the `available` ones (else the `degraded` ones), drawn by
 * weight, so that new checkouts spread as the weights say; null when all are down or weigh 0.
 */
export function recommend(advice: readonly ProviderAdvice[], random: () => number = Math.random): string | null {
  for (const state of ['available', 'degraded'] as const) {
    const pool = advice.filter((a) => a.state === state && a.weight > 0);
    const total = pool.reduce((a, p) => a + p.weight, 0);
    if (total === 0) continue;
    let x = random() * total;
    for (const p of pool) {
      x -= p.weight;
      if (x < 0) return p.id;
    }
    return pool[pool.length - 1]!.id;
  }
  return null;
}

/** The failure rate over the breaker's window hash (`t:<sec>`, `f:<sec>`), null without calls. */
function errorRateOf(window: Record<string, string>, nowSec: number, windowMs: number): number | null {
  const from = nowSec - Math.ceil(windowMs / 1_000);
  let total = 0;
  let failed = 0;
  for (const [field, v] of Object.entries(window)) {
    const sec = Number(field.slice(2));
    if (!(sec > from)) continue;
    if (field.startsWith('t:')) total += Number(v);
    else if (field.startsWith('f:')) failed += Number(v);
  }
  return total >= MIN_CALLS ? failed / total : null;
}

/** What the route needs: the config (its providers), the store's Redis, merchant auth. */
export interface ProviderRouteDeps {
  config: Config;
  store: PaymentStore;
  auth: MerchantAuth;
  now: () => number;
}

/** `GET /v1/providers`, behind merchant auth. */
export function providerRoutes(deps: ProviderRouteDeps): Router {
  const redis = deps.store.redis;
  const providers = providersOf(deps.config).map((p: Provider) => {
    const keys: Keys = makeKeys(p.config.REDIS_PREFIX, p.id, p.config.REDIS_SHARDS);
    return { p, keys, fairs: fairShares(redis, keys) };
  });
  const router = Router();
  const authenticate = deps.auth.middleware();
  router.get('/v1/providers', authenticate, async (_req: Request, res: Response<unknown, ApiLocals>) => {
    res.setHeader('Cache-Control', 'no-store');
    const merchantId = res.locals.merchantId;
    const weight = merchantWeight(deps.config, merchantId);
    const now = deps.now();
    const advice = await Promise.all(
      providers.map(async ({ p, keys, fairs }): Promise<ProviderAdvice> => {
        const pc = p.config;
        const [breaker, windows, est] = await Promise.all([
          readBreaker(redis, keys), Promise.all(keys.shards.map((k) => redis.hgetall(`${k.breaker}:window`))), estimateAll(fairs, merchantId, weight),
        ]);
        // Each shard's breaker counts its own calls: the provider's error rate is over all of them.
        const window = Object.fromEntries(Object.entries(sumCounters(windows)).map(([f, v]) => [f, String(v)]));
        const errorRate = errorRateOf(window, Math.floor(now / 1_000), pc.BREAKER_WINDOW_MS);
        return {
          id: p.id,
          state: providerState(breaker.state, errorRate),
          breaker: breaker.state,
          errorRate,
          weight: p.weight,
          limitPerSecond: (pc.PG_RATE_LIMIT * 1_000) / pc.PG_RATE_WINDOW_MS,
          backlog: { waiting: est.waiting, admitted: est.admitted },
          eta: new Date(etaMs(est.slots, now, { windowMs: pc.PG_RATE_WINDOW_MS, limit: pc.PG_RATE_LIMIT })).toISOString(),
        };
      }),
    );
    res.json({ providers: advice, recommended: recommend(advice) });
  });
  return router;
}
