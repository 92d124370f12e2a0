/**
 * `/metrics` in the Prometheus text format, behind the operators' Basic auth.
 *
 * Two kinds of figures. This process's own: intake requests by outcome and the default process
 * metrics. And the cluster's, read from Redis at scrape time through the {@link OpsReader} (PG
 * calls by endpoint and outcome, finals, breaker, reconciliation, backlog, in doubt, memory) and
 * from BullMQ (jobs by queue and state). The cluster figures are the same whichever API replica
 * is scraped, so alert rules aggregate them with `max`, never `sum`.
 *
 * Each app has its own Registry: tests build several apps in one process, and the global one
 * would refuse the second registration of a name.
 */
import type { Request, RequestHandler, Response, NextFunction } from 'express';
import type { ServerResponse } from 'node:http';
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { booksLagOf } from './dashboard/data.ts';
import { FINAL_STATUSES } from '@sluice/domain';
import type { Queues } from '@sluice/queue';
import type { OpsReader, OpsSnapshot } from './dashboard/ops-reader.ts';

/** The breaker as a number, for alert rules: 0 closed, 1 half-open, 2 open. */
export const BREAKER_STATE_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

/** The reconciliation counters the `counters` hash keeps (`recon:<result>`). */
const RECON_RESULTS = ['runs', 'checked', 'matched', 'repaired', 'unresolved', 'orphans'] as const;

/** The PG answers that say "not processed, and we should never have caused it" (`pg:http:<status>`). */
export const PG_REFUSAL_STATUSES = ['429', '503'] as const;

/** Intake outcome by response status: a bounded label set, whatever a client sends. */
export function intakeOutcome(status: number, replayed: boolean, finished: boolean): string {
  if (!finished) return 'aborted';
  switch (status) {
    case 202:
      return replayed ? 'replayed' : 'accepted';
    case 400:
      return 'invalid';
    case 401:
      return 'unauthorized';
    case 409:
      return 'duplicate';
    case 413:
      return 'too_large';
    case 415:
      return 'unsupported_media_type';
    case 422:
      return 'idempotency_key_reused';
    case 503:
      return 'backlog_full';
    default:
      return status >= 500 ? 'error' : 'other';
  }
}

/**
 * The API's Prometheus registries: this process's (intake by outcome, the process metrics), and
 * the cluster's figures read from Redis at scrape time. With API_PROCESSES > 1 the scrape lands
 * on one fork, which asks the primary for every fork's own figures summed (`forkFigures`).
 */
