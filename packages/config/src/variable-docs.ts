/**
 * The configuration reference: one entry per variable of {@link EnvSchema}, beside it, from which
 * the README's configuration table is generated (`npm run gen:docs`); a test fails when the two
 * differ or a variable has no entry. Defaults are read from the schema itself, so they cannot drift.
 */

/** One row: its variables (usually one), what to say after the default (or, `!…`, instead of it), and what it means. */
export interface VariableDoc {
  variables: string[];
  /** Text after the schema's default (`(31 min)`), or `!text` to stand instead of it (no default). */
  note?: string;
  meaning: string;
}

/** Every variable's entry of the README's configuration table, in the table's order. */
export const VARIABLE_DOCS: VariableDoc[] = [
  { variables: ["NODE_ENV"], meaning: "the usual" },
  { variables: ["LOG_LEVEL"], meaning: "pino level (`silent` … `trace`)" },
  { variables: ["REDIS_URL"], meaning: "Redis for state and queues" },
  { variables: ["REDIS_PREFIX"], meaning: "prefix of every key; `{sluice}` on Redis Cluster" },
  { variables: ["REDIS_ALLOW_EVICTION"], meaning: "start even if Redis may evict keys (never in production)" },
  { variables: ["PG_BASE_URL"], note: "!— (worker: required)", meaning: "the PG's base URL, http or https, without credentials, query or fragment; a path is kept (`https://pg.example/api` → `https://pg.example/api/v1/payments/confirm`)" },
  { variables: ["PG_SECRET_KEY"], note: "!— (worker: required)", meaning: "the PG account's secret key (Basic auth)" },
  { variables: ["PG_CURRENCY"], meaning: "the PG account's one currency" },
  { variables: ["PG_RATE_LIMIT"], meaning: "PG requests allowed per window" },
  { variables: ["PG_RATE_WINDOW_MS"], meaning: "the PG's rolling window" },
  { variables: ["PG_CONNECTIONS_TOTAL"], meaning: "the PG's connection cap, shared by all worker processes" },
  { variables: ["PG_CONNECTIONS_HEADROOM"], meaning: "connections of the cap left unused: the PG frees a closed one only once it sees the close" },
  { variables: ["PG_CONNECTIONS_RESERVED"], meaning: "connections (of the total, split between processes) only inquiries and cancels may use; per process at least 1 and fewer than its share" },
  { variables: ["WORKER_PROCESSES"], meaning: "worker processes in all (all machines); each gets `(PG_CONNECTIONS_TOTAL − PG_CONNECTIONS_HEADROOM) ÷ WORKER_PROCESSES` connections; at most `PG_CONNECTIONS_TOTAL − PG_CONNECTIONS_HEADROOM`" },
  { variables: ["WORKER_FORKS"], note: "!`WORKER_PROCESSES`", meaning: "worker processes this machine's `worker` starts (at most `WORKER_PROCESSES`); one that dies is re-forked" },
  { variables: ["PG_CONNECT_TIMEOUT_MS"], meaning: "connect timeout (a connect error means \"not sent\")" },
  { variables: ["PG_HEADERS_TIMEOUT_MS"], meaning: "the read timeout's upper bound; past the read timeout the connection is closed and the outcome is in doubt. Timeouts at this bound count as PG failures for the breaker" },
  { variables: ["PG_HEADERS_TIMEOUT_MIN_MS"], meaning: "the read timeout's lower bound (capped at `PG_HEADERS_TIMEOUT_MS`)" },
  { variables: ["PG_HEADERS_TIMEOUT_FACTOR"], meaning: "the adaptive read timeout is this × the p75 latency observed per call type (≥ 1)" },
  { variables: ["PG_BODY_TIMEOUT_MS"], meaning: "body read timeout" },
  { variables: ["PG_KEEPALIVE_TIMEOUT_MS"], meaning: "idle keep-alive, below the PG's 4 s close" },
  { variables: ["PG_POOL_WAIT_TIMEOUT_MS"], meaning: "longest wait for a connection of this process's share" },
  { variables: ["PG_SENDER_THREAD"], meaning: "send from a dedicated thread whose event loop only waits for slots and sends" },
  { variables: ["GATE_ENABLED"], meaning: "the global permit gate (off only for the benchmark's baseline)" },
  { variables: ["GATE_MARGIN_MIN_MS"], meaning: "smallest safety margin, never spent on Sluice's own lateness: transit, the PG's reading delay (pauses in which it reads requests sent apart together) and its clock jitter (\"a few ms\" by contract); at most `GATE_MARGIN_MAX_MS`. Each ms costs ~0.1% of the budget" },
  { variables: ["GATE_MARGIN_MAX_MS"], meaning: "largest margin the adaptation (and a 429's doubling) may reach" },
  { variables: ["GATE_HORIZON_MS"], meaning: "how far ahead confirms may reserve slots" },
  { variables: ["GATE_PRIORITY_HORIZON_MS"], meaning: "how far ahead inquiries and cancels may reserve slots" },
  { variables: ["GATE_BATCH_MAX"], meaning: "most slots taken in one round trip" },
  { variables: ["BULLMQ_LIMITER_MAX"], meaning: "BullMQ's own fixed-window limiter (per `PG_RATE_WINDOW_MS`); 0 = off. Baseline only" },
  { variables: ["BREAKER_CONSECUTIVE_FAILURES"], meaning: "consecutive PG failures that open the breaker" },
  { variables: ["BREAKER_FAILURE_RATE"], meaning: "failure rate that opens it" },
  { variables: ["BREAKER_MIN_CALLS"], meaning: "calls in the window before the rate counts" },
  { variables: ["BREAKER_WINDOW_MS"], meaning: "the failure-rate window" },
  { variables: ["BREAKER_OPEN_MS"], meaning: "how long it stays open before probing" },
  { variables: ["BREAKER_PROBE_INTERVAL_MS"], meaning: "one probe per interval while open or half-open" },
  { variables: ["BREAKER_CLOSE_AFTER"], meaning: "successful probes that close it" },
  { variables: ["RESOLVE_CANCEL_AFTER_MS"], meaning: "how long after its latest confirm a payment the PG still answers `IN_PROGRESS` is cancelled (≥ 1000)" },
  { variables: ["RESOLVE_MAX_RECONFIRMS"], meaning: "re-confirms after the PG said it holds nothing" },
  { variables: ["RESOLVE_FIRST_INQUIRY_DELAY_MS"], meaning: "longest wait before the first inquiry of a payment in doubt; the first look comes after the PG's observed median confirm latency when that is shorter" },
  { variables: ["RESOLVE_INQUIRY_GROWTH"], meaning: "each later inquiry comes when the time since the confirm has grown by this factor (≥ 1.1)" },
  { variables: ["RETRY_BACKOFF_BASE_MS"], meaning: "backoff base (1 s, 2 s, 4 s … with jitter)" },
  { variables: ["RETRY_BACKOFF_MAX_MS"], meaning: "backoff cap" },
  { variables: ["LATE_CONFIRM_HORIZON_MS"], note: "(31 min)", meaning: "how long after intake a confirm that got no answer may still charge: the PG's 30-minute payment session plus a minute for clocks; \"nothing to cancel\" is final only after it" },
  { variables: ["BACKLOG_MAX_SECONDS"], meaning: "the intake's ceiling, in seconds of work at `PG_RATE_LIMIT`" },
  { variables: ["QUEUE_MAX_AGE_MS"], meaning: "a payment still `QUEUED` past this is not sent: `FAILED EXPIRED_IN_QUEUE`" },
  { variables: ["WORKER_CONCURRENCY"], meaning: "confirm jobs at once per worker process; 0 = 1.5 × its connection share (300 with one process). A job holds its slot for the whole PG round trip" },
  { variables: ["RESOLVE_CONCURRENCY"], meaning: "in-doubt jobs at once per worker process" },
  { variables: ["WORKER_LOCK_MS"], meaning: "BullMQ job lock, renewed every half of it; a killed worker's jobs are taken over after about this plus `WORKER_STALLED_CHECK_MS`" },
  { variables: ["WORKER_STALLED_CHECK_MS"], meaning: "how often a worker looks for jobs whose lock lapsed" },
  { variables: ["WORKER_SHUTDOWN_GRACE_MS"], meaning: "how long SIGTERM waits for in-flight PG calls" },
  { variables: ["WORKER_METRICS_PORT"], meaning: "Prometheus `/metrics` of the worker processes on this port, bound to `HOST` (0 = off); with `WORKER_FORKS` > 1 the primary serves all forks' metrics aggregated (prom-client `AggregatorRegistry`): one port per machine" },
  { variables: ["PAYMENT_RETENTION_MS"], meaning: "the longest Redis keeps a payment the books do not hold yet (a backstop: the drainer archives each final payment long before)" },
  { variables: ["DATABASE_URL"], note: "!unset (`npm start`: a local PostgreSQL, else an embedded one)", meaning: "the books (PostgreSQL): required by the drainer; the API reads what Redis has forgotten from it" },
  { variables: ["PAYMENT_HOT_MS"], meaning: "how long Redis keeps a final payment once the books hold it; then only its idempotency record (at least `RECONCILE_LOOKBACK_MS` + 2 × `RECONCILE_INTERVAL_MS`: reconciliation reads that span from Redis)" },
  { variables: ["DRAIN_BATCH_SIZE"], meaning: "changes the drainer writes per PostgreSQL transaction" },
  { variables: ["DRAIN_CLAIM_IDLE_MS"], meaning: "a drainer's unacknowledged changes are taken over by another after this long" },
  { variables: ["IDEMPOTENCY_TTL_MS"], meaning: "idempotency keys kept (24 h)" },
  { variables: ["RECONCILE_INTERVAL_MS"], meaning: "how often reconciliation runs" },
  { variables: ["RECONCILE_LOOKBACK_MS"], meaning: "the window of the PG's book each run reads (10 min; runs overlap, since a late approval carries its own commit time)" },
  { variables: ["SWEEP_INTERVAL_MS"], meaning: "how often the outbox / live-job sweeper runs" },
  { variables: ["PORT"], meaning: "API port" },
  { variables: ["HOST"], meaning: "API address, and the workers' metrics port's (`0.0.0.0` in containers)" },
  { variables: ["TRUST_PROXY"], meaning: "Express `trust proxy` (`true`, a hop count, or addresses)" },
  { variables: ["BODY_LIMIT_BYTES"], meaning: "JSON body limit: a larger `Content-Length` is 413 at once, a body growing past it is cut off with a 413" },
  { variables: ["REQUEST_TIMEOUT_MS"], meaning: "a request whose headers and body have not all arrived by then is answered `408 REQUEST_TIMEOUT` and its connection closed" },
  { variables: ["API_KEY_PEPPER"], note: "!— (API: required, ≥ 16 characters)", meaning: "the HMAC key for API-key hashes" },
  { variables: ["MERCHANTS"], meaning: "`merchantId:hmacHex,…`" },
  { variables: ["ADMIN_USER", "ADMIN_PASSWORD"], note: "!unset", meaning: "Basic auth for `/admin/*`, `/dashboard`, `/dashboard/data` and `/metrics` (password ≥ 8 characters); unset = those routes off" },
  { variables: ["SLUICE_DEMO"], meaning: "this is a demo: without it the API and the worker refuse to start while any of the demo's published secrets (the demo API key, pepper, admin password, the simulator's PG secret) is in force; `npm start` and `.env.demo` set it" },
  { variables: ["BULL_BOARD_READ_ONLY"], meaning: "bull-board without retry/clean/remove buttons, and every write under `/admin/queues` answered `405`" },
  { variables: ["ADMIN_LOGIN_MAX_FAILURES", "ADMIN_LOGIN_WINDOW_MS"], meaning: "failed operator logins allowed per client address (as `TRUST_PROXY` reads it) and per user name in a window; past it the operator pages answer `429 TOO_MANY_ATTEMPTS` with `Retry-After` until the window ends (counted in Redis, shared by every API process)" },
];
