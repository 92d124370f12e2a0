/**
 * Liveness and readiness. `/healthz` says the process serves HTTP (restart it if not);
 * `/readyz` says it can take payments now (route traffic elsewhere if not), by running every
 * readiness check with a deadline.
 */
import { Router } from 'express';
import type { Redis } from 'ioredis';

/** One dependency the API needs to take payments. Resolves when healthy, rejects when not. */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<unknown>;
  /**
   * Reported, never a reason for 503: the check resolves to what `/readyz` shows (e.g. `warn`,
   * or the breaker's state), and `unknown` when it fails. For what operators must see but a
   * load balancer must not act on (the API still takes payments).
   */
  advisory?: boolean;
}

/** How long a check may take before it counts as down: past this, a load balancer has given up. */
export const READINESS_TIMEOUT_MS = 1_000;

/**
 * Redis answers PING. With offline queueing and endless reconnects a PING to a dead Redis never
 * settles, which is why every check runs under {@link READINESS_TIMEOUT_MS}.
 */
export function redisCheck(redis: Redis): ReadinessCheck {
  return { name: 'redis', check: () => redis.ping() };
}

async function run(c: ReadinessCheck, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const failed = c.advisory ? 'unknown' : 'down';
  const deadline = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(failed), timeoutMs);
  });
  const healthy = (v: unknown) => (c.advisory && typeof v === 'string' ? v : 'ok');
  try {
    return await Promise.race([c.check().then(healthy, () => failed), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** `/healthz` and `/readyz`. Add a dependency by adding a check (the PG is the worker's, not ours). */
export function healthRoutes(checks: readonly ReadinessCheck[], timeoutMs = READINESS_TIMEOUT_MS): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const results = await Promise.all(checks.map(async (c) => [c.name, await run(c, timeoutMs)] as const));
    const ready = results.every(([, r], i) => r === 'ok' || checks[i]!.advisory);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ok' : 'unavailable', checks: Object.fromEntries(results) });
  });
  return router;
}
