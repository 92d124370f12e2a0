import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from './index.ts';
import { call, confirm } from './test-client.ts';

interface Row {
  transactionKey: string;
  paymentKey: string;
  orderId: string;
  status: string;
  amount: number;
  transactionAt: string;
}

describe('GET /v1/transactions', () => {
  let sim: RunningSimulator;
  let from: string;
  let to: string;
  beforeAll(async () => {
    sim = await startSimulator({ latencyMedianMs: 0 });
    from = new Date(Date.now() - 60_000).toISOString();
    for (let i = 0; i < 24; i++) expect((await confirm(sim.url, `pk_t_${i}`, { amount: 100 + i })).status).toBe(200);
    await confirm(sim.url, 'sim_decline_t'); // a decline leaves no row
    await call(sim.url, 'POST', '/v1/payments/pk_t_3/cancel', { body: { cancelReason: 'r' } });
    to = new Date(Date.now() + 60_000).toISOString().replace('Z', '+00:00');
  });
  afterAll(() => sim.close());

  const page = async (query: string): Promise<Row[]> => {
    const res = await call(sim.url, 'GET', `/v1/transactions?${query}`);
    expect(res.status).toBe(200);
    return res.json() as unknown as Row[];
  };

  it('pages with startingAfter through every row, in (transactionAt, transactionKey) order', async () => {
    const range = `startDate=${encodeURIComponent(from)}&endDate=${encodeURIComponent(to)}`;
    const all: Row[] = [];
    const sizes: number[] = [];
    let after = '';
    for (;;) {
      const rows = await page(`${range}&limit=10${after === '' ? '' : `&startingAfter=${after}`}`);
      if (rows.length === 0) break;
      sizes.push(rows.length);
      all.push(...rows);
      after = rows[rows.length - 1]?.transactionKey ?? '';
    }
    expect(sizes).toEqual([10, 10, 5]);
    expect(new Set(all.map((row) => row.transactionKey)).size).toBe(25);
    expect(all.filter((row) => row.status === 'CANCELED').map((row) => row.paymentKey)).toEqual(['pk_t_3']);
    expect(all.some((row) => row.paymentKey === 'sim_decline_t')).toBe(false);
    const sorted = [...all].sort((a, b) => Date.parse(a.transactionAt) - Date.parse(b.transactionAt) || a.transactionKey.localeCompare(b.transactionKey));
    expect(all).toEqual(sorted);
    expect(Object.keys(all[0] ?? {}).sort()).toEqual(['amount', 'orderId', 'paymentKey', 'status', 'transactionAt', 'transactionKey']);
  });

  it('treats both dates as inclusive', async () => {
    const first = sim.state.ledger.transactions[0];
    const last = sim.state.ledger.transactions.at(-1);
    if (first === undefined || last === undefined) throw new Error('no rows');
    const exact = await page(`startDate=${encodeURIComponent(first.transactionAt)}&endDate=${encodeURIComponent(last.transactionAt)}&limit=10000`);
    expect(exact).toHaveLength(25);
    const single = await page(`startDate=${encodeURIComponent(first.transactionAt)}&endDate=${encodeURIComponent(first.transactionAt)}`);
    expect(single.map((row) => row.transactionKey)).toContain(first.transactionKey);
    expect(await page(`startDate=2000-01-01T00:00:00%2B09:00&endDate=2000-01-02T00:00:00%2B09:00`)).toEqual([]);
  });

  it.each([
    ['missing dates', ''],
    ['a date without an offset', 'startDate=2024-01-01T00:00:00&endDate=2024-01-02T00:00:00Z'],
    ['a limit over 10000', 'startDate=2024-01-01T00:00:00Z&endDate=2024-01-02T00:00:00Z&limit=10001'],
  ])('answers 400 INVALID_REQUEST for %s', async (_name, query) => {
    const res = await call(sim.url, 'GET', `/v1/transactions?${query}`);
    expect([res.status, res.json().code]).toEqual([400, 'INVALID_REQUEST']);
  });
});
