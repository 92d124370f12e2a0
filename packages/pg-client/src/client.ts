/**
 * The PG adapter. Every request to the PG goes through `PgClient.send`, the one function that:
 * 1. takes a connection from this process's share of the PG's cap (bounded wait);
 * 2. waits for a permit from the global gate (no way around it);
 * 3. runs the caller's guard (the payment's phase and the circuit breaker) right before sending;
 * 4. re-takes a permit if the send would be later than the gate's margin covers, checked both
 *    before the request is handed to undici and as undici writes it (late-guard.ts), and then
 *    asks the guard again: the new slot may come long after the phase and breaker were read;
 * 5. sends, and classifies the result with the domain's outcome table.
 * It never throws for anything the PG or the network does: it returns what happened.
 */
import { classify, isPgFailure, type PgCall, type PgOutcome, type PgRaw } from '@sluice/domain';
import { Pool, type Dispatcher } from 'undici';
import { LATE_CHECK, lateGuard, SendTooLate } from './late-guard.ts';
import type { PermitSource, Priority } from './permits.ts';
import { Semaphore } from './semaphore.ts';
import { CALL_HEADER, track } from './send-tracker.ts';

export interface PgClientOptions {
  baseUrl: string;
  secretKey: string;
  /** This process's share of the PG's connection cap. */
  connections: number;
  connectTimeoutMs: number;
  /** The read timeout: no answer headers this long after the write make the call "no answer". */
  headersTimeoutMs: number;
  /**
   * How long the connection of a call past its read timeout stays open for the late answer
   * (the PG goes on processing, and may count the connection until it answers); then it is closed.
   */
  abandonAfterMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  poolWaitTimeoutMs: number;
}

/**
 * What a guard answers: `null` to send, or the reason not to (returned to the caller as is).
 * `recheck` is true when the call already passed once and has since taken a later send slot.
 */
export type Guard<R> = (recheck: boolean) => Promise<R | null>;

export interface CallOptions<R> {
  idempotencyKey?: string;
  requestId?: string;
  guard?: Guard<R>;
}

export type CallResult<R> =
  | { refused: false; outcome: PgOutcome; raw: PgRaw; latencyMs: number }
  | { refused: true; refusal: R };

export interface CallObserver {
  /** Called once per request that left (or tried to leave) this process. */
  /**
   * One call's result. `sentAtMs` is when its headers went onto the socket (this process's
   * clock), or null when nothing was written.
   */
  onResult?(call: PgCall, raw: PgRaw, outcome: PgOutcome, pgFailed: boolean, latencyMs: number, sentAtMs: number | null): void;
  /** Time spent waiting for the connection share and the permit (ms). */
  onGateWait?(call: PgCall, ms: number): void;
}

/**
 * How many send slots in a row a call may find too late before it gives up as not sent (the
 * caller backs off). Each new slot pays the guard's Redis round trip before its check, so a
 * Redis slower than the margin allows would otherwise burn slots without end.
 */
const MAX_LATE_PERMITS = 8;

const PRIORITY: Record<PgCall, Priority> = { confirm: 'low', transactions: 'low', inquire: 'high', cancel: 'high' };

function errorCode(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code ?? e?.cause?.code ?? (err instanceof Error ? err.name : 'UNKNOWN');
}

export class PgClient {
  readonly pool: Pool;
  /** The pool, with the permit checked again at the moment each request is written. */
  private readonly dispatcher: Dispatcher;
  private readonly auth: string;
  private readonly connections: Semaphore;
  /** The base URL's path (`http://pg/api` → `/api`), put before every request's `/v1/...`. */
  private readonly pathPrefix: string;
  /** Calls waiting for their answer within their read timeout (what close() lets finish). */
  private readonly live = new Set<Promise<void>>();

