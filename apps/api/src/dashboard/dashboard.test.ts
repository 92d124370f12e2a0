/**
 * `/dashboard`, `/dashboard/data` and the advisory readiness checks, over real Redis. The browser
 * side is test/dashboard.browser.test.ts.
 */
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { get, listen, postPayment, startTestApp, type TestApp } from '../test-support.ts';
import { booksLagOf, type DashboardData } from './data.ts';
import { etaSeconds, parseRedisMemory } from './ops-reader.ts';
import { PAGE_SCRIPT } from './page-script.ts';
import { breakerCheck, redisMemoryCheck } from './readiness.ts';

let t: TestApp;
const ops = { authorization: `Basic ${Buffer.from('ops:ops-password-1').toString('base64')}` };

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

describe('/dashboard', () => {
  it('answers 401 without the operator credentials', async () => {
    for (const path of ['/dashboard', '/dashboard/data']) {
      const res = await get(t, path);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
    }
  });

  it('serves a self-contained page whose inline script its CSP allows by hash', async () => {
    const res = await get(t, '/dashboard', undefined, ops);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const csp = res.headers.get('content-security-policy') ?? '';
    const hash = createHash('sha256').update(PAGE_SCRIPT).digest('base64');
    expect(csp).toContain(`script-src 'sha256-${hash}'`);
    expect(csp).toContain("default-src 'none'");
    for (const id of ['pg-rps', 'pg-rps-confirm', 'pg-rps-inquire', 'pg-rps-cancel', 'intake-rps', 'backlog', 'eta', 'oldest', 'in-doubt', 'breaker-state', 'final-APPROVED', 'failures', 'timeout-confirm', 'hold-confirm', 'calls-per-payment']) {
      expect(res.text).toContain(`data-testid="${id}"`);
    }
    // No remote resources: nothing to load where there is no internet.
    expect(res.text).not.toMatch(/(src|href)="https?:/);
  });

  it('/dashboard/data shows the figures in Redis', async () => {
    for (let i = 0; i < 3; i++) expect((await postPayment(t, {})).status).toBe(202);
    expect((await postPayment(t, { key: t.keyB })).status).toBe(202);
    const k = t.store.keys;
    const nowSec = Math.floor(Number((await t.redis.time())[0]));
    await t.redis.hset(k.pgRate, `${nowSec - 1}:confirm`, 120, `${nowSec - 1}:inquire`, 7, `${nowSec - 1}:cancel`, 2);
    await t.redis.hset(k.finalRate, `${nowSec - 2}:APPROVED`, 3);
    await t.redis.hset(k.counters, 'final:APPROVED', 3, 'final:DECLINED', 1);
    // PG calls by outcome (what breaker-record.lua counts): 4 confirms and 2 inquiries reached the
    // PG, one confirm was never sent.
    await t.redis.hset(k.counters, 'pg:confirm:approved', 3, 'pg:confirm:declined', 1, 'pg:confirm:not_sent', 1, 'pg:inquire:in_progress', 2);
    // Two live worker processes and one gone quiet: the longest timeout in force, the mean hold.
    const figures = (at: number, confirmTimeout: number, confirmHold: number | null) =>
      JSON.stringify({ at, readTimeoutMs: { confirm: confirmTimeout, inquire: 1_500, cancel: 1_500, transactions: 10_000 }, holdMs: { confirm: confirmHold, inquire: 4, cancel: null, transactions: null }, inFlight: 3 });
    await t.redis.hset(k.pgClients, 'host:1', figures(Date.now(), 2_400, 300), 'host:2', figures(Date.now(), 1_800, 500), 'host:3', figures(Date.now() - 60_000, 9_000, 9_000));
    await t.redis.zadd(k.inDoubt, Date.now(), 'pay_x');
    await t.redis.lpush(k.recentFailures, JSON.stringify({ at: Date.now(), id: 'pay_y', status: 'DECLINED', code: 'REJECT_CARD_COMPANY', message: '<b>no</b>' }));

    // The series end at the last complete second (of the Redis clock the intake script counts
    // by), so the payments just posted show up within a second.
    let d = {} as DashboardData;
    await expect
      .poll(async () => {
        const res = await get(t, '/dashboard/data', undefined, ops);
        expect(res.status).toBe(200);
        d = res.json as DashboardData;
        return d.intake.reduce((a, b) => a + b, 0);
      }, { timeout: 10_000, interval: 200 })
      .toBe(4);
    expect(d.limitPerSecond).toBe(500);
    expect(d.seconds).toHaveLength(300);
    expect(d.seconds.at(-1)).toBeGreaterThanOrEqual(nowSec - 1);
    expect(d.pg.confirm).toHaveLength(300);
    const at = d.seconds.indexOf(nowSec - 1);
    expect([d.pg.confirm[at], d.pg.inquire[at], d.pg.cancel[at]]).toEqual([120, 7, 2]);
    expect(d.final.APPROVED.reduce((a, b) => a + b, 0)).toBe(3);
    expect(d.totals.created).toBe(4);
    expect(d.totals.final).toEqual({ APPROVED: 3, DECLINED: 1, FAILED: 0, CANCELED: 0 });
    expect(d.backlog).toBe(4);
    expect(d.oldestAgeSeconds).toBeLessThan(60);
    expect(d.inDoubt).toBe(1);
    expect(d.breaker.state).toBe('closed');
    expect(d.failures).toEqual([expect.objectContaining({ id: 'pay_y', code: 'REJECT_CARD_COMPANY', message: '<b>no</b>' })]);
    expect(d.memory.usedBytes).toBeGreaterThan(0);
    expect(d.pgClient).toEqual({
      processes: 2,
      readTimeoutMs: { confirm: 2_400, inquire: 1_500, cancel: 1_500, transactions: 10_000 },
      holdMs: { confirm: 400, inquire: 4, cancel: null, transactions: null },
    });
    expect(d.callsPerPayment).toEqual({ confirm: 1, inquire: 0.5, cancel: 0, transactions: 0 });
    // Two merchants waiting, in turn order, each with half of the PG; none admitted (no worker here).
    expect(d.fair).toEqual({
      admitted: 0,
      merchants: 2,
      top: [{ merchantId: 'm_a', waiting: 3, weight: 1, share: 0.5 }, { merchantId: 'm_b', waiting: 1, weight: 1, share: 0.5 }],
    });
  });

  it('does not exist without operator credentials configured', async () => {
    const bare = await startTestApp({ ADMIN_USER: null, ADMIN_PASSWORD: null });
    try {
      for (const path of ['/dashboard', '/dashboard/data', '/metrics']) expect((await get(bare, path, undefined, ops)).status).toBe(404);
    } finally {
      await bare.close();
    }
  });
});

describe('advisory readiness checks', () => {
  it('/readyz stays 200 with a Redis memory warning and an open breaker, and shows both', async () => {
    await t.redis.hset(t.store.keys.breaker, 'state', 'open');
    const app = createApp({
      config: t.config,
      store: t.store,
      
      queues: t.queues,
      logger: pino({ level: 'silent' }),
      // A negative threshold makes any usage a warning: the test Redis has no maxmemory.
      readinessChecks: [redisMemoryCheck(t.redis, t.store.keys, -1), breakerCheck(t.redis, t.store.keys)],
    });
    const s = await listen(app);
    try {
      const res = await fetch(`${s.url}/readyz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok', checks: { redis: 'ok', redisMemory: 'warn', breaker: 'open' } });
    } finally {
      await s.close();
      await t.redis.del(t.store.keys.breaker);
    }
  });

  it('says ok below the threshold', async () => {
    expect(await redisMemoryCheck(t.redis, t.store.keys, 0.8).check()).toBe('ok');
  });
});

describe('figures', () => {
  it('ETA: backlog over the recent confirm rate, or over the limit when idle', () => {
    expect(etaSeconds(0, 0, 500)).toBe(0);
    expect(etaSeconds(1_000, 0, 500)).toBe(2);
    expect(etaSeconds(1_000, 0.5, 500)).toBe(2);
    expect(etaSeconds(1_000, 100, 500)).toBe(10);
    expect(etaSeconds(600_000, 480, 500)).toBe(1_250);
  });

  it('reads used_memory and maxmemory from INFO memory', () => {
    const info = '# Memory\r\nused_memory:800\r\nused_memory_human:800B\r\nmaxmemory:1000\r\n';
    expect(parseRedisMemory(info)).toEqual({ usedBytes: 800, maxBytes: 1000, ratio: 0.8 });
    expect(parseRedisMemory('used_memory:5\r\nmaxmemory:0\r\n').ratio).toBe(0);
  });
});

describe('the books lag', () => {
  it('is what the drainer reported while its report is fresh, and grows once no drainer reports', () => {
    const at = 1_000_000;
    const counters = { 'books:lagMs': 1_500, 'books:pending': 40, 'books:undelivered': 7, 'books:lagAt': at };
    expect(booksLagOf(counters, at + 2_000)).toEqual({ lagSeconds: 1.5, pending: 40, undelivered: 7, reportedAt: at });
    expect(booksLagOf(counters, at + 60_000).lagSeconds).toBe(61.5);
    expect(booksLagOf({}, at)).toEqual({ lagSeconds: 0, pending: 0, undelivered: 0, reportedAt: null });
  });
});
