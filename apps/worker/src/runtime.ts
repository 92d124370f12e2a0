/**
 * The worker's composition root: builds the Redis connections, the permit gate, the PG client,
 * the driver and the BullMQ workers from one parsed config. `main.ts` runs it as a process;
 * tests run it in-process against a simulator on port 0.
 */
import { admitLead, admittedStaleMs, admitTickMs, hotWindowMs, providersOf, webhookPolicyOf, workerConcurrency, type Config, type Provider } from '@sluice/config';
import { BooksReader, booksPool } from '@sluice/books';
import { resolutionPolicyOf } from '@sluice/domain';
import { createQueues, JOB_OPTIONS, QUEUE_NAMES, queueNamesOf, queuePrefixOf, retryPolicy, WORKER_KEEP_JOBS, WORKER_SETTINGS, type Queues } from '@sluice/queue';
import {
  checkRedisSafety, checkShardCount, connectConfigured, fairShares, makeKeys, PaymentStore, PG_CLIENT_FIGURES_EVERY_MS, publishPgClientFigures, RefundStore, refundStoreOptionsOf, replicaWaiterOf, storeOptionsOf,
  Transitions,
  transitionsOptionsOf, type FairShare, type Keys, type Redis,
} from '@sluice/store';
import { hostname } from 'node:os';
import { Worker } from 'bullmq';
import { createLogger } from '@sluice/log';
import type { Logger } from 'pino';
import { Admitter } from './admitter.ts';
import { FirstSends } from './first-sends.ts';
import { PaymentDriver } from './driver.ts';
import { WorkerMetrics } from './metrics.ts';
import { confirmProcessor, resolveProcessor } from './processors.ts';
import { Reconciler } from './reconciler.ts';
import { LocalPg } from './sender/local-pg.ts';
import type { PgPort } from './sender/pg-port.ts';
import { ThreadPg } from './sender/thread-pg.ts';
import { Sweeper } from './sweeper.ts';
import { Refunder } from './refunder.ts';
import { Webhooks } from './webhooks.ts';
import { SecretBox } from '@sluice/webhooks';

/**
 * One provider's side of a worker process: its PG port (the sender thread, or this thread with
 * PG_SENDER_THREAD=false), its view of the keys, transitions (its breaker), queues, admission
 * from the merchants' fair queues, reconciliation and BullMQ workers (confirm, resolve).
 */
export interface ProviderSide {
  provider: Provider;
  keys: Keys;
  transitions: Transitions;
  pg: PgPort;
  queues: Queues;
  /** Its fair queues in each payment shard. */
  fairs: FairShare[];
  admitter: Admitter;
  /** What this process admitted, driven to its first answer (first-sends.ts). */
  sends: FirstSends;
  /** Merchants' refunds of approved payments (refunder.ts). */
  refunder: Refunder;
  reconciler: Reconciler;
  workers: Worker[];
}

/**
 * A started worker process: its connections, store, providers, maintenance and BullMQ workers,
 * and how to close it. The first provider's side is spread on it (`pg`, `queues`, …): with one
 * PG, it is that PG's.
 */
export interface RunningWorker extends ProviderSide {
  config: Config;
  redis: Redis;
  store: PaymentStore;
  providers: ProviderSide[];
  sweeper: Sweeper;
  /** Every BullMQ worker of the process (each provider's, and maintenance). */
  workers: Worker[];
  metrics: WorkerMetrics;
  log: Logger;
  /** The webhook dispatcher and deliverer (null without WEBHOOK_ENCRYPTION_KEY). */
  webhooks: Webhooks | null;
  /** Stops taking jobs, waits up to the grace period for in-flight calls, then closes everything. */
  close(): Promise<void>;
}


/**
 * Starts one worker process's queues, sender and maintenance. `onFatal` hears of a failure this
 * process cannot recover from (its sender thread died): main.ts exits, so that a supervisor (the
 * cluster primary, compose, systemd) starts a fresh one while other processes keep draining.
 */