  constructor(
    private readonly o: PgClientOptions,
    private readonly permits: PermitSource,
    private readonly observer: CallObserver = {},
  ) {
    this.auth = `Basic ${Buffer.from(`${o.secretKey}:`).toString('base64')}`;
    this.connections = new Semaphore(o.connections);
    const base = new URL(o.baseUrl);
    this.pathPrefix = base.pathname.replace(/\/+$/, '');
    // undici's Pool takes an origin only.
    this.pool = new Pool(base.origin, {
      connections: o.connections,
      pipelining: 1,
      connect: { timeout: o.connectTimeoutMs },
      // The read timeout is pg-client's own (below); undici closes the connection only later.
      headersTimeout: o.abandonAfterMs,
      bodyTimeout: o.bodyTimeoutMs,
      keepAliveTimeout: o.keepAliveTimeoutMs,
      keepAliveMaxTimeout: o.keepAliveTimeoutMs,
    });
    this.dispatcher = this.pool.compose(lateGuard);
  }

  confirm<R>(p: { paymentKey: string; orderId: string; amount: number }, opts: CallOptions<R>): Promise<CallResult<R>> {
    return this.send('confirm', 'POST', '/v1/payments/confirm', p, opts);
  }

  inquire<R>(paymentKey: string, opts: CallOptions<R> = {}): Promise<CallResult<R>> {
    return this.send('inquire', 'GET', `/v1/payments/${encodeURIComponent(paymentKey)}`, undefined, opts);
  }

  cancel<R>(paymentKey: string, cancelReason: string, opts: CallOptions<R>): Promise<CallResult<R>> {
    return this.send('cancel', 'POST', `/v1/payments/${encodeURIComponent(paymentKey)}/cancel`, { cancelReason }, opts);
  }

  transactions<R>(q: { startDate: string; endDate: string; startingAfter?: string; limit?: number }, opts: CallOptions<R> = {}): Promise<CallResult<R>> {
    const qs = new URLSearchParams({ startDate: q.startDate, endDate: q.endDate, limit: String(q.limit ?? 10_000) });
    if (q.startingAfter) qs.set('startingAfter', q.startingAfter);
    return this.send('transactions', 'GET', `/v1/transactions?${qs}`, undefined, opts);
  }

  /** Connections of this process's share now in use. */
  inFlight(): number {
    return this.connections.inUse();
  }

