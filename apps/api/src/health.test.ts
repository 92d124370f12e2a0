/** Probes, unknown routes, hardening headers and the 500 path. */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, PaymentStore } from '@sluice/store';
import { createApp } from './app.ts';
import { get, listen, postPayment, startTestApp, type TestApp } from './test-support.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

describe('probes', () => {
  it('/healthz answers 200 {status:"ok"} without auth', async () => {
    const res = await get(t, '/healthz');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 when Redis answers PING', async () => {
    const res = await get(t, '/readyz');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: 'ok', checks: { redis: 'ok' } });
  });

  it('/readyz answers 503 within about a second when Redis does not answer', async () => {
    // A port nothing listens on: ioredis keeps reconnecting and queues the PING, so only the
    // readiness deadline can answer.
    const dead = connectRedis('redis://127.0.0.1:1');
    dead.on('error', () => {});
    const store = new PaymentStore(dead, { prefix: t.prefix, idempotencyTtlMs: 60_000, retentionMs: 60_000 });
    const app = createApp({ config: t.config, store, queues: t.queues, logger: pino({ level: 'silent' }) });
    const s = await listen(app);
    try {
      const started = Date.now();
      const res = await fetch(`${s.url}/readyz`);
      const elapsed = Date.now() - started;
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'unavailable', checks: { redis: 'down' } });
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(3_000);
    } finally {
      await s.close();
      dead.disconnect();
    }
  });

  it('/readyz reports every check by name, and any failing one makes it 503', async () => {
    const app = createApp({
      config: t.config,
      store: t.store,
      
      queues: t.queues,
      logger: pino({ level: 'silent' }),
      readinessChecks: [{ name: 'dashboard', check: () => Promise.reject(new Error('down')) }],
    });
    const s = await listen(app);
    try {
      const res = await fetch(`${s.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'unavailable', checks: { redis: 'ok', dashboard: 'down' } });
    } finally {
      await s.close();
    }
  });
});

describe('routing and hardening', () => {
  it('unknown routes are JSON 404s; a served path with another method is a 405', async () => {
    for (const path of ['/', '/v2/payments', '/v1/refunds', '/admin']) {
      const res = await get(t, path, t.keyA);
      expect(res.status).toBe(404);
      expect(res.json).toEqual({ code: 'NOT_FOUND', message: expect.any(String) });
    }
    const put = await fetch(`${t.url}/v1/payments`, { method: 'PUT', headers: { authorization: `Bearer ${t.keyA}` } });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST');
  });

  it('hides the framework and sets helmet headers', async () => {
    const res = await fetch(`${t.url}/healthz`);
    expect(res.headers.get('x-powered-by')).toBeNull();
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('strict-transport-security')).toMatch(/max-age=/);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('echoes a sane X-Request-Id on errors too', async () => {
    const res = await get(t, '/nowhere', undefined, { 'x-request-id': 'trace-123' });
    expect(res.headers.get('x-request-id')).toBe('trace-123');
  });

  it('answers an unexpected failure with 500 INTERNAL and no internals', async () => {
    const original = t.store.create.bind(t.store);
    t.store.create = () => Promise.reject(new Error('ERR secret internal detail at lua:42'));
    try {
      const res = await postPayment(t, {});
      expect(res.status).toBe(500);
      expect(res.json).toEqual({ code: 'INTERNAL', message: 'Internal error' });
      expect(res.text).not.toContain('secret');
    } finally {
      t.store.create = original;
    }
  });
});
