/** The precomputed security headers are exactly helmet's, on every route of the app. */
import express from 'express';
import helmet from 'helmet';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { recordHelmet } from './security-headers.ts';
import { get, listen, postPayment, startTestApp, type TestApp } from './test-support.ts';

let t: TestApp;
let reference: Map<string, string>;
beforeAll(async () => {
  t = await startTestApp();
  // What helmet() itself sets on a real response.
  const app = express();
  app.use(helmet());
  app.get('/', (_req, res) => {
    res.end();
  });
  const s = await listen(app);
  const res = await fetch(`${s.url}/`);
  await s.close();
  const recorded = new Set(recordHelmet().set.map(([k]) => k.toLowerCase()));
  reference = new Map([...res.headers.entries()].filter(([k]) => recorded.has(k)));
});
afterAll(async () => {
  await t.close();
});

it('records every header helmet sets, with its value', () => {
  expect(reference.size).toBeGreaterThanOrEqual(10);
  expect(reference.get('content-security-policy')).toMatch(/default-src 'self'/);
  expect(reference.get('strict-transport-security')).toMatch(/max-age=/);
  expect(recordHelmet().removed.map((h) => h.toLowerCase())).toEqual(['x-powered-by']);
});

it('sends them on the intake, reads, probes, errors and unknown routes', async () => {
  const answers = [
    await postPayment(t, {}),
    await postPayment(t, { key: null }),
    await get(t, '/healthz'),
    await get(t, '/v1/payments/pay_nope', t.keyA),
    await get(t, '/nowhere'),
    await get(t, '/openapi.json'),
  ];
  for (const a of answers) {
    for (const [name, value] of reference) expect([name, a.headers.get(name)]).toEqual([name, value]);
    expect(a.headers.get('x-powered-by')).toBeNull();
  }
});