  /**
   * Lets calls in flight get their answers or reach their read timeout (bounded), then closes
   * every connection, including those still waiting past a read timeout: their calls were reported.
   */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const cap = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.o.headersTimeoutMs + this.o.bodyTimeoutMs);
    });
    try {
      await Promise.race([Promise.allSettled([...this.live]), cap]);
    } finally {
      clearTimeout(timer);
    }
    await this.pool.destroy().catch(() => undefined);
  }

  /** The one function every PG request goes through. */
  async send<R>(call: PgCall, method: 'GET' | 'POST', path: string, body: unknown, opts: CallOptions<R>): Promise<CallResult<R>> {
    const waitStart = performance.now();
    if (!(await this.connections.acquire(this.o.poolWaitTimeoutMs))) {
      const raw: PgRaw = { transport: 'not_sent', reason: 'pool_wait_timeout' };
      return this.finish(call, raw, 0, null);
    }
    // Set when the call returns at its read timeout while its connection waits for the answer.
    let connectionHeld: Promise<unknown> | null = null;
    try {
      let permit = await this.permits.acquire(PRIORITY[call]);
      let recheck = false;
      let waited = false;
      let late = 0;
      const headers: Record<string, string> = { authorization: this.auth };
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
      if (opts.requestId) headers['x-request-id'] = opts.requestId;
      const payload = body === undefined ? null : JSON.stringify(body);
      for (;;) {
        // The caller's guard, right before sending; again after a new permit (see 4. above).
        if (opts.guard) {
          const refusal = await opts.guard(recheck);
          if (refusal !== null) return { refused: true, refusal };
        }
        recheck = true;
        // The send-side guard: never before the slot (acquire resolves at it), never later than
        // the margin covers. A late send takes a new slot instead.
        if (this.permits.isTooLate(permit)) {
          if (++late >= MAX_LATE_PERMITS) return this.finish(call, { transport: 'not_sent', reason: 'late_permits' }, 0, null);
          permit = await this.permits.acquire(PRIORITY[call]);
          continue;
        }
        if (!waited) {
          this.observer.onGateWait?.(call, performance.now() - waitStart);
          waited = true;
        }
        const slot = permit;
        // The read timeout runs from the write. When it fires first, the call returns "no answer"
        // (in doubt) at once, but its connection stays open and counted until the late answer
        // is read or `abandonAfterMs` passes: the PG goes on processing, and may count it.
        let readTimer: NodeJS.Timeout | undefined;
        let headersIn = false;
        let onWritten = (): void => undefined;
        let ceiling: NodeJS.Timeout | undefined;
        const readTimeout = new Promise<'timeout'>((resolve) => {
          onWritten = () => {
            if (!headersIn) readTimer = setTimeout(() => resolve('timeout'), this.o.headersTimeoutMs);
          };
          // A ceiling from now, should the write go unseen: a connection opens within its
          // timeout, and the request is written at once on it.
          ceiling = setTimeout(() => resolve('timeout'), this.o.connectTimeoutMs + this.o.headersTimeoutMs + 1_000);
        });
        const t = track((at) => {
          this.permits.sent(slot, at);
          onWritten();
        });
        headers[CALL_HEADER] = t.id;
        const started = performance.now();
        const exchange = (async () => {
          const res = await this.dispatcher.request({
            method, path: this.pathPrefix + path, headers, body: payload,
            // Checked once more as undici writes the request: whatever delayed it since the check
            // above (an event loop, a thread not scheduled, a connection opening) counts too.
            [LATE_CHECK]: () => this.permits.isTooLate(slot),
          } as Dispatcher.RequestOptions);
          headersIn = true;
          clearTimeout(readTimer);
          clearTimeout(ceiling);
          return { statusCode: res.statusCode, text: await res.body.text() };
        })();
        const raced = Promise.race([exchange, readTimeout]);
        const returned = raced.then(() => undefined, () => undefined);
        this.live.add(returned);
        try {
          const first = await raced;
          if (first === 'timeout') {
            connectionHeld = exchange.catch(() => undefined);
            return this.finish(call, { transport: 'no_answer', reason: 'UND_ERR_HEADERS_TIMEOUT' }, performance.now() - started, t.sentAtMs());
          }
          const { statusCode, text } = first;
          let parsed: unknown = null;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            parsed = null;
          }
          return this.finish(call, { transport: 'answered', httpStatus: statusCode, body: parsed }, performance.now() - started, t.sentAtMs());
        } catch (err) {
          // Not written, and the connection is still there: take a new slot and try again.
          if (err instanceof SendTooLate) {
            if (++late >= MAX_LATE_PERMITS) return this.finish(call, { transport: 'not_sent', reason: 'late_permits' }, 0, null);
            permit = await this.permits.acquire(PRIORITY[call]);
            continue;
          }
          const code = errorCode(err);
          // Only what provably never left is "not sent": no header was written (a connect error,
          // or a request still queued). Once the headers went out the PG may have read them,
          // whatever the error says.
          const sentAt = t.sentAtMs();
          const raw: PgRaw = sentAt === null ? { transport: 'not_sent', reason: code } : { transport: 'no_answer', reason: code };
          return this.finish(call, raw, performance.now() - started, sentAt);
        } finally {
          clearTimeout(readTimer);
          clearTimeout(ceiling);
          this.live.delete(returned);
          t.done();
        }
      }
    } finally {
      if (connectionHeld) void connectionHeld.finally(() => this.connections.release());
      else this.connections.release();
    }
  }

  private finish<R>(call: PgCall, raw: PgRaw, latencyMs: number, sentAtMs: number | null): CallResult<R> {
    const outcome = classify(call, raw);
    if (raw.transport === 'answered' && raw.httpStatus === 429) this.permits.rateLimited();
    this.observer.onResult?.(call, raw, outcome, isPgFailure(raw), latencyMs, sentAtMs);
    return { refused: false, outcome, raw, latencyMs };
  }
}
