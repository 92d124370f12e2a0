/**
 * The worker process's own Prometheus metrics: how long PG calls wait at the gate, how long the
 * PG takes, the gate's margin and its too-late re-acquires, and the 429s/503s this process saw.
 * Cluster-wide figures (calls by outcome, breaker, backlog) are the API's `/metrics`, read from
 * Redis; these are the ones only a worker process can see.
 *
 * Served on WORKER_METRICS_PORT (0 = off). With node:cluster forks (WORKER_FORKS > 1) the primary
 * serves one endpoint and prom-client's AggregatorRegistry asks every fork over IPC: histograms
 * and counters are summed, the margin is the largest fork's. One port per machine, one scrape
 * target, whatever the fork count.
 */
import cluster from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { CallObserver, CallReport } from '@sluice/pg-client';
import type { SenderStats } from './sender/pg-port.ts';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds; from a free slot (sub-ms) to a saturated backlog (a window or more). */
const WAIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds; the simulator's median is ~150 ms, p99 ~1.5 s, and the read timeout at most 10 s. */
const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 1.5, 2.5, 5, 10];
/** Seconds a call holds its connection unit: the gate wait plus the round trip, up to a read timeout. */
const HOLD_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20];
const CALLS = ['confirm', 'inquire', 'cancel', 'transactions'] as const;