export async function startWorker(
  config: Config,
  log: Logger = createLogger(config, { name: 'worker' }),
  onFatal: (err: Error) => void = () => undefined,
): Promise<RunningWorker> {
  const redis = connectConfigured(config, log);
  const bullConnection = connectConfigured(config, log, { enableAutoPipelining: false });
  await checkRedisSafety(redis, config.REDIS_ALLOW_EVICTION, log, config.REDIS_WAIT_REPLICAS);
  const store = new PaymentStore(redis, storeOptionsOf(config));
  await checkShardCount(redis, store.keys);
  // REDIS_WAIT_REPLICAS: final states on the replicas before their jobs end (driver.ts).
  const replicas = replicaWaiterOf(config, redis);
  const metrics = new WorkerMetrics();
  const common = {
    connection: bullConnection,
    prefix: queuePrefixOf(config.REDIS_PREFIX),
    lockDuration: config.WORKER_LOCK_MS,
    stalledInterval: config.WORKER_STALLED_CHECK_MS,
    maxStalledCount: 10,
    settings: WORKER_SETTINGS,
    ...WORKER_KEEP_JOBS,
  };
  // The books, when configured: reconciliation reads there what Redis has forgotten.
  const booksDb = config.DATABASE_URL ? booksPool(config.DATABASE_URL, 2) : null;
  const books = booksDb ? { reader: new BooksReader(booksDb), hotMs: hotWindowMs(config) } : null;

  // One side per provider: nothing of one PG's (its gate, connections, breaker, timeouts,
  // queues, BullMQ concurrency, admission, reconciliation) is shared with another's.
  const sides: ProviderSide[] = [];
  for (const provider of providersOf(config)) {
    const pc = provider.config;
    const keys = makeKeys(pc.REDIS_PREFIX, provider.id, pc.REDIS_SHARDS);
    const transitions = new Transitions(redis, keys, transitionsOptionsOf(pc));
    let pg: PgPort;
    if (pc.PG_SENDER_THREAD) {
      const thread = new ThreadPg(pc, metrics, (err) => {
        log.fatal({ alert: true, provider: provider.id, err: err.message }, 'sender thread died: this process can make no PG call');
        onFatal(err);
      });
      await thread.ready;
      pg = thread;
    } else {
      pg = new LocalPg(pc, redis, transitions, metrics, replicas);
    }
    const queues = createQueues(bullConnection, pc.REDIS_PREFIX, provider.id);
    const names = queueNamesOf(provider.id);
    const driver = new PaymentDriver({ pg, store, transitions, policy: resolutionPolicyOf(pc), log, replicas });
    const deps = { driver, resolveQueue: queues.resolve, probeIntervalMs: pc.BREAKER_PROBE_INTERVAL_MS, log };
    let confirmWorker: Worker | null = null;
    confirmWorker = new Worker(names.confirm, retryPolicy(confirmProcessor(deps, () => confirmWorker!)), {
      ...common,
      concurrency: workerConcurrency(pc),
      ...(pc.BULLMQ_LIMITER_MAX > 0 ? { limiter: { max: pc.BULLMQ_LIMITER_MAX, duration: pc.PG_RATE_WINDOW_MS } } : {}),
    });
    const resolveWorker = new Worker(names.resolve, retryPolicy(resolveProcessor(deps)), { ...common, concurrency: pc.RESOLVE_CONCURRENCY });
    const fairs = fairShares(redis, keys);
    const sends = new FirstSends({
      driver, redis, confirmQueue: queues.confirm, resolveQueue: queues.resolve, concurrency: workerConcurrency(pc), probeIntervalMs: pc.BREAKER_PROBE_INTERVAL_MS, log,
    });
    const admitter = new Admitter({
      shards: fairs.map((fair, n) => ({ fair, outboxKey: keys.shards[n]!.outbox })), sends, lead: admitLead(pc), staleMs: admittedStaleMs(pc), tickMs: admitTickMs(pc), log,
    });
    const reconciler = new Reconciler({ pg, store, transitions, log, books, keys }, { lookbackMs: pc.RECONCILE_LOOKBACK_MS, settleMs: 60_000 });
    const refunder = new Refunder({
      pg, refunds: new RefundStore(redis, refundStoreOptionsOf(pc), provider.id), log,
      tickMs: pc.REFUND_TICK_MS, concurrency: pc.RESOLVE_CONCURRENCY,
      // Past any one call: the wait for a slot and a connection, and the read timeout's bound.
      leaseMs: 2 * pc.PG_HEADERS_TIMEOUT_MS + 10_000,
      settleMs: pc.REFUND_SETTLE_MS, backoffBaseMs: pc.RETRY_BACKOFF_BASE_MS, backoffMaxMs: pc.RETRY_BACKOFF_MAX_MS,
      breakerWaitMs: pc.BREAKER_PROBE_INTERVAL_MS,
    });
    sides.push({ provider, keys, transitions, pg, queues, fairs, admitter, sends, refunder, reconciler, workers: [confirmWorker, resolveWorker] });
  }
  const first = sides[0]!;
  // Process-wide figures (gate, connections, timeouts) are the first provider's; the PG calls of
  // every provider are counted (with their provider in Redis for the dashboard and /metrics).
  metrics.bind(() => first.pg.stats(), () => sides.reduce((n, side) => n + side.sends.size(), 0));

  const sweeper = new Sweeper({ store, providers: new Map(sides.map((s) => [s.provider.id, s])), log });
  const maintenanceWorker = new Worker(
    QUEUE_NAMES.maintenance,
    async (job) => {
      if (job.name === 'sweep') return sweeper.sweep();
      if (job.name === 'reconcile') {
        const reports = [];
        for (const side of sides) reports.push(await side.reconciler.run());
        return reports.length === 1 ? reports[0] : reports;
      }
      return null;
    },
    { ...common, concurrency: 1 },
  );
  await first.queues.maintenance.upsertJobScheduler('sweep', { every: config.SWEEP_INTERVAL_MS }, { name: 'sweep' });
  await first.queues.maintenance.upsertJobScheduler('reconcile', { every: config.RECONCILE_INTERVAL_MS }, { name: 'reconcile' });

  // The dashboard's view of this process's PG clients: read timeouts in force, connection holds.
  const processId = `${hostname()}:${process.pid}`;
  const figuresTimer = setInterval(() => {
    const holdMs = metrics.takeHoldMeans();
    for (const side of sides) {
      const s = side.pg.stats();
      const readTimeoutMs = {
        confirm: s.readTimeouts.confirm.timeoutMs, inquire: s.readTimeouts.inquire.timeoutMs,
        cancel: s.readTimeouts.cancel.timeoutMs, transactions: s.readTimeouts.transactions.timeoutMs,
      };
      publishPgClientFigures(redis, side.keys, processId, { at: Date.now(), readTimeoutMs, holdMs, inFlight: s.inFlight }).catch(() => undefined);
    }
  }, PG_CLIENT_FIGURES_EVERY_MS);
  figuresTimer.unref();

  const workers = [...sides.flatMap((side) => side.workers), maintenanceWorker];
  for (const w of workers) {
    w.on('error', (err) => log.error({ err: err.message, queue: w.name }, 'worker error'));
    // A short lock is only right while it never lapses under load: both are counted (in the
    // shared counters, which the bench reads) and logged. A stalled job of a live worker runs twice; the
    // phase guard and the payment's one PG key keep that safe, but it costs PG calls.
    w.on('stalled', (jobId) => {
      log.warn({ queue: w.name, jobId }, 'job stalled: its lock lapsed, another worker takes it');
      store.count('jobs:stalled').catch(() => undefined);
    });
    w.on('lockRenewalFailed', (jobIds: string[]) => {
      log.warn({ queue: w.name, jobs: jobIds.length }, 'job lock renewal failed');
      store.count('jobs:lockRenewalFailed', jobIds.length).catch(() => undefined);
    });
  }
  // BullMQ gave up on a job (attempts spent or stalled too often): never leave the payment
  // orphaned. The sweeper's live-job check re-drives it; do it at once here.
  for (const w of sides.flatMap((side) => side.workers)) {
    w.on('failed', (job, err) => {
      if (!job || job.attemptsMade < (job.opts.attempts ?? JOB_OPTIONS.attempts ?? 1)) return;
      log.error({ alert: true, paymentId: job.data.paymentId, err: err.message }, 'job failed for good; re-driving the payment');
      sweeper.ensureLiveJob(job.data.paymentId).catch((e: unknown) => log.error({ err: e }, 're-drive failed'));
    });
  }

  for (const side of sides) {
    side.admitter.start();
    side.refunder.start();
  }
  // Signed webhooks, when endpoints can be registered (their secrets need the key).
  const webhookReader = config.WEBHOOK_ENCRYPTION_KEY ? connectConfigured(config, log, { enableAutoPipelining: false }) : null;
  const webhooks = webhookReader
    ? new Webhooks({
        redis, reader: webhookReader, bullConnection, keys: store.keys, box: new SecretBox(config.WEBHOOK_ENCRYPTION_KEY!),
        policy: webhookPolicyOf(config), concurrency: config.WEBHOOK_CONCURRENCY, timeoutMs: config.WEBHOOK_TIMEOUT_MS,
        retryScale: config.WEBHOOK_RETRY_SCALE, consumer: processId, log,
      })
    : null;
  webhooks?.start();

  return {
    config, redis, store, providers: sides, ...first, sweeper, workers, metrics, log, webhooks,
    close: async () => {
      // No more admissions: what this process admitted is in flight here, or in BullMQ.
      await Promise.all(sides.map((side) => side.admitter.stop()));
      // No new refund steps; those under way settle within the grace period, or their leases
      // lapse and another worker queries what they sent.
      const refundersStopped = Promise.all(sides.map((side) => side.refunder.stop()));
      clearInterval(figuresTimer);
      await Promise.all(sides.map((side) => redis.hdel(side.keys.pgClients, processId).catch(() => undefined)));
      const grace = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), config.WORKER_SHUTDOWN_GRACE_MS).unref());
      const graceful = Promise.all([...workers.map((w) => w.close()), ...sides.map((side) => side.sends.drained()), refundersStopped]).then(() => 'closed' as const);
      if ((await Promise.race([graceful, grace])) === 'timeout') {
        // Hand the jobs back: their locks lapse and another worker picks them up, and a confirm
        // that may have been sent is re-sent with the same key or inquired. First sends still in
        // flight keep their outbox markers, no longer renewed: the sweeper takes them.
        await Promise.all(workers.map((w) => w.close(true)));
      }
      for (const side of sides) side.sends.close();
      await webhooks?.close();
      await Promise.all(sides.map((side) => side.pg.close()));
      await replicas?.close();
      await Promise.all(sides.map((side) => side.queues.close()));
      await Promise.all([redis.quit(), bullConnection.quit(), webhookReader?.quit(), booksDb?.end()]).catch(() => undefined);
    },
  };
}
