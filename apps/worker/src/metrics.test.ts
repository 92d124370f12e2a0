/** The worker's metrics: what the PG client's observer feeds in, and the endpoint that serves it. */
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { CallReport } from '@sluice/pg-client';
import { livePgClientFigures } from '@sluice/store';
import { exposeWorkerMetrics, serveMetrics, WorkerMetrics } from './metrics.ts';
import { emptyStats } from './sender/pg-port.ts';
import { startHarness } from './test-harness.ts';

const line = (text: string, series: string) => text.split('\n').find((l) => l.startsWith(`${series} `))?.slice(series.length + 1);

describe('WorkerMetrics', () => {
  it('records gate waits, PG latency, connection holds, read timeouts, 429s and 503s, the margin and unused slots', async () => {
    const m = new WorkerMetrics();
    const stats = { ...emptyStats(), tooLate: 2, marginMs: 12, inFlight: 7, unusedSlots: 3 };
    stats.readTimeouts = { ...stats.readTimeouts, confirm: { timeoutMs: 2_400, typicalMs: 340, p75Ms: 800 } };
    m.bind(() => stats, () => 42);

    const report = (r: Partial<CallReport>): CallReport => ({
      call: 'confirm', transport: 'answered', httpStatus: 200, outcome: 'approved', pgFailed: false,
      latencyMs: 150, sentAtMs: 1, gateWaitMs: 1, holdMs: 160, timeoutMs: 2_400, paymentId: null, idempotencyKey: null, ...r,
    });
    m.onCall(report({ gateWaitMs: 30 }));
    m.onCall(report({ httpStatus: 429, outcome: 'not_sent', latencyMs: 20, gateWaitMs: 2_000 }));
    m.onCall(report({ call: 'inquire', gateWaitMs: 1, latencyMs: 5, holdMs: 6 }));
    m.onCall(report({ call: 'cancel', httpStatus: 503, outcome: 'not_sent', pgFailed: true, latencyMs: 5 }));
    // Never left the process: no PG latency to report.
    m.onCall(report({ transport: 'not_sent', httpStatus: null, outcome: 'not_sent', pgFailed: true, latencyMs: 0 }));
    // Read timeouts: one at the adaptive value, one at the upper bound.
    m.onCall(report({ transport: 'no_answer', httpStatus: null, outcome: 'in_doubt', latencyMs: 2_401, holdMs: 2_402 }));
    m.onCall(report({ transport: 'no_answer', httpStatus: null, outcome: 'in_doubt', pgFailed: true, latencyMs: 10_000, timeoutMs: 10_000, holdMs: 10_001 }));

    let text = await m.registry.metrics();
    expect(line(text, 'sluice_gate_wait_seconds_count{call="confirm"}')).toBe('5');
    expect(line(text, 'sluice_gate_wait_seconds_bucket{le="0.05",call="confirm"}')).toBe('4');
    expect(line(text, 'sluice_gate_wait_seconds_count{call="inquire"}')).toBe('1');
    expect(line(text, 'sluice_pg_call_duration_seconds_count{endpoint="confirm"}')).toBe('4');
    expect(line(text, 'sluice_pg_call_duration_seconds_bucket{le="0.15",endpoint="confirm"}')).toBe('2');
    expect(line(text, 'sluice_pg_connection_hold_seconds_bucket{le="0.01",call="inquire"}')).toBe('1');
    expect(line(text, 'sluice_pg_connection_hold_seconds_bucket{le="3",call="confirm"}')).toBe('4');
    expect(line(text, 'sluice_pg_read_timeouts_total{call="confirm",at_max="false"}')).toBe('1');
    expect(line(text, 'sluice_pg_read_timeouts_total{call="confirm",at_max="true"}')).toBe('1');
    expect(line(text, 'sluice_pg_read_timeout_seconds{call="confirm"}')).toBe('2.4');
    expect(line(text, 'sluice_pg_latency_observed_seconds{call="confirm",quantile="0.75"}')).toBe('0.8');
    expect(line(text, 'sluice_gate_slots_unused_total')).toBe('3');
    expect(line(text, 'sluice_worker_pg_refused_total{status="429"}')).toBe('1');
    expect(line(text, 'sluice_worker_pg_refused_total{status="503"}')).toBe('1');
    expect(line(text, 'sluice_gate_margin_seconds')).toBe('0.012');
    expect(line(text, 'sluice_gate_permits_too_late_total')).toBe('2');
    expect(line(text, 'sluice_pg_connections_in_use')).toBe('7');
    expect(line(text, 'sluice_worker_first_sends')).toBe('42');
    expect(text).toContain('\nprocess_resident_memory_bytes ');

    // The too-late counter follows the gate's running count, without double counting.
    stats.tooLate = 5;
    text = await m.registry.metrics();
    expect(line(text, 'sluice_gate_permits_too_late_total')).toBe('5');
  });

  it('serves /metrics on its port (a lone process: no cluster primary to aggregate)', async () => {
    const m = new WorkerMetrics();
    // WORKER_METRICS_PORT=0 is "off": nothing listens.
    expect(await exposeWorkerMetrics(m, 0, '127.0.0.1')).toBeNull();
    const s = await serveMetrics(0, '127.0.0.1', async () => ({ body: await m.registry.metrics(), contentType: m.registry.contentType }));
    try {
      const { port } = s.address() as { port: number };
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await res.text()).toContain('# TYPE sluice_gate_wait_seconds histogram');
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    } finally {
      s.close();
    }
  });

  it('a running worker feeds them from its PG calls, and counts 429s and 503s in Redis for the alerts', async () => {
    const h = await startHarness({ latencyMedianMs: 100, latencyP99Ms: 150 });
    // The PG's one connection held by the test (re-opened should the PG close it): every
    // connection the worker opens meanwhile is answered 503, however loaded this machine is.
    const { port } = new URL(h.sim.url);
    const held: { socket: Socket | null } = { socket: null };
    const hold = () => {
      if (!held.socket || held.socket.destroyed) held.socket = connect(Number(port), '127.0.0.1').on('error', () => undefined);
    };
    try {
      // A PG that refuses: one request a second, one connection at a time.
      h.sim.state.setKnobs({ rateLimit: 1, maxConnections: 1 });
      hold();
      await new Promise((r) => setTimeout(r, 100));
      const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => h.pay(`pk_m_${i}`)));
      // The refusals stay on until both kinds have gone out: 503s while the test holds the
      // connection, then 429s past the one request a second.
      await expect.poll(() => (hold(), h.sim.state.status503 > 0), { timeout: 40_000, interval: 20 }).toBe(true);
      held.socket?.destroy();
      await expect.poll(() => h.sim.state.status429 > 0, { timeout: 40_000, interval: 20 }).toBe(true);
      h.sim.state.setKnobs({ rateLimit: 500, maxConnections: 200 });
      const recs = await h.settle(ids);
      expect(recs.map((r) => r.status)).toEqual(Array(12).fill('APPROVED'));

      const { status429, status503 } = h.sim.state;
      expect(status429).toBeGreaterThan(0);
      expect(status503).toBeGreaterThan(0);
      // Cluster-wide (what the API's /metrics and the alerts read) and per process, both exact.
      const counters = await h.worker.redis.hgetall(h.worker.store.keys.counters);
      expect(Number(counters['pg:http:429'] ?? 0)).toBe(status429);
      expect(Number(counters['pg:http:503'] ?? 0)).toBe(status503);
      const text = await h.worker.metrics.registry.metrics();
      expect(line(text, 'sluice_worker_pg_refused_total{status="429"}')).toBe(String(status429));
      expect(line(text, 'sluice_worker_pg_refused_total{status="503"}')).toBe(String(status503));
      expect(Number(line(text, 'sluice_gate_wait_seconds_count{call="confirm"}'))).toBeGreaterThanOrEqual(12);
      expect(Number(line(text, 'sluice_pg_call_duration_seconds_count{endpoint="confirm"}'))).toBeGreaterThanOrEqual(12);
      expect(Number(line(text, 'sluice_gate_margin_seconds'))).toBeGreaterThan(0);
      // The dashboard's view of this process's PG client, published to Redis every 2 s.
      const published = async () => livePgClientFigures(await h.worker.redis.hgetall(h.worker.store.keys.pgClients), Date.now());
      await expect.poll(async () => (await published()).length, { timeout: 5_000, interval: 100 }).toBe(1);
      const [mine] = await published();
      expect(mine!.readTimeoutMs.confirm).toBe(h.worker.pg.stats().readTimeouts.confirm.timeoutMs);
      expect(mine!.readTimeoutMs.confirm).toBeGreaterThan(0);
    } finally {
      held.socket?.destroy();
      await h.close();
    }
  }, 90_000);
});