/** This worker process's Prometheus metrics, fed by the PG client's call reports and the sender's figures. */
export class WorkerMetrics implements Required<CallObserver> {
  readonly registry = new Registry();
  private readonly gateWait = new Histogram({
    name: 'sluice_gate_wait_seconds',
    help: 'Time a PG call waited for its connection share and its send slot, by call',
    labelNames: ['call'] as const,
    buckets: WAIT_BUCKETS,
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'sluice_pg_call_duration_seconds',
    help: 'PG call latency, from send to answer (or to the transport error), by endpoint',
    labelNames: ['endpoint'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly refused = new Counter({
    name: 'sluice_worker_pg_refused_total',
    help: 'PG answers 429 (rate limit) and 503 (connection cap) seen by this process',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  private readonly hold = new Histogram({
    name: 'sluice_pg_connection_hold_seconds',
    help: 'How long a PG call held its connection unit (gate wait, round trip, up to its read timeout), by call',
    labelNames: ['call'] as const,
    buckets: HOLD_BUCKETS,
    registers: [this.registry],
  });
  private readonly timedOut = new Counter({
    name: 'sluice_pg_read_timeouts_total',
    help: 'PG calls that reached their read timeout (their connection closed, the outcome in doubt), by call and whether at the upper bound',
    labelNames: ['call', 'at_max'] as const,
    registers: [this.registry],
  });
  private stats: (() => SenderStats) | null = null;
  private firstSends: (() => number) | null = null;
  /** Connection holds since the last {@link takeHoldMeans}: sum (ms) and count per call. */
  private holds: Record<string, { sum: number; n: number }> = {};

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    for (const status of ['429', '503']) this.refused.inc({ status }, 0);
    const self = this;
    new Gauge({
      name: 'sluice_gate_margin_seconds',
      help: "The gate's safety margin at its last grant",
      registers: [this.registry],
      aggregator: 'max',
      collect() {
        if (self.stats) this.set(self.stats().marginMs / 1000);
      },
    });
    let tooLateSeen = 0;
    new Counter({
      name: 'sluice_gate_permits_too_late_total',
      help: 'Slots given up because the send would have been later than the margin covers (a new slot was taken)',
      registers: [this.registry],
      collect() {
        const now = self.stats?.().tooLate ?? 0;
        if (now > tooLateSeen) this.inc(now - tooLateSeen);
        tooLateSeen = now;
      },
    });
    new Gauge({
      name: 'sluice_pg_read_timeout_seconds',
      help: 'The read timeout in force, by call (it follows the observed latency within its bounds)',
      labelNames: ['call'] as const,
      registers: [this.registry],
      aggregator: 'max',
      collect() {
        const view = self.stats?.().readTimeouts;
        if (view) for (const call of CALLS) this.set({ call }, view[call].timeoutMs / 1000);
      },
    });
    new Gauge({
      name: 'sluice_pg_latency_observed_seconds',
      help: 'The PG latency the read timeout is built on (write to answer headers, last 512 calls; a timed-out call counts as its timeout), by call and quantile',
      labelNames: ['call', 'quantile'] as const,
      registers: [this.registry],
      aggregator: 'max',
      collect() {
        const view = self.stats?.().readTimeouts;
        if (!view) return;
        for (const call of CALLS) {
          const { typicalMs, p75Ms } = view[call];
          if (typicalMs !== null) this.set({ call, quantile: '0.5' }, typicalMs / 1000);
          if (p75Ms !== null) this.set({ call, quantile: '0.75' }, p75Ms / 1000);
        }
      },
    });
    let unusedSeen = 0;
    new Counter({
      name: 'sluice_gate_slots_unused_total',
      help: 'Send slots taken and not used: too late at write, or refused by the phase guard or breaker after',
      registers: [this.registry],
      collect() {
        const now = self.stats?.().unusedSlots ?? 0;
        if (now > unusedSeen) this.inc(now - unusedSeen);
        unusedSeen = now;
      },
    });
    new Gauge({
      name: 'sluice_worker_first_sends',
      help: 'Payments in their first send in this process (admitted, under their outbox marker)',
      registers: [this.registry],
      collect() {
        if (self.firstSends) this.set(self.firstSends());
      },
    });
    new Gauge({
      name: 'sluice_pg_connections_in_use',
      help: "Connections of this process's share of the PG's cap in use",
      registers: [this.registry],
      collect() {
        if (self.stats) this.set(self.stats().inFlight);
      },
    });
  }

  /** Reads the sender's margin, too-late count and connections in use, and the first sends in flight, at scrape time. */
  bind(stats: () => SenderStats, firstSends?: () => number): void {
    this.stats = stats;
    this.firstSends = firstSends ?? null;
  }

  /** Mean connection hold (ms) per call type since the last call (null: no calls), for the dashboard. */
  takeHoldMeans(): Record<(typeof CALLS)[number], number | null> {
    const h = this.holds;
    this.holds = {};
    const mean = (call: string) => (h[call] ? h[call].sum / h[call].n : null);
    return { confirm: mean('confirm'), inquire: mean('inquire'), cancel: mean('cancel'), transactions: mean('transactions') };
  }

  readonly onCall = (r: CallReport): void => {
    this.gateWait.observe({ call: r.call }, r.gateWaitMs / 1000);
    this.hold.observe({ call: r.call }, r.holdMs / 1000);
    const h = (this.holds[r.call] ??= { sum: 0, n: 0 });
    h.sum += r.holdMs;
    h.n += 1;
    // A call that never left (no connection, connect refused) has no PG latency to report.
    if (r.transport !== 'not_sent') this.latency.observe({ endpoint: r.call }, r.latencyMs / 1000);
    if (r.transport === 'no_answer' && r.latencyMs >= r.timeoutMs) this.timedOut.inc({ call: r.call, at_max: String(r.pgFailed) });
    if (r.httpStatus === 429 || r.httpStatus === 503) this.refused.inc({ status: String(r.httpStatus) });
  };
}

/** Serves a registry (or, in a cluster primary, the forks' aggregate) at `/metrics`. */
export function serveMetrics(port: number, host: string, render: () => Promise<{ body: string; contentType: string }>): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    render().then(
      ({ body, contentType }) => res.writeHead(200, { 'content-type': contentType }).end(body),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(err instanceof Error ? err.message : 'error'),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/**
 * Exposes a process's metrics where WORKER_METRICS_PORT says: a lone process serves its own; a
 * fork answers its primary's aggregation requests instead (the primary holds the port).
 */
export async function exposeWorkerMetrics(metrics: WorkerMetrics, port: number, host: string): Promise<Server | null> {
  if (port <= 0) return null;
  if (cluster.isWorker) {
    // The constructor installs the IPC listener that answers the primary; setRegistries says what.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries(metrics.registry);
    return null;
  }
  const r = metrics.registry;
  return serveMetrics(port, host, async () => ({ body: await r.metrics(), contentType: r.contentType }));
}

/**
 * The cluster primary's endpoint: every fork's metrics, aggregated. Unref'd: the primary lives as
 * long as its forks do, and exits with them after a SIGTERM; the port must not keep it alive.
 */
export async function serveClusterMetrics(port: number, host: string): Promise<Server | null> {
  if (port <= 0) return null;
  const aggregator = new AggregatorRegistry();
  const server = await serveMetrics(port, host, async () => ({ body: await aggregator.clusterMetrics(), contentType: aggregator.contentType }));
  return server.unref();
}
