import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from './index.ts';
import { call, confirm, connectionError, sleep, waitFor } from './test-client.ts';

describe('faults', () => {
  let sim: RunningSimulator | null = null;
  const start = async (opts: Parameters<typeof startSimulator>[0]): Promise<RunningSimulator> => {
    sim = await startSimulator(opts);
    return sim;
  };
  afterEach(async () => {
    await sim?.close();
    sim = null;
  });

  it('late: the charge commits on time, the answer comes lateMs later', async () => {
    const s = await start({ latencyMedianMs: 0, lateMs: 3_000 });
    const began = performance.now();
    let answeredAt = 0;
    const pending = confirm(s.url, 'sim_late_1', { idempotencyKey: 'k-late' }).then((res) => {
      answeredAt = performance.now();
      return res;
    });
    await waitFor(() => s.state.ledger.byPaymentKey('sim_late_1')?.status === 'DONE', 2_500);
    expect(answeredAt).toBe(0);
    expect(s.state.ledgerView().payments['sim_late_1']?.chargeCount).toBe(1);
    // The key is settled at commit: a retry during the lateness gets the stored 200.
    const retry = await confirm(s.url, 'sim_late_1', { idempotencyKey: 'k-late' });
    expect([retry.status, retry.headers['idempotent-replayed']]).toEqual([200, 'true']);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(answeredAt - began).toBeGreaterThanOrEqual(2_980);
    expect(s.state.ledgerView().payments['sim_late_1']?.chargeCount).toBe(1);
  });

  it('drop: the charge commits and the connection dies without an answer', async () => {
    const s = await start({ latencyMedianMs: 0 });
    const error = await connectionError(confirm(s.url, 'pk_drop_1', { idempotencyKey: 'k-drop', headers: { 'x-sim-scenario': 'drop' } }));
    expect(error).toBe('ECONNRESET');
    expect(s.state.ledgerView().payments['pk_drop_1']).toMatchObject({ status: 'DONE', chargeCount: 1 });
    const arrivals = (await call(s.url, 'GET', '/__sim/arrivals')).json()['arrivals'] as unknown[][];
    expect(arrivals[0]?.[2]).toBe(-1);
    const retry = await confirm(s.url, 'pk_drop_1', { idempotencyKey: 'k-drop' });
    expect(retry.status).toBe(200);
    expect(s.state.ledgerView().payments['pk_drop_1']?.chargeCount).toBe(1);
  });

  it('unread: the PG holds nothing (inquiry 404, cancel NOT_FOUND) until it reads the confirm, then charges', async () => {
    const s = await start({ latencyMedianMs: 0, unreadMs: 1_500 });
    const pending = confirm(s.url, 'sim_unread_1', { idempotencyKey: 'k-unread' });
    await sleep(300);
    expect((await call(s.url, 'GET', '/v1/payments/sim_unread_1')).json().code).toBe('NOT_FOUND_PAYMENT');
    const cancel = await call(s.url, 'POST', '/v1/payments/sim_unread_1/cancel', { body: { cancelReason: 'r' }, idempotencyKey: 'k-unread-c' });
    expect(cancel.json()).toMatchObject({ status: 'NOT_FOUND' });
    expect(s.state.ledgerView().payments['sim_unread_1']).toBeUndefined();
    expect((await pending).json().status).toBe('DONE');
    expect(s.state.ledgerView().payments['sim_unread_1']).toMatchObject({ status: 'DONE', chargeCount: 1 });
  });

  it('long: the payment stays IN_PROGRESS, visible to inquiries, until the approval commits', async () => {
    const s = await start({ latencyMedianMs: 0, longApprovalMinMs: 3_000, longApprovalMaxMs: 3_000 });
    const pending = confirm(s.url, 'sim_long_1');
    await waitFor(() => s.state.ledger.byPaymentKey('sim_long_1') !== undefined);
    expect((await call(s.url, 'GET', '/v1/payments/sim_long_1')).json().status).toBe('IN_PROGRESS');
    expect((await pending).json().status).toBe('DONE');
    expect((await call(s.url, 'GET', '/v1/payments/sim_long_1')).json().status).toBe('DONE');
  });

  it('changes knobs at runtime through /__sim/config and validates them', async () => {
    const s = await start({ latencyMedianMs: 0 });
    const set = await call(s.url, 'POST', '/__sim/config', { body: { declineRate: 1 }, secretKey: false });
    expect(set.status).toBe(200);
    expect(set.json()).toMatchObject({ declineRate: 1, lateMs: 12_000, rateLimit: 500, outage: 'none' });
    expect((await confirm(s.url, 'pk_knob_1')).status).toBe(403);
    expect((await call(s.url, 'GET', '/__sim/config')).json()['declineRate']).toBe(1);

    const bad = await call(s.url, 'POST', '/__sim/config', { body: { declineRate: 2 } });
    expect(bad.status).toBe(400);
    const unknown = await call(s.url, 'POST', '/__sim/config', { body: { nope: 1 } });
    expect(unknown.status).toBe(400);
    expect(s.state.knobs.declineRate).toBe(1);

    await call(s.url, 'POST', '/__sim/config', { body: { declineRate: 0 } });
    expect((await confirm(s.url, 'pk_knob_2')).status).toBe(200);
    expect(s.state.stats().requests).toBe(2);
  });

  it('outage refuse: connections are refused, then served again on the same port', async () => {
    const s = await start({ latencyMedianMs: 0 });
    expect((await confirm(s.url, 'pk_out_1')).status).toBe(200);
    const set = await call(s.url, 'POST', '/__sim/config', { body: { outage: 'refuse' } });
    expect(set.json()['outage']).toBe('refuse');
    expect(await connectionError(call(s.url, 'GET', '/v1/payments/pk_out_1'))).toBe('ECONNREFUSED');

    s.state.setKnobs({ outage: 'none' });
    let res = await connectionError(call(s.url, 'GET', '/v1/payments/pk_out_1'));
    for (let i = 0; res !== 'ANSWERED' && i < 20; i++) {
      await sleep(25);
      res = await connectionError(call(s.url, 'GET', '/v1/payments/pk_out_1'));
    }
    expect(res).toBe('ANSWERED');
    expect((await call(s.url, 'GET', '/v1/payments/pk_out_1')).json().status).toBe('DONE');
  });

  it('outage refuse with outageMs ends by itself; an admin port stays reachable throughout', async () => {
    const s = await start({ latencyMedianMs: 0, adminPort: 0 });
    if (s.adminUrl === null) throw new Error('no admin url');
    await call(s.adminUrl, 'POST', '/__sim/config', { body: { outage: 'refuse', outageMs: 2_000 } });
    expect(await connectionError(call(s.url, 'GET', '/v1/payments/x'))).toBe('ECONNREFUSED');
    expect((await call(s.adminUrl, 'GET', '/__sim/config')).json()['outage']).toBe('refuse');
    await waitFor(() => s.state.knobs.outage === 'none', 5_000);
    await sleep(50);
    expect((await call(s.url, 'GET', '/v1/payments/x')).status).toBe(404);
  });

  it('outage hang: requests are read and counted but never answered, then their sockets are destroyed', async () => {
    const s = await start({ latencyMedianMs: 0 });
    await call(s.url, 'POST', '/__sim/config', { body: { outage: 'hang' } });
    let settled = false;
    const hung = connectionError(confirm(s.url, 'pk_hang_1')).then((code) => {
      settled = true;
      return code;
    });
    await waitFor(() => s.state.stats().requests === 1);
    await sleep(100);
    expect(settled).toBe(false);
    expect(s.state.ledger.payments.size).toBe(0);
    await call(s.url, 'POST', '/__sim/config', { body: { outage: 'none' } });
    expect(await hung).toBe('ECONNRESET');
    const arrivals = (await call(s.url, 'GET', '/__sim/arrivals')).json()['arrivals'] as unknown[][];
    expect(arrivals).toEqual([[expect.any(Number), 'c', -1]]);
    expect((await confirm(s.url, 'pk_hang_2')).status).toBe(200);
  });

  it('reset clears ledger, idempotency keys, arrivals and counters', async () => {
    const s = await start({ latencyMedianMs: 0 });
    await confirm(s.url, 'pk_reset', { idempotencyKey: 'k-reset' });
    expect((await call(s.url, 'POST', '/__sim/reset')).status).toBe(200);
    expect(s.state.stats()).toMatchObject({ requests: 0, maxInWindow: 0, status429: 0 });
    expect((await call(s.url, 'GET', '/__sim/ledger')).json()).toEqual({ payments: {} });
    const again = await confirm(s.url, 'pk_reset', { idempotencyKey: 'k-reset' });
    expect([again.status, again.headers['idempotent-replayed']]).toEqual([200, undefined]);
  });
});
