/**
 * The operator pages against hostile clients: a read-only board that no write reaches, security
 * headers on every page, and failed logins limited per address and per user name, counted in
 * Redis so that every API process holds the same count.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from './app.ts';
import { listen, paymentBody, postPayment, startTestApp, type TestApp } from './test-support.ts';

const MAX = 3;
const WINDOW_MS = 60_000;
let t: TestApp;
/** A second API process over the same Redis prefix. */
let other: { url: string; close(): Promise<void> };
beforeAll(async () => {
  t = await startTestApp({ ADMIN_LOGIN_MAX_FAILURES: MAX, ADMIN_LOGIN_WINDOW_MS: WINDOW_MS, TRUST_PROXY: 'true' });
  const app = createApp({ config: t.config, store: t.store, queues: t.queues, waiters: t.waiters, logger: pino({ level: 'silent' }) });
  other = await listen(app, t.config);
});
afterAll(async () => {
  await other.close();
  await t.close();
});

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const RIGHT = basic('ops', 'ops-password-1');

async function admin(url: string, opts: { auth?: string; from: string; method?: string; path?: string }): Promise<Response> {
  const headers: Record<string, string> = { 'x-forwarded-for': opts.from };
  if (opts.auth) headers.authorization = opts.auth;
  return fetch(`${url}${opts.path ?? '/dashboard/data'}`, { method: opts.method ?? 'GET', headers });
}

describe('the queue board, read-only', () => {
  it('answers every write with a JSON 405 before bull-board sees it, and nothing is paused', async () => {
    const writes: [string, string][] = [
      ['PUT', '/admin/queues/api/queues/pause'],
      ['PUT', '/admin/queues/api/queues/confirm/pause'],
      ['PUT', '/admin/queues/api/queues/confirm/retry/failed'],
      ['POST', '/admin/queues/api/queues/confirm/add'],
      ['PATCH', '/admin/queues/api/queues/confirm/x/update-data'],
      ['DELETE', '/admin/queues/api/queues/confirm'],
    ];
    for (const [method, path] of writes) {
      const res = await admin(t.url, { auth: RIGHT, from: '10.9.0.1', method, path });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD');
      expect(await res.json()).toMatchObject({ code: 'METHOD_NOT_ALLOWED' });
    }
    expect(await t.queues.confirm.isPaused()).toBe(false);
    expect(await t.queues.resolve.isPaused()).toBe(false);
  });

  it('serves its pages with the security headers, and does not name its framework', async () => {
    for (const path of ['/admin/queues', '/admin/queues/api/queues', '/dashboard', '/dashboard/data', '/metrics']) {
      const res = await admin(t.url, { auth: RIGHT, from: '10.9.0.1', path });
      expect(res.status, path).toBe(200);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy'), path).toMatch(/frame-ancestors '(self|none)'/);
      expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(res.headers.get('x-powered-by')).toBeNull();
    }
  });

  it('lets writes through only when BULL_BOARD_READ_ONLY=false', async () => {
    const writable = await startTestApp({ BULL_BOARD_READ_ONLY: false });
    try {
      const res = await admin(writable.url, { auth: RIGHT, from: '10.9.0.1', method: 'PUT', path: '/admin/queues/api/queues/pause' });
      expect(res.status).toBe(200);
      expect(await writable.queues.confirm.isPaused()).toBe(true);
    } finally {
      await writable.close();
    }
  });
});

describe('failed operator logins', () => {
  it('a request without credentials is asked for them and counts nothing', async () => {
    for (let i = 0; i < MAX + 2; i++) expect((await admin(t.url, { from: '10.0.0.9' })).status).toBe(401);
    expect((await admin(t.url, { auth: RIGHT, from: '10.0.0.9' })).status).toBe(200);
  });

  it('per address: past the limit, any user name from that address waits (429, Retry-After); others do not', async () => {
    for (const user of ['a1', 'a2', 'a3']) expect((await admin(t.url, { auth: basic(user, 'wrong-password'), from: '10.0.0.2' })).status).toBe(401);
    const res = await admin(t.url, { auth: basic('a4', 'wrong-password'), from: '10.0.0.2' });
    expect(res.status).toBe(429);
    expect(await res.json()).toMatchObject({ code: 'TOO_MANY_ATTEMPTS' });
    const retryAfter = Number(res.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(WINDOW_MS / 1000);
    // Another address with another name is not held back.
    expect((await admin(t.url, { auth: basic('a4', 'wrong-password'), from: '10.0.0.3' })).status).toBe(401);
  });

  it('per user name: guesses from many addresses lock the name, the right password too, in every API process', async () => {
    for (const from of ['10.0.1.1', '10.0.1.2', '10.0.1.3']) {
      expect((await admin(t.url, { auth: basic('ops', 'guess'), from })).status).toBe(401);
    }
    for (const url of [t.url, other.url]) {
      const res = await admin(url, { auth: RIGHT, from: '10.0.1.4' });
      expect(res.status).toBe(429);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    // The count lives in Redis with the window as its lifetime.
    const keys = await t.redis.keys(`${t.prefix}:login:fail:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) {
      const ttl = await t.redis.pttl(k);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(WINDOW_MS);
    }
    // Payments are never answered 429, from that address or any.
    const pay = await postPayment(t, { body: paymentBody(), headers: { 'x-forwarded-for': '10.0.1.4' } });
    expect(pay.status).toBe(202);
  });
});
