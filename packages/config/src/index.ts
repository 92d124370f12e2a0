/**
 * Sluice's configuration: one zod schema over the environment, parsed once at start-up by each
 * app (`loadConfig(process.env)`). A bad variable fails at boot with a message naming it.
 * The README's configuration table lists these same variables; keep them in step.
 */
import { z } from 'zod';
import { DEFAULT_PROVIDER, PROVIDER_ID, readProviderList } from './providers.ts';
import { hashTagOf, redisTargetVariables } from './redis-target.ts';
import { VARIABLE_DOCS } from './variable-docs.ts';

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);
const num = (def: number, min = 0) => z.coerce.number().min(min).default(def);
const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** `id:hash[,id:hash…]`: merchant id and the HMAC-SHA-256 (hex) of its API key. */
const merchantList = z
  .string()
  .default('')
  .transform((s, ctx) => {
    const out: { id: string; keyHash: string }[] = [];
    for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
      const m = /^([A-Za-z0-9_-]{1,64}):([0-9a-f]{64})$/.exec(part);
      if (!m) {
        ctx.addIssue({ code: 'custom', message: `bad entry "${part.slice(0, 20)}…": want merchantId:hmacSha256Hex` });
        return z.NEVER;
      }
      out.push({ id: m[1]!, keyHash: m[2]! });
    }
    return out;
  });

/**
 * `id:weight[,id:weight…]`: a merchant's weight in the fair share of the PG's budget (an integer
 * 1–1000; merchants not listed weigh 1). A merchant with weight 3 gets three times the calls of
 * one with weight 1 while both have payments waiting.
 */
const merchantWeights = z
  .string()
  .default('')
  .transform((s, ctx) => {
    const out: Record<string, number> = {};
    for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
      const m = /^([A-Za-z0-9_-]{1,64}):([1-9][0-9]{0,3})$/.exec(part);
      if (!m || Number(m[2]) > MAX_MERCHANT_WEIGHT) {
        ctx.addIssue({ code: 'custom', message: `bad entry "${part.slice(0, 40)}": want merchantId:weight, weight an integer 1–${MAX_MERCHANT_WEIGHT}` });
        return z.NEVER;
      }
      out[m[1]!] = Number(m[2]);
    }
    return out;
  });

/** The largest merchant weight. */
export const MAX_MERCHANT_WEIGHT = 1_000;

