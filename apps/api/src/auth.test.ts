/** Who may call what: merchant keys, object-level authorization (BOLA), and the admin board. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, paymentBody, postPayment, startTestApp, type TestApp } from './test-support.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

const basic = (user: string, pass: string): Record<string, string> => ({
  authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`,
});

describe('merchant API keys', () => {
  it.each([
    ['no Authorization header', null],
    ['an unknown key', 'sk_not_a_real_key'],
    ['an empty key', ''],
  ])('%s → 401 UNAUTHORIZED, nothing written', async (_name, key) => {
    const open = await t.redis.zcard(t.store.keys.open);
    const res = await postPayment(t, { key });
    expect(res.status).toBe(401);
    expect(res.json).toEqual({ code: 'UNAUTHORIZED', message: expect.any(String) });
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(await t.redis.zcard(t.store.keys.open)).toBe(open);
  });

  it('a Basic header or another scheme is not a merchant key', async () => {
    const res = await postPayment(t, { key: null, headers: { authorization: `Basic ${Buffer.from(`x:${t.keyA}`).toString('base64')}` } });
    expect(res.status).toBe(401);
  });

  it('the scheme is case-insensitive', async () => {
    const res = await postPayment(t, { key: null, headers: { authorization: `bearer ${t.keyA}` } });
    expect(res.status).toBe(202);
  });

  it('reads need a key too', async () => {
    const res = await get(t, '/v1/payments/pay_whatever');
    expect(res.status).toBe(401);
    const res2 = await get(t, '/v1/payments?orderId=order-123', 'sk_wrong');
    expect(res2.status).toBe(401);
  });
});

describe('object-level authorization', () => {
  it("merchant A gets 404 for each of B's payments, exactly like an unknown id", async () => {
    const bs = [];
    for (let i = 0; i < 4; i++) {
      const res = await postPayment(t, { key: t.keyB, body: paymentBody() });
      expect(res.status).toBe(202);
      bs.push(res.json);
    }
    const unknown = await get(t, '/v1/payments/pay_000000000ffffffffffffffff', t.keyA);
    expect(unknown.status).toBe(404);
    for (const p of bs) {
      const asA = await get(t, `/v1/payments/${p.id}`, t.keyA);
      expect(asA.status).toBe(404);
      expect(asA.json).toEqual(unknown.json);
      expect(asA.text).not.toContain(p.orderId);
      const byOrder = await get(t, `/v1/payments?orderId=${p.orderId}`, t.keyA);
      expect(byOrder.status).toBe(404);
      expect(byOrder.json).toEqual(unknown.json);
      // B itself sees them.
      const asB = await get(t, `/v1/payments/${p.id}`, t.keyB);
      expect(asB.status).toBe(200);
      expect(asB.json.id).toBe(p.id);
    }
  });

  it('never exposes internal fields', async () => {
    const res = await postPayment(t, {});
    const got = await get(t, `/v1/payments/${res.json.id}`, t.keyA);
    for (const k of ['merchantId', 'phase', 'pgCalls', 'answeredInquiries', 'reconfirms', 'requestId', 'inDoubtAt']) {
      expect(got.json).not.toHaveProperty(k);
      expect(res.json).not.toHaveProperty(k);
    }
  });

  it('orderId lookups validate the query: missing or bad → 400', async () => {
    // Without orderId it is the list, from the books, which this app has none of.
    expect((await get(t, '/v1/payments', t.keyA)).json).toMatchObject({ code: 'BOOKS_UNAVAILABLE' });
    expect((await get(t, '/v1/payments?orderId=a', t.keyA)).status).toBe(400);
    expect((await get(t, '/v1/payments?orderId=order-1&orderId=order-2', t.keyA)).status).toBe(400);
    expect((await get(t, '/v1/payments?orderId=no-such-order', t.keyA)).status).toBe(404);
  });
});

describe('admin board', () => {
  it('asks for credentials: 401 with WWW-Authenticate', async () => {
    const res = await get(t, '/admin/queues');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    expect(res.json).toMatchObject({ code: 'UNAUTHORIZED' });
  });

  it.each([
    ['wrong password', 'ops', 'nope-nope-nope'],
    ['wrong user', 'root', 'ops-password-1'],
    ['password as a prefix', 'ops', 'ops-password-'],
  ])('%s → 401', async (_n, user, pass) => {
    expect((await get(t, '/admin/queues', undefined, basic(user, pass))).status).toBe(401);
    expect((await get(t, '/admin/queues/api/queues', undefined, basic(user, pass))).status).toBe(401);
  });

  it('a merchant key does not open it', async () => {
    expect((await get(t, '/admin/queues', t.keyA)).status).toBe(401);
  });

  it('serves the board with the right credentials, read-only over the three queues', async () => {
    const page = await get(t, '/admin/queues', undefined, basic('ops', 'ops-password-1'));
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.text).toContain('<base href="/admin/queues/"');
    const api = await get(t, '/admin/queues/api/queues', undefined, basic('ops', 'ops-password-1'));
    expect(api.status).toBe(200);
    const queues = api.json.queues as { name: string; readOnlyMode: boolean }[];
    expect(queues.map((q) => q.name).sort()).toEqual(['confirm', 'maintenance', 'resolve']);
    expect(queues.every((q) => q.readOnlyMode)).toBe(true);
  });
});

describe('admin board configuration', () => {
  it('is absent (404, like any unknown path) without ADMIN_USER/ADMIN_PASSWORD', async () => {
    const t2 = await startTestApp({ ADMIN_USER: null, ADMIN_PASSWORD: null });
    try {
      for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
        const res = await get(t2, path, undefined, basic('ops', 'ops-password-1'));
        expect(res.status).toBe(404);
        expect(res.json).toMatchObject({ code: 'NOT_FOUND' });
        expect(res.headers.get('www-authenticate')).toBeNull();
      }
    } finally {
      await t2.close();
    }
  });

  it('allows actions only with BULL_BOARD_READ_ONLY=false', async () => {
    const t2 = await startTestApp({ BULL_BOARD_READ_ONLY: 'false' });
    try {
      const api = await get(t2, '/admin/queues/api/queues', undefined, basic('ops', 'ops-password-1'));
      expect(api.status).toBe(200);
      expect((api.json.queues as { readOnlyMode: boolean }[]).every((q) => q.readOnlyMode === false)).toBe(true);
    } finally {
      await t2.close();
    }
  });
});
