/**
 * API_PROCESSES=2: two intake processes behind one port (node:cluster). Payments sent over fresh
 * connections all end APPROVED as the PG holds them; `/metrics` shows the intake counts of both
 * forks summed, whichever fork answers the scrape; a fork killed -9 is replaced and the other
 * answers meanwhile (its share of the counts leaves with it: proof that it had served some); and
 * SIGTERM to the primary stops every fork, exit code 0.
 */
import { request } from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProcess } from '@sluice/test-support';
import { ADMIN, DEMO_KEY, drain, readPayments, startStack, type Stack } from './support/stack.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { API_PROCESSES: '2' } });
});
afterAll(async () => {
  await stack?.stop();
});

/** The pids of the forks that said they listen (pino lines), in order. */
function forkPids(): number[] {
  const pids: number[] = [];
  for (const line of stack.api.output().split('\n')) {
    if (!line.includes('sluice api listening')) continue;
    const pid = (JSON.parse(line) as { pid: number }).pid;
    if (!pids.includes(pid)) pids.push(pid);
  }
  return pids;
}

/** One request on a connection of its own (no keep-alive pool), so that node:cluster may hand it to either fork. */
function send(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string }> {
  const url = new URL(path, stack.apiUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    // A connection handed to the fork just killed may never be answered: give up, as a merchant would.
    req.setTimeout(5_000, () => req.destroy(new Error('no answer in 5 s')));
    req.end(body);
  });
}

async function pay(n: number): Promise<string> {
  const body = JSON.stringify({ paymentKey: `pk_procs_${randomUUID()}`, orderId: `order-procs-${n}-${randomUUID().slice(0, 8)}`, amount: 1_000 });
  const idem = randomUUID();
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await send('POST', '/v1/payments', { authorization: `Bearer ${DEMO_KEY}`, 'idempotency-key': idem, 'content-type': 'application/json' }, body);
      expect(res.status).toBe(202);
      return (JSON.parse(res.text) as { id: string }).id;
    } catch (err) {
      // A connection handed to the killed fork: the merchant retries with the same key.
      if (attempt >= 4) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function acceptedCount(): Promise<number> {
  const auth = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`;
  const res = await send('GET', '/metrics', { authorization: auth });
  expect(res.status).toBe(200);
  const m = /^sluice_intake_requests_total\{outcome="accepted"\} (\d+)$/m.exec(res.text);
  return m ? Number(m[1]) : 0;
}

describe('API_PROCESSES=2', () => {
  it('serves intake from both forks on one port, sums their counts, replaces a dead one, and stops cleanly', async () => {
    await expect.poll(() => forkPids().length, { timeout: 20_000 }).toBe(2);
    const ids = await Promise.all(Array.from({ length: 200 }, (_, i) => pay(i)));
    expect(new Set(ids).size).toBe(200);
    await drain(stack.redis, stack.prefix, 60_000);
    const recs = await readPayments(stack.redis, stack.prefix, ids);
    expect([...recs.values()].filter((r) => r.status === 'APPROVED')).toHaveLength(200);

    // Whichever fork answers the scrape, the count is both forks' together.
    for (let i = 0; i < 6; i++) expect(await acceptedCount()).toBe(200);

    // One fork killed -9: the other answers, and the primary forks a third.
    const [first] = forkPids();
    process.kill(first!, 'SIGKILL');
    const more = await Promise.all(Array.from({ length: 40 }, (_, i) => pay(1_000 + i)));
    expect(more).toHaveLength(40);
    await expect.poll(() => forkPids().length, { timeout: 20_000 }).toBe(3);
    await drain(stack.redis, stack.prefix, 60_000);
    // The dead fork's counts left with it: it had taken part of the first 200.
    const after = await acceptedCount();
    expect(after).toBeLessThan(240);
    expect(after).toBeGreaterThanOrEqual(40);

    // SIGTERM to the whole group at once, as a terminal's Ctrl-C or systemd's stop delivers it: each
    // fork gets it twice (the group's and the primary's), which is one stop, not an operator's second.
    for (const pid of forkPids().slice(1)) process.kill(pid, 'SIGTERM');
    const code = await stack.api.stop('SIGTERM');
    expect(code).toBe(0);
    expect(stack.api.output()).not.toContain('second signal');
    for (const pid of forkPids()) expect(() => process.kill(pid, 0)).toThrow();
  });

  it('gives up when its forks keep failing at start-up (a bad setting), exit code 1', async () => {
    const { API_KEY_PEPPER: _, ...env } = stack.env;
    // No API_KEY_PEPPER: the configuration loads, and each fork fails as it builds the app.
    const api = startProcess('apps/api/src/main.ts', { ...env, API_PROCESSES: '2' });
    const code = await new Promise<number | null>((resolve) => api.child.once('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(api.output()).toContain('keep failing at start-up');
  });
});