/** The environment's schema: every variable, its type, bounds and default. */
export const EnvSchema = z.object({
  NODE_ENV: z.string().default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  // Redis
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  /** Sentinel, Cluster, ACL and TLS settings (redis-target.ts); REDIS_SENTINELS or REDIS_CLUSTER_NODES set replaces REDIS_URL. */
  ...redisTargetVariables,
  /** A Redis connection with no answer to a PING for this long is dropped and made again; 0 = never. */
  REDIS_HANG_MS: int(5_000, 0),
  /**
   * Replicas that must hold a payment before intake answers 202 (and a cancel request before its
   * 202): 0 = do not wait (one Redis, or an AOF-backed primary you restart rather than fail over).
   */
  REDIS_WAIT_REPLICAS: int(0, 0),
  /** How long intake waits for them; past it, 503 REPLICA_UNCONFIRMED with Retry-After. */
  REDIS_WAIT_TIMEOUT_MS: int(1_000, 1),
  /** Key prefix for every Sluice and BullMQ key. On Redis Cluster it must hold a hash tag, `{sluice}`, from which each family of keys gets its slot. */
  REDIS_PREFIX: z.string().min(1).default('sluice'),
  /**
   * Payment shards: each holds its payments' state keys under a prefix of its own (`{T:s<n>}`),
   * so that a Redis Cluster spreads payments over its primaries (docs/redis-cluster.md). 1 keeps
   * every key where it has always been. Fixed for the life of a deployment's keys: the start-up
   * refuses a count other than the one the keys were written with.
   */
  REDIS_SHARDS: int(1, 1),
  /** Start even when Redis evicts keys (maxmemory-policy other than noeviction). Never in production. */
  REDIS_ALLOW_EVICTION: bool(false),

  // The PG
  /**
   * The providers (several PGs), as a JSON array (see providers.ts), or a file holding one.
   * Unset: the PG_* variables are the one provider, named PG_PROVIDER.
   */
  PROVIDERS: z.string().optional(),
  PROVIDERS_FILE: z.string().optional(),
  /** The id of the provider the PG_* variables configure when PROVIDERS is not set. */
  PG_PROVIDER: z.string().regex(PROVIDER_ID).default(DEFAULT_PROVIDER),
  /** Required by the worker (see {@link required}); no default host. */
  PG_BASE_URL: z
    .url({ protocol: /^https?$/ })
    .refine((u) => !/[?#]/.test(u) && !/^[a-z]+:\/\/[^/]*@/i.test(u), 'a base URL without credentials, query or fragment (a path is fine: http://pg.example/api)')
    .optional(),
  PG_SECRET_KEY: z.string().min(1).optional(),
  PG_CURRENCY: z.string().regex(/^[A-Z]{3}$/).default('KRW'),
  PG_RATE_LIMIT: int(500, 1),
  PG_RATE_WINDOW_MS: int(1000, 1),
  /** The PG's cap on concurrent connections, shared by every worker process. */
  PG_CONNECTIONS_TOTAL: int(200, 1),
  /** How many worker processes share that cap (all machines). Each gets total ÷ processes. */
  WORKER_PROCESSES: int(1, 1),
  /** Worker processes this machine's `worker` starts (node:cluster); defaults to WORKER_PROCESSES. */
  WORKER_FORKS: z.coerce.number().int().min(1).optional(),
  PG_CONNECT_TIMEOUT_MS: int(2_000, 1),
  /**
   * The read timeout's upper bound. Each call type's read timeout follows the PG's observed
   * latency (PG_HEADERS_TIMEOUT_FACTOR × its p75), between PG_HEADERS_TIMEOUT_MIN_MS and this.
   * At the read timeout Sluice closes the connection (the contract frees the place at once; the
   * PG finishes the request) and the outcome is in doubt. Timeouts at this bound count as PG
   * failures for the breaker; those at the adaptive value below it do not.
   */
  PG_HEADERS_TIMEOUT_MS: int(10_000, 1),
  /** The read timeout's lower bound (capped at PG_HEADERS_TIMEOUT_MS). */
  PG_HEADERS_TIMEOUT_MIN_MS: int(1_500, 1),
  /** The adaptive read timeout is this many times the observed p75 latency of its call type. */
  PG_HEADERS_TIMEOUT_FACTOR: num(2, 1),
  /**
   * Connections of the PG's cap that Sluice leaves unused: the PG counts a closed connection as
   * free only once it sees the close, so a place freed and re-opened in the same instant could
   * be the 201st for a moment.
   */
  PG_CONNECTIONS_HEADROOM: int(4),
  /**
   * Connections (of the total) that only inquiries and cancels may use, so that hung confirms
   * can never starve the calls that resolve payments in doubt.
   */
  PG_CONNECTIONS_RESERVED: int(20),
  PG_BODY_TIMEOUT_MS: int(5_000, 1),
  /** Below the PG's 4 s idle close, so we never reuse a socket the PG is closing. */
  PG_KEEPALIVE_TIMEOUT_MS: int(3_000, 1),
  /** The longest a call may wait for a pooled connection before it is "not sent". */
  PG_POOL_WAIT_TIMEOUT_MS: int(10_000, 1),

  // Permit gate
  GATE_ENABLED: bool(true),
  /**
   * Smallest and largest safety margin added to the window; the gate adapts between them. The
   * smallest is never spent on Sluice's own lateness: it covers what Sluice cannot measure, the
   * transit and the PG's side: its clock, which the contract says jitters by a few ms, and the
   * moments it is not reading its sockets, when requests sent apart are read, and counted,
   * together. 30 ms costs ~3% of the budget; on the 2-core bench machine, where the simulator
   * stops reading for tens of ms at a time, 10 ms still drew 429s (BENCHMARKS.md).
   * The largest leaves room above what the lateness estimate usually asks for (its allowance is
   * at most max − min) and for a 429's doubling: at 60 ms, four worker processes on 2 cores held
   * the margin at the cap for a whole run, and a 429 could barely widen it.
   */
  GATE_MARGIN_MIN_MS: num(30),
  GATE_MARGIN_MAX_MS: num(150),
  /** How far ahead a process may reserve slots, for confirms and for inquiries/cancels. */
  GATE_HORIZON_MS: int(40, 1),
  GATE_PRIORITY_HORIZON_MS: int(120, 1),
  GATE_BATCH_MAX: int(16, 1),
  /**
   * Send from a dedicated thread whose event loop only waits for slots and sends, so that the
   * worker's job processing does not make sends late (lateness is paid for in margin).
   */
  PG_SENDER_THREAD: bool(true),
  /** Baseline only: BullMQ's own fixed-window limiter (max per window); 0 = off. */
  BULLMQ_LIMITER_MAX: int(0),

  // Circuit breaker
  BREAKER_CONSECUTIVE_FAILURES: int(20, 1),
  BREAKER_FAILURE_RATE: num(0.5).pipe(z.number().max(1)),
  BREAKER_MIN_CALLS: int(40, 1),
  BREAKER_WINDOW_MS: int(10_000, 1000),
  BREAKER_OPEN_MS: int(5_000, 1),
  BREAKER_PROBE_INTERVAL_MS: int(1_000, 1),
  BREAKER_CLOSE_AFTER: int(2, 1),

  // In-doubt resolution
  /** How long after its confirm a payment the PG still answers IN_PROGRESS is cancelled. */
  RESOLVE_CANCEL_AFTER_MS: int(60_000, 1_000),
  RESOLVE_MAX_RECONFIRMS: int(2),
  /** The longest wait before the first inquiry; the first look comes after the PG's typical latency when shorter. */
  RESOLVE_FIRST_INQUIRY_DELAY_MS: int(1_000),
  /** Each later inquiry comes when the time since the confirm has grown by this factor. */
  RESOLVE_INQUIRY_GROWTH: num(2, 1.1),
  RETRY_BACKOFF_BASE_MS: int(1_000, 1),
  /**
   * Merchant refunds: how long after a cancel in doubt went out an answered query that shows no
   * trace of it ends it FAILED (a slow cancel may still commit inside it; one that commits later is
   * found by reconciliation). The cancel itself is never sent again.
   */
  REFUND_SETTLE_MS: int(120_000, 1_000),
  /** How often each worker process looks for refunds that are due. */
  REFUND_TICK_MS: int(100, 10),
  RETRY_BACKOFF_MAX_MS: int(30_000, 1),
  /**
   * How long after intake a confirm that got no answer may still charge: the PG's 30-minute
   * payment session plus a minute for clocks. A cancel that finds nothing is trusted only after it.
   */
  LATE_CONFIRM_HORIZON_MS: int(31 * 60_000, 1),

  // Queue and intake
  /** The backlog ceiling, in seconds of work at the PG's rate (503 past it). */
  BACKLOG_MAX_SECONDS: int(1_200, 1),
  /** Merchants' weights in the fair share of the PG's budget (see {@link merchantWeights}). */
  MERCHANT_WEIGHTS: merchantWeights,
  /**
   * How far ahead of the PG the workers admit payments from the merchants' fair queues into the
   * confirm queue, in ms of the PG's rate: the admitted-and-not-yet-sent payments are kept near
   * this lead. Enough to keep the gate's waiters from running dry between admissions; a new
   * payment of a merchant with nothing waiting reaches the PG about this much later.
   */
  ADMIT_LEAD_MS: int(300, 20),
  /**
   * How often the worker processes, together, top the admitted payments up to ADMIT_LEAD_MS:
   * each process every ADMIT_TICK_MS × WORKER_PROCESSES ({@link admitTickMs}).
   */
  ADMIT_TICK_MS: int(20, 1),
  /** A payment still QUEUED past this age is not sent: FAILED EXPIRED_IN_QUEUE. */
  QUEUE_MAX_AGE_MS: int(25 * 60_000, 1),
  /**
   * First sends at once per worker process (admission takes no more), and as many confirm jobs;
   * 0 = 1.5 × this process's connection share. Each holds its place for the whole PG round trip,
   * so by Little's law the pool needs more than rate × latency in flight (500/s × ~0.25 s ≈ 125),
   * plus some waiting at the gate.
   */
  WORKER_CONCURRENCY: int(0, 0),
  RESOLVE_CONCURRENCY: int(50, 1),
  /**
   * BullMQ job lock, renewed every half of it while the job runs: a killed worker's jobs are
   * picked up again after about this long plus WORKER_STALLED_CHECK_MS. A job whose lock lapsed
   * may run in two workers; the phase guard and the payment's single PG Idempotency-Key make that
   * safe (README, "A worker dies").
   */
  WORKER_LOCK_MS: int(5_000, 1_000),
  /** How often a worker looks for jobs whose lock lapsed (a dead worker's). */
  WORKER_STALLED_CHECK_MS: int(1_500, 100),
  /** How long a worker waits for in-flight PG calls on SIGTERM before handing the jobs back. */
  WORKER_SHUTDOWN_GRACE_MS: int(15_000, 0),
  /** Worker metrics port for Prometheus (0 = off). */
  WORKER_METRICS_PORT: int(0),
  PAYMENT_RETENTION_MS: int(30 * 24 * 3_600_000, 60_000),
  /**
   * The books (PostgreSQL): the system of record. The drainer writes there; the API reads what
   * Redis has forgotten. Required by the drainer (see {@link required}).
   */
  DATABASE_URL: z.string().url().optional(),
  /** How long Redis keeps a final payment once the books hold it (then only its idempotency record). */
  PAYMENT_HOT_MS: int(15 * 60_000, 1_000),
  /** Changes the drainer writes per PostgreSQL transaction. */
  DRAIN_BATCH_SIZE: int(500, 1),
  /** A drainer's unacknowledged changes are taken over by another after this long (a drainer that died). */
  DRAIN_CLAIM_IDLE_MS: int(30_000, 1_000),
  /** After a read that did not fill a batch, how long the drainer waits for more before it writes. */
  DRAIN_LINGER_MS: int(250, 0),
  IDEMPOTENCY_TTL_MS: int(24 * 3_600_000, 60_000),
  RECONCILE_INTERVAL_MS: int(60_000, 1_000),
  /** The window of the PG's book each run reads; it must exceed the longest delay from a PG commit to its row appearing. */
  RECONCILE_LOOKBACK_MS: int(10 * 60_000, 60_000),
  SWEEP_INTERVAL_MS: int(5_000, 100),

  // API
  PORT: int(3000),
  /** Intake processes behind PORT on this machine (node:cluster); 1 = the API runs in its one process. */
  API_PROCESSES: z.coerce.number().int().min(1).max(64).default(1),
  HOST: z.string().default('127.0.0.1'),
  TRUST_PROXY: z.string().default('false'),
  BODY_LIMIT_BYTES: int(16_384, 256),
  /**
   * A request whose headers and body have not all arrived this long after its first byte is
   * answered 408 and its connection closed (Node's requestTimeout and headersTimeout).
   */
  REQUEST_TIMEOUT_MS: int(10_000, 500),
  /** Pepper for API-key hashes: HMAC-SHA-256(API_KEY_PEPPER, key). */
  /** Required by the API (see {@link required}). */
  API_KEY_PEPPER: z.string().min(16).optional(),
  MERCHANTS: merchantList,
  ADMIN_USER: z.string().min(1).optional(),
  ADMIN_PASSWORD: z.string().min(8).optional(),
  BULL_BOARD_READ_ONLY: bool(true),
  // Webhooks
  /**
   * The key endpoint secrets are sealed with at rest (AES-256-GCM): 32 bytes in base64. Unset,
   * merchants cannot register endpoints (503 WEBHOOKS_UNAVAILABLE) and nothing is delivered.
   */
  WEBHOOK_ENCRYPTION_KEY: z.preprocess((v) => (v === '' ? undefined : v), z.string().regex(/^[A-Za-z0-9+/]{43}=$/, '32 bytes in base64 (44 characters)').optional()),
  /** Endpoints on loopback, private or link-local addresses are allowed (a receiver on the same network). */
  WEBHOOK_ALLOW_PRIVATE: bool(false),
  /** Deliveries at once per worker process. */
  WEBHOOK_CONCURRENCY: int(50, 1),
  /** How long a receiver has to answer a delivery. */
  WEBHOOK_TIMEOUT_MS: int(5_000, 100),
  /** Scales the retry schedule (1: the Standard Webhooks one); for tests and demos only. */
  WEBHOOK_RETRY_SCALE: num(1, 0.000001),
  /** This is a demo: the published demo secrets may be in force (see demo.ts). */
  SLUICE_DEMO: bool(false),
  /** Failed operator logins allowed per client address, and per user name, in a window. */
  ADMIN_LOGIN_MAX_FAILURES: int(10, 1),
  /** The window of ADMIN_LOGIN_MAX_FAILURES; past the limit, logins wait for its end (429). */
  ADMIN_LOGIN_WINDOW_MS: int(15 * 60_000, 1_000),
}).superRefine((c, ctx) => {
  // Settings that parse one by one but cannot work together.
  if (c.GATE_MARGIN_MIN_MS > c.GATE_MARGIN_MAX_MS) {
    ctx.addIssue({ code: 'custom', path: ['GATE_MARGIN_MIN_MS'], message: `must not exceed GATE_MARGIN_MAX_MS (${c.GATE_MARGIN_MAX_MS})` });
  }
  // Every process needs at least one connection, and the shares must add up to no more than the PG's cap.
  if (c.WORKER_PROCESSES > c.PG_CONNECTIONS_TOTAL - c.PG_CONNECTIONS_HEADROOM) {
    ctx.addIssue({ code: 'custom', path: ['WORKER_PROCESSES'], message: `must not exceed PG_CONNECTIONS_TOTAL − PG_CONNECTIONS_HEADROOM (${c.PG_CONNECTIONS_TOTAL - c.PG_CONNECTIONS_HEADROOM})` });
  }
  try {
    for (const p of readProviderList(c) ?? []) {
      const connections = p.connections ?? c.PG_CONNECTIONS_TOTAL;
      if (c.WORKER_PROCESSES > connections - c.PG_CONNECTIONS_HEADROOM) {
        ctx.addIssue({ code: 'custom', path: ['PROVIDERS'], message: `provider "${p.id}": WORKER_PROCESSES (${c.WORKER_PROCESSES}) must not exceed its connections − PG_CONNECTIONS_HEADROOM (${connections - c.PG_CONNECTIONS_HEADROOM})` });
      }
    }
  } catch (err) {
    ctx.addIssue({ code: 'custom', path: [c.PROVIDERS ? 'PROVIDERS' : 'PROVIDERS_FILE'], message: err instanceof Error ? err.message : String(err) });
  }
  if (c.REDIS_CLUSTER_NODES) {
    if (c.REDIS_SENTINELS) ctx.addIssue({ code: 'custom', path: ['REDIS_CLUSTER_NODES'], message: 'set REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both' });
    // Every Lua script and BullMQ script touches several keys, which a cluster serves only from
    // one hash slot: the prefix's hash tag is where each family's slot comes from.
    if (hashTagOf(c.REDIS_PREFIX) === null) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_PREFIX'], message: `on Redis Cluster it must hold a hash tag, as in {${c.REDIS_PREFIX.replace(/[{}]/g, '') || 'sluice'}}, so that each script's keys share a hash slot` });
    }
  }
  if (c.REDIS_SHARDS > 256) ctx.addIssue({ code: 'custom', path: ['REDIS_SHARDS'], message: 'at most 256' });
  if (c.WORKER_FORKS !== undefined && c.WORKER_FORKS > c.WORKER_PROCESSES) {
    ctx.addIssue({ code: 'custom', path: ['WORKER_FORKS'], message: `must not exceed WORKER_PROCESSES (${c.WORKER_PROCESSES}), the count across all machines` });
  }
});

/** The parsed configuration. */
export type Config = z.infer<typeof EnvSchema>;

/** Parses the environment. Throws one readable error naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** Reads variables an app cannot run without; throws naming the missing one. */
export function required<K extends keyof Config>(c: Config, key: K): NonNullable<Config[K]> {
  const v = c[key];
  if (v === undefined || v === null || v === '') throw new Error(`Invalid configuration:\n  ${String(key)}: required`);
  return v as NonNullable<Config[K]>;
}

/**
 * How long Redis keeps a final payment the books hold: PAYMENT_HOT_MS, or longer when
 * reconciliation needs it (it finds the last RECONCILE_LOOKBACK_MS of payments in Redis, and runs
 * every RECONCILE_INTERVAL_MS).
 */
export function hotWindowMs(c: Pick<Config, 'PAYMENT_HOT_MS' | 'RECONCILE_LOOKBACK_MS' | 'RECONCILE_INTERVAL_MS'>): number {
  return Math.max(c.PAYMENT_HOT_MS, c.RECONCILE_LOOKBACK_MS + 2 * c.RECONCILE_INTERVAL_MS);
}

/** One provider: its id, its routing weight, and the config with its PG_* values. */
export interface Provider {
  id: string;
  weight: number;
  config: Config;
}

/**
 * The providers, each with a Config whose PG_* values (and PG_PROVIDER) are its own: the PG_*
 * variables as the one provider when PROVIDERS is not set, else each entry over them.
 */
export function providersOf(c: Config): Provider[] {
  const list = readProviderList(c);
  if (!list) return [{ id: c.PG_PROVIDER, weight: 1, config: c }];
  return list.map((p) => ({
    id: p.id,
    weight: p.weight,
    config: {
      ...c,
      PG_PROVIDER: p.id,
      PG_BASE_URL: p.baseUrl ?? c.PG_BASE_URL,
      PG_SECRET_KEY: p.secretKey ?? c.PG_SECRET_KEY,
      PG_RATE_LIMIT: p.rateLimit ?? c.PG_RATE_LIMIT,
      PG_RATE_WINDOW_MS: p.rateWindowMs ?? c.PG_RATE_WINDOW_MS,
      PG_CONNECTIONS_TOTAL: p.connections ?? c.PG_CONNECTIONS_TOTAL,
      PG_KEEPALIVE_TIMEOUT_MS: p.keepAliveTimeoutMs ?? c.PG_KEEPALIVE_TIMEOUT_MS,
      PG_CONNECT_TIMEOUT_MS: p.connectTimeoutMs ?? c.PG_CONNECT_TIMEOUT_MS,
      PG_HEADERS_TIMEOUT_MS: p.headersTimeoutMs ?? c.PG_HEADERS_TIMEOUT_MS,
      PG_HEADERS_TIMEOUT_MIN_MS: p.headersTimeoutMinMs ?? c.PG_HEADERS_TIMEOUT_MIN_MS,
      PG_BODY_TIMEOUT_MS: p.bodyTimeoutMs ?? c.PG_BODY_TIMEOUT_MS,
    },
  }));
}

/**
 * Where a provider's own keys live (its breaker, gate, PG chart, approvals, outbox, queues): under
 * the prefix itself for the default provider (so one PG keeps the keys it always had), else under
 * `<prefix>:p:<id>`.
 */
export function providerKeyPrefix(prefix: string, provider: string): string {
  return provider === DEFAULT_PROVIDER ? prefix : `${prefix}:p:${provider}`;
}

/** A merchant's weight in the fair share (MERCHANT_WEIGHTS; 1 when not listed). */
export function merchantWeight(c: Pick<Config, 'MERCHANT_WEIGHTS'>, merchantId: string): number {
  return Object.hasOwn(c.MERCHANT_WEIGHTS, merchantId) ? c.MERCHANT_WEIGHTS[merchantId]! : 1;
}

/** The most payments admitted and not yet sent: ADMIT_LEAD_MS of the PG's rate, at least one. */
export function admitLead(c: Pick<Config, 'ADMIT_LEAD_MS' | 'PG_RATE_LIMIT' | 'PG_RATE_WINDOW_MS'>): number {
  return Math.max(1, Math.ceil((c.ADMIT_LEAD_MS * c.PG_RATE_LIMIT) / c.PG_RATE_WINDOW_MS));
}

/**
 * How long an admitted payment counts against the lead: three leads, at least a second. Past it,
 * it is held up somewhere (a dead worker's job waits for its lock to lapse) and no longer keeps
 * the live workers from admitting; under a slow PG it lets the confirm queue grow past the lead
 * by at most a lead per this long.
 */
export function admittedStaleMs(c: Pick<Config, 'ADMIT_LEAD_MS'>): number {
  return Math.max(1_000, 3 * c.ADMIT_LEAD_MS);
}

/**
 * How often one worker process admits: ADMIT_TICK_MS × WORKER_PROCESSES, so that all of them
 * together admit about every ADMIT_TICK_MS, but at least four times per ADMIT_LEAD_MS, so that a
 * process left alone still refills the lead before it runs dry. Each admission then moves more
 * payments at once (BullMQ's cost per job falls with the batch), and four processes do not make
 * four times the admission calls.
 */
export function admitTickMs(c: Pick<Config, 'ADMIT_TICK_MS' | 'ADMIT_LEAD_MS' | 'WORKER_PROCESSES'>): number {
  return Math.max(1, Math.min(c.ADMIT_TICK_MS * c.WORKER_PROCESSES, Math.floor(c.ADMIT_LEAD_MS / 4)));
}

/** Confirm jobs at once in this worker process. */
export function workerConcurrency(c: ConnectionSettings & Pick<Config, 'WORKER_CONCURRENCY'>): number {
  return c.WORKER_CONCURRENCY > 0 ? c.WORKER_CONCURRENCY : Math.ceil(connectionsPerProcess(c) * 1.5);
}

type ConnectionSettings = Pick<Config, 'PG_CONNECTIONS_TOTAL' | 'PG_CONNECTIONS_HEADROOM' | 'WORKER_PROCESSES'>;

/** The per-process share of the PG's connection cap, less the headroom. */
export function connectionsPerProcess(c: ConnectionSettings): number {
  return Math.max(1, Math.floor((c.PG_CONNECTIONS_TOTAL - c.PG_CONNECTIONS_HEADROOM) / c.WORKER_PROCESSES));
}

/** Of this process's share, the connections only inquiries and cancels may use (at least one, less than the share). */
export function reservedConnectionsPerProcess(c: ConnectionSettings & Pick<Config, 'PG_CONNECTIONS_RESERVED'>): number {
  const share = connectionsPerProcess(c);
  if (share < 2 || c.PG_CONNECTIONS_RESERVED === 0) return 0;
  return Math.min(share - 1, Math.max(1, Math.floor(c.PG_CONNECTIONS_RESERVED / c.WORKER_PROCESSES)));
}

/**
 * Where webhooks may go (`@sluice/webhooks` AddressPolicy): plain http only outside production;
 * private, loopback and link-local addresses only with WEBHOOK_ALLOW_PRIVATE.
 */
export function webhookPolicyOf(c: Pick<Config, 'NODE_ENV' | 'WEBHOOK_ALLOW_PRIVATE'>): { allowHttp: boolean; allowPrivate: boolean } {
  return { allowHttp: c.NODE_ENV !== 'production', allowPrivate: c.WEBHOOK_ALLOW_PRIVATE };
}

/** A config for tests: the given overrides on top of working defaults. */
export function testConfig(overrides: Record<string, string | number | boolean> = {}): Config {
  const base: Record<string, string> = {
    PG_BASE_URL: 'http://127.0.0.1:1',
    PG_SECRET_KEY: 'test_sk_sluice_demo',
    API_KEY_PEPPER: 'test-pepper-0123456789',
    LOG_LEVEL: 'silent',
    SLUICE_DEMO: 'true',
    WEBHOOK_ENCRYPTION_KEY: 'ZGVtby13ZWJob29rLWtleS1jaGFuZ2UtbWUtMDAwMDA=',
  };
  for (const [k, v] of Object.entries(overrides)) base[k] = String(v);
  return loadConfig(base);
}
export { hashApiKey } from './api-keys.ts';
export { describeRedisTarget, hashTagOf, parseNodes, slotPrefix, parseSentinels, redisTargetOf, type NodeAddress, type RedisTarget, type SentinelAddress } from './redis-target.ts';
export { DEFAULT_PROVIDER, PROVIDER_ID, ProviderEntrySchema, readProviderList, type ProviderEntry } from './providers.ts';
export { DEMO_SECRETS, demoSecretsInUse, refuseDemoSecrets } from './demo.ts';
export { WORKER_NODE_FLAGS, WORKER_SEMI_SPACE_MB, WORKER_YOUNG_GENERATION_MB } from './node-flags.ts';

/* The README's configuration table, generated from the schema and VARIABLE_DOCS (`npm run gen:docs`). */

function defaultText(value: unknown): string {
  if (value === undefined) return '—';
  if (Array.isArray(value)) return value.length === 0 ? 'empty' : `\`${value.join(',')}\``;
  if (typeof value === 'object' && value !== null) return Object.keys(value).length === 0 ? 'empty' : `\`${JSON.stringify(value)}\``;
  return `\`${String(value)}\``;
}

/**
 * The table, one row per entry, defaults as the schema parses an empty environment. Throws when a
 * schema variable has no entry, or an entry names a variable the schema lacks.
 */
export function configurationTable(): string {
  const defaults = EnvSchema.parse({}) as Record<string, unknown>;
  const schema = Object.keys(EnvSchema.shape);
  const documented = VARIABLE_DOCS.flatMap((d) => d.variables);
  const missing = schema.filter((k) => !documented.includes(k));
  const unknown = documented.filter((k) => !schema.includes(k));
  if (missing.length + unknown.length > 0) throw new Error(`configuration docs: missing ${missing.join(', ') || 'none'}; unknown ${unknown.join(', ') || 'none'}`);
  const rows = VARIABLE_DOCS.map((d) => {
    const first = d.variables[0]!;
    const dflt = d.note?.startsWith('!') ? d.note.slice(1) : [defaultText(defaults[first]), d.note].filter(Boolean).join(' ');
    return `| ${d.variables.map((v) => `\`${v}\``).join(', ')} | ${dflt} | ${d.meaning} |`;
  });
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
