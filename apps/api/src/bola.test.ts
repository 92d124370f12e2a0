/**
 * Object-level authorization, walked: every one of merchant B's payments, by id and by orderId
 * (and with a long poll), read with merchant A's key is a 404 that cannot be told apart from an
 * id or orderId that does not exist: same status, same body, same headers.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { get, paymentBody, postPayment, startTestApp, type Answer, type TestApp } from './test-support.ts';

const N = 25;
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

/** What a 404 shows a caller: status, body and headers, less the ones that differ per request. */
const shape = (a: Answer) => ({
  status: a.status,
  text: a.text,
  headers: [...a.headers.entries()].filter(([k]) => !['date', 'x-request-id', 'keep-alive', 'connection'].includes(k)),
});

it(`A reading each of B's ${N} payments gets exactly what an unknown one gets`, async () => {
  const bs: { id: string; orderId: string }[] = [];
  for (let i = 0; i < N; i++) {
    const res = await postPayment(t, { key: t.keyB, body: paymentBody({ metadata: { owner: 'b' } }) });
    expect(res.status).toBe(202);
    bs.push(res.json);
  }
  const unknownId = shape(await get(t, '/v1/payments/pay_000000000ffffffffffffffff', t.keyA));
  const unknownOrder = shape(await get(t, '/v1/payments?orderId=order-nobody-has-this', t.keyA));
  expect(unknownId.status).toBe(404);
  expect(JSON.parse(unknownId.text)).toEqual({ code: 'NOT_FOUND', message: expect.any(String) });
  expect(unknownOrder).toEqual(unknownId);

  for (const b of bs) {
    expect(shape(await get(t, `/v1/payments/${b.id}`, t.keyA))).toEqual(unknownId);
    expect(shape(await get(t, `/v1/payments?orderId=${b.orderId}`, t.keyA))).toEqual(unknownId);
    expect(shape(await get(t, `/v1/payments/${b.id}?wait=5`, t.keyA))).toEqual(unknownId);
    // B itself reads them: the 404s above were about who asked, not about the payments.
    const own = await get(t, `/v1/payments/${b.id}`, t.keyB);
    expect(own.status).toBe(200);
    expect(own.json.metadata).toEqual({ owner: 'b' });
  }
  expect(t.waiters.size).toBe(0);
});
