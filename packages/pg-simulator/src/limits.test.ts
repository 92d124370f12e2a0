import { Agent } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { maxInRollingWindow, startSimulator, type RunningSimulator } from './index.ts';
import { call, confirm, waitFor } from './test-client.ts';

describe('contract limits', () => {
  let sim: RunningSimulator | null = null;
  const agents: Agent[] = [];
  const start = async (opts: Parameters<typeof startSimulator>[0]): Promise<RunningSimulator> => {
    sim = await startSimulator(opts);
    return sim;
  };
  afterEach(async () => {
    for (const agent of agents.splice(0)) agent.destroy();
    await sim?.close();
    sim = null;
  });

  it('answers 429 past 500 requests in a rolling second, counting the 429s themselves', async () => {
    // The contract's 500 per rolling window, over a 10 s window: the same counting, and a burst
    // of 600 fits in one window even on a machine slowed tenfold ("exactly 100" needs that).
    const s = await start({ latencyMedianMs: 0 });
    s.state.setKnobs({ windowMs: 10_000 });
    const agent = new Agent({ keepAlive: true, maxSockets: 100 });
    agents.push(agent);
    const began = performance.now();
    const answers = await Promise.all(Array.from({ length: 600 }, (_, i) => call(s.url, 'GET', `/v1/payments/pk_rate_${i}`, { agent })));
    const elapsed = performance.now() - began;
    expect(elapsed).toBeLessThan(10_000);
    expect(answers.filter((res) => res.status === 429)).toHaveLength(100);
    expect(answers.filter((res) => res.status === 404)).toHaveLength(500);
    expect(answers.find((res) => res.status === 429)?.json().code).toBe('TOO_MANY_REQUESTS');

    const stats = s.state.stats();
    expect(stats).toMatchObject({ requests: 600, status429: 100, maxInWindow: 600 });
    expect(stats.byEndpoint.inquire).toBe(600);
    expect(stats.peakConnections).toBeLessThanOrEqual(100);

    const body = await call(s.url, 'GET', '/__sim/arrivals?since=0', { agent });
    const arrivals = body.json()['arrivals'] as [number, string, number][];
    expect(arrivals).toHaveLength(600);
    expect(maxInRollingWindow(arrivals.map(([t]) => t), 10_000)).toBe(600);
    // The first 500 arrivals of the window were served, every later one refused.
    expect(arrivals.slice(0, 500).every(([, code, status]) => code === 'i' && status === 404)).toBe(true);
    expect(arrivals.slice(500).every(([, , status]) => status === 429)).toBe(true);
    // /__sim/* never counts.
    expect(s.state.stats().requests).toBe(600);
  });

  it('answers 503 TOO_MANY_CONNECTIONS on a connection past maxConnections and closes it', async () => {
    const s = await start({ latencyMedianMs: 0, maxConnections: 3 });
    const own = Array.from({ length: 4 }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
    agents.push(...own);
    for (const agent of own.slice(0, 3)) expect((await call(s.url, 'GET', '/v1/payments/pk_c', { agent })).status).toBe(404);
    expect(s.state.openConnections).toBe(3);
    const refused = await call(s.url, 'GET', '/v1/payments/pk_c', { agent: own[3] });
    expect([refused.status, refused.json().code, refused.headers['connection']]).toEqual([503, 'TOO_MANY_CONNECTIONS', 'close']);
    await waitFor(() => s.state.openConnections === 3);
    // The first three connections are still served.
    expect((await call(s.url, 'GET', '/v1/payments/pk_c', { agent: own[0] })).status).toBe(404);
    expect(s.state.stats()).toMatchObject({ status503: 1, peakConnections: 4, requests: 5 });
  });

  it('frees a connection the client closes at once, while the request it carried runs to its end', async () => {
    // Contract: a connection counts until either side closes it; the request read on it is
    // processed and recorded as usual, only its answer is lost.
    const s = await start({ latencyMedianMs: 600, latencyP99Ms: 600, maxConnections: 1 });
    const socket = connect(s.port, '127.0.0.1');
    const body = JSON.stringify({ paymentKey: 'pk_gone', orderId: 'order_gone', amount: 1_000 });
    socket.write(
      `POST /v1/payments/confirm HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from('test_sk_sluice_demo:').toString('base64')}\r\n` +
        `Content-Type: application/json\r\nIdempotency-Key: k-gone\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    await waitFor(() => s.state.ledger.byPaymentKey('pk_gone')?.status === 'IN_PROGRESS');
    expect(s.state.openConnections).toBe(1);
    socket.destroy();
    await waitFor(() => s.state.openConnections === 0);
    // The place is free while the approval still runs: a new connection is served, not 503.
    expect(s.state.ledger.byPaymentKey('pk_gone')?.status).toBe('IN_PROGRESS');
    expect((await call(s.url, 'GET', '/v1/payments/pk_gone')).json().status).toBe('IN_PROGRESS');
    await waitFor(() => s.state.ledger.byPaymentKey('pk_gone')?.status === 'DONE');
    expect(s.state.stats().status503).toBe(0);
    expect(s.state.ledgerView().payments['pk_gone']).toMatchObject({ chargeCount: 1 });
  });

  it('answers 413 PAYLOAD_TOO_LARGE past 16 KiB and processes a body right at the limit', async () => {
    const s = await start({ latencyMedianMs: 0 });
    const base = { paymentKey: 'pk_big', orderId: 'order_big', amount: 100 };
    const sized = (bytes: number): string => {
      const empty = JSON.stringify({ ...base, pad: '' });
      return JSON.stringify({ ...base, pad: 'x'.repeat(bytes - empty.length) });
    };
    const tooBig = await call(s.url, 'POST', '/v1/payments/confirm', { body: sized(16_385), idempotencyKey: 'k-big' });
    expect([tooBig.status, tooBig.json().code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    expect(s.state.ledger.payments.size).toBe(0);
    // 413 is not stored: the same key is processed afresh.
    const atLimit = await call(s.url, 'POST', '/v1/payments/confirm', { body: sized(16_384), idempotencyKey: 'k-big' });
    expect(atLimit.status).toBe(200);
  });

  it('sends Keep-Alive: timeout=4 and closes a connection idle past keepAliveMs', async () => {
    const s = await start({ latencyMedianMs: 0 });
    const res = await confirm(s.url, 'pk_ka');
    expect(res.headers['keep-alive']).toBe('timeout=4');

    // 2 s, not less: a stall of the process between the answer and the client's 'data' event
    // shortens the idle time it measures, by as much as the stall.
    s.state.setKnobs({ keepAliveMs: 2_000 });
    const socket = connect(s.port, '127.0.0.1');
    const closedAfter = new Promise<number>((resolve) => {
      let answeredAt = 0;
      socket.on('data', () => (answeredAt = performance.now()));
      socket.on('close', () => resolve(performance.now() - answeredAt));
    });
    socket.write(`GET /v1/payments/pk_ka HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from('test_sk_sluice_demo:').toString('base64')}\r\n\r\n`);
    const idle = await closedAfter;
    expect(idle).toBeGreaterThanOrEqual(1_500);
    // Node alone would wait keepAliveMs + 1 s; the contract closes right at keepAliveMs.
    expect(idle).toBeLessThan(2_800);
  });
});