export class ApiMetrics {
  /** The cluster's figures, read from Redis at scrape time. */
  readonly registry = new Registry();
  /** This process's own figures. */
  readonly own = new Registry();
  private readonly intake = new Counter({
    name: 'sluice_intake_requests_total',
    help: 'POST /v1/payments requests answered by the API processes behind this port, by outcome (accepted, replayed, invalid, duplicate, backlog_full, …)',
    labelNames: ['outcome'] as const,
    registers: [this.own],
  });
  /** Renders the own figures: this process's, or every fork's summed when forked (API_PROCESSES). */
  private readonly ownFigures: () => Promise<string>;
  private readonly created = this.counter('sluice_payments_created_total', 'Payments accepted (cluster-wide, from Redis)');
  private readonly finals = new Gauge({
    name: 'sluice_payments_final',
    help: 'Payments in each final state (cluster-wide; a reconciliation repair moves one between states)',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  private readonly pgCalls = new Counter({
    name: 'sluice_pg_calls_total',
    help: 'PG calls by endpoint (confirm, inquire, cancel, transactions) and outcome class (cluster-wide)',
    labelNames: ['endpoint', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly pgRefused = new Counter({
    name: 'sluice_pg_refused_total',
    help: 'PG answers 429 (rate limit) and 503 (connection cap): neither should ever happen (cluster-wide)',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  private readonly jobs = new Gauge({
    name: 'sluice_queue_jobs',
    help: 'BullMQ jobs by queue and state',
    labelNames: ['queue', 'state'] as const,
    registers: [this.registry],
  });
  private readonly backlog = this.gauge('sluice_backlog_payments', 'Payments not final yet (the backlog)');
  private readonly oldestAge = this.gauge(
    'sluice_backlog_oldest_age_seconds',
    'Seconds the oldest payment not final yet has waited since its 202 (0 when none): a stalled backlog shows here, not in the ETA',
  );
  private readonly eta = this.gauge('sluice_backlog_eta_seconds', 'Seconds to drain the backlog at the recent confirm rate (or at PG_RATE_LIMIT when idle)');
  private readonly providerCalls = new Gauge({
    name: 'sluice_provider_calls_per_second', help: 'PG calls sent in the last complete second, per provider (all worker processes)',
    labelNames: ['provider'] as const, registers: [this.registry],
  });
  private readonly providerLimit = new Gauge({ name: 'sluice_provider_limit_per_second', help: "A provider's request limit per second", labelNames: ['provider'] as const, registers: [this.registry] });
  private readonly providerBreaker = new Gauge({ name: 'sluice_provider_breaker_state', help: "A provider's breaker: 0 closed, 1 half-open, 2 open", labelNames: ['provider'] as const, registers: [this.registry] });
  private readonly providerConnections = new Gauge({ name: 'sluice_provider_connections', help: 'Connections to a provider in use (live worker processes)', labelNames: ['provider'] as const, registers: [this.registry] });
  private readonly providerBacklog = new Gauge({ name: 'sluice_provider_backlog_payments', help: "Payments waiting for a provider (in its merchants' queues, and admitted and not yet sent)", labelNames: ['provider'] as const, registers: [this.registry] });
  private readonly fairAdmitted = this.gauge('sluice_fair_admitted_payments', "Payments admitted from the merchants' fair queues and not yet sent");
  private readonly fairMerchants = this.gauge('sluice_fair_waiting_merchants', 'Merchants with payments waiting for admission');
  private readonly confirmRate = this.gauge('sluice_pg_confirm_rate', 'PG confirms per second over the last 10 s (cluster-wide)');
  private readonly inDoubt = this.gauge('sluice_in_doubt_payments', 'Payments in doubt now (being inquired or canceled)');
  private readonly inDoubtEntered = this.counter('sluice_in_doubt_entered_total', 'Payments that went in doubt');
  private readonly resolveCancels = this.counter('sluice_resolve_cancels_total', 'Payments in doubt that Sluice decided to cancel');
  private readonly refunds = new Counter({
    name: 'sluice_refunds_total',
    help: "Merchants' cancels: requested, succeeded (done at the PG, or at once for a payment never sent) and failed",
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private readonly refundedAmount = this.counter('sluice_refunded_amount_total', 'Minor units refunded at the PG by merchants\' cancels of approved payments');
  private readonly webhooks = new Counter({
    name: 'sluice_webhooks_total',
    help: 'Webhook deliveries: delivered (2xx), failedTries, gaveUp (after the last try), disabled (endpoints answering 410)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private readonly breakerState = this.gauge('sluice_breaker_state', 'PG circuit breaker: 0 closed, 1 half-open, 2 open');
  private readonly breakerOpened = this.counter('sluice_breaker_opened_total', 'Times the breaker opened');
  private readonly recon = new Counter({
    name: 'sluice_reconcile_total',
    help: 'Reconciliation: runs, payments checked, matched, repaired, unresolved, and orphan charges at the PG',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private readonly booksLag = this.gauge('sluice_books_lag_seconds', 'Age of the oldest change not yet in the books (PostgreSQL); grows while no drainer reports');
  private readonly booksPending = this.gauge('sluice_books_pending', 'Changes a drainer holds and has not committed yet');
  private readonly memUsed = this.gauge('sluice_redis_memory_used_bytes', 'Redis used_memory');
  private readonly memMax = this.gauge('sluice_redis_memory_max_bytes', 'Redis maxmemory (0: none set)');
  private readonly memRatio = this.gauge('sluice_redis_memory_ratio', 'Redis used_memory ÷ maxmemory (0 without maxmemory)');

  constructor(
    private readonly reader: OpsReader,
    private readonly queues: Queues,
  ) {
    collectDefaultMetrics({ register: this.own });
    this.ownFigures = isApiFork() ? forkFigures(this.own) : () => this.own.metrics();
  }

  /**
   * Counts every POST /v1/payments by how it was answered. Mounted in front of the intake route
   * for POST only; it costs one listener per request, no Redis.
   */
  readonly countIntake: RequestHandler = (_req: Request, res: Response, next: NextFunction): void => {
    this.countAnswer(res);
    next();
  };

  /** {@link countIntake} for the intake served ahead of Express (intake.ts): counts `res` once it closes. */
  readonly countAnswer = (res: ServerResponse): void => {
    res.once('close', () => {
      this.intake.inc({ outcome: intakeOutcome(res.statusCode, res.getHeader('idempotent-replayed') === 'true', res.writableFinished) });
    });
  };

  /** Reads Redis and the queues, then renders every metric. */
  async render(): Promise<string> {
    const [snap, ...counts] = await Promise.all([
      this.reader.snapshot(0),
      this.queues.confirm.getJobCounts(),
      this.queues.resolve.getJobCounts(),
      this.queues.maintenance.getJobCounts(),
    ]);
    this.apply(snap, counts);
    const shared = await this.registry.metrics();
    return `${shared}\n${await this.ownFigures()}`;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Sets every cluster figure at once (synchronously, so a scrape never sees half of two reads). */
  private apply(s: OpsSnapshot, counts: Record<string, number>[]): void {
    const c = (f: string) => s.counters[f] ?? 0;
    setCounter(this.created, c('intake:created'));
    for (const st of FINAL_STATUSES) this.finals.set({ status: st }, c(`final:${st}`));
    this.pgCalls.reset();
    this.pgRefused.reset();
    for (const st of PG_REFUSAL_STATUSES) this.pgRefused.inc({ status: st }, c(`pg:http:${st}`));
    for (const [field, v] of Object.entries(s.counters)) {
      const m = /^pg:([a-z_]+):([a-z_]+)$/.exec(field);
      if (m && m[1] !== 'http') this.pgCalls.inc({ endpoint: m[1]!, outcome: m[2]! }, Math.max(0, v));
    }
    this.jobs.reset();
    const names = ['confirm', 'resolve', 'maintenance'];
    counts.forEach((byState, i) => {
      for (const [state, n] of Object.entries(byState)) this.jobs.set({ queue: names[i]!, state }, n);
    });
    this.backlog.set(s.backlog);
    this.oldestAge.set(s.oldestAgeSeconds);
    this.eta.set(s.etaSeconds);
    this.confirmRate.set(s.confirmRate);
    this.fairAdmitted.set(s.fair.admitted);
    for (const g of [this.providerCalls, this.providerLimit, this.providerBreaker, this.providerConnections, this.providerBacklog]) g.reset();
    for (const p of s.providers) {
      this.providerCalls.set({ provider: p.id }, p.callsPerSecond);
      this.providerLimit.set({ provider: p.id }, p.limitPerSecond);
      this.providerBreaker.set({ provider: p.id }, BREAKER_STATE_VALUE[p.breaker] ?? BREAKER_STATE_VALUE.open);
      this.providerConnections.set({ provider: p.id }, p.connections);
      this.providerBacklog.set({ provider: p.id }, p.waiting + p.admitted);
    }
    this.fairMerchants.set(s.fair.merchants);
    this.inDoubt.set(s.inDoubt);
    setCounter(this.inDoubtEntered, c('inDoubt:entered'));
    setCounter(this.resolveCancels, c('resolve:cancels'));
    this.refunds.reset();
    for (const r of ['requested', 'succeeded', 'failed'] as const) this.refunds.inc({ result: r }, Math.max(0, c(`refund:${r}`)));
    setCounter(this.refundedAmount, c('refund:amount'));
    this.webhooks.reset();
    for (const r of ['delivered', 'failedTries', 'gaveUp', 'disabled'] as const) this.webhooks.inc({ result: r }, Math.max(0, c(`webhook:${r}`)));
    this.breakerState.set(BREAKER_STATE_VALUE[s.breaker.state] ?? BREAKER_STATE_VALUE.open);
    setCounter(this.breakerOpened, c('breaker:opened'));
    this.recon.reset();
    for (const r of RECON_RESULTS) this.recon.inc({ result: r }, Math.max(0, c(`recon:${r}`)));
    const books = booksLagOf(s.counters, s.at);
    this.booksLag.set(books.lagSeconds);
    this.booksPending.set(books.pending + books.undelivered);
    this.memUsed.set(s.memory.usedBytes);
    this.memMax.set(s.memory.maxBytes);
    this.memRatio.set(s.memory.ratio);
  }

  private gauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, registers: [this.registry] });
  }

  private counter(name: string, help: string): Counter {
    return new Counter({ name, help, registers: [this.registry] });
  }
}

/**
 * A Redis counter shown as a Prometheus counter: it only grows, cluster-wide, so `rate()` and
 * `increase()` work on it (a Redis that lost its data reads as a counter reset, as it should).
 */
function setCounter(m: Counter, v: number): void {
  m.reset();
  m.inc(Math.max(0, v));
}

/**
 * Set in the environment of the forks the API's own primary makes (API_PROCESSES): only that
 * primary answers for the forks' figures. Under another cluster manager (pm2's cluster mode, say)
 * each process shows its own.
 */
export const API_FORK_ENV = 'SLUICE_API_FORK';
const isApiFork = (): boolean => cluster.isWorker && process.env[API_FORK_ENV] === '1';

/** The IPC message a fork sends its primary for every fork's own figures, and the answer's. */
const FIGURES = 'sluice:api-figures';
interface FiguresMessage {
  type: typeof FIGURES;
  id: number;
  text?: string;
  error?: string;
}
const isFigures = (m: unknown): m is FiguresMessage => typeof m === 'object' && m !== null && (m as { type?: unknown }).type === FIGURES;

/**
 * In a fork: answers the primary's aggregator with `own`, and returns how to ask the primary for
 * every fork's figures (prom-client's AggregatorRegistry sums counters; it asks each fork over
 * IPC, this one included, which answers while its scrape waits).
 */
function forkFigures(own: Registry): () => Promise<string> {
  // The constructor installs the listener that answers the primary; setRegistries says with what.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries(own);
  let next = 0;
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  process.on('message', (m: unknown) => {
    if (!isFigures(m) || !pending.has(m.id)) return;
    const p = pending.get(m.id)!;
    pending.delete(m.id);
    if (m.text !== undefined) p.resolve(m.text);
    else p.reject(new Error(m.error ?? 'no figures from the primary'));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve, reject });
      process.send!({ type: FIGURES, id } satisfies FiguresMessage);
    });
}

/** In the primary of API_PROCESSES forks: answers each fork's request for every fork's own figures. */
export function answerFigureRequests(): (fork: Worker, message: unknown) => void {
  const aggregator = new AggregatorRegistry();
  return (fork, m) => {
    if (!isFigures(m)) return;
    aggregator.clusterMetrics().then(
      (text) => fork.send({ type: FIGURES, id: m.id, text } satisfies FiguresMessage),
      (err: unknown) => fork.send({ type: FIGURES, id: m.id, error: err instanceof Error ? err.message : String(err) } satisfies FiguresMessage),
    );
  };
}
