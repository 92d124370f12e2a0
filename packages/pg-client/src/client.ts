/**
 * The PG adapter. Every request to the PG goes through `PgClient.send`, which reads in order:
 * 1. `send`: take a connection from this process's share of the PG's cap (bounded wait;
 *    inquiries and cancels may use a reserve that confirms cannot, connection-share.ts), and
 *    open it if it is not open (connections.ts), before any send slot is taken;
 * 2. `sendHeld`: wait for a permit from the global gate (no way around it), after the
 *    connection is held, so that the slot is not spent waiting for one. The caller's guard (the
 *    payment's phase and the circuit breaker) runs as soon as the gate assigns the slot, at most
 *    its horizon (GATE_HORIZON_MS, GATE_PRIORITY_HORIZON_MS) before it is due, and again for any
 *    new slot: its Redis round trip overlaps the wait for the slot instead of making the write
 *    late, and lateness is what the gate's margin must cover (a margin of M ms costs M/1000 of
 *    the PG's budget). The request goes out once both the slot and the guard's pass are in;
 * 3. `exchange`: write the request, refused at write time if it would be later than the slot's
 *    margin covers (late-guard.ts; a new slot is taken, never one handed back), and wait for
 *    the answer up to the read timeout in force (`readTimeoutNow`). At the read timeout the
 *    request is aborted, which closes its connection: the contract frees the place at once and
 *    the PG finishes the request, so the outcome is in doubt and the status inquiry learns it;
 * 4. `settle` and `report`: classify the result with the domain's outcome table, and hand one
 *    {@link CallReport} to the observer (metrics, the breaker's record).
 * It never throws for anything the PG or the network does: it returns what happened.
 */
import { connectionsPerProcess, required, reservedConnectionsPerProcess, type Config } from '@sluice/config';
import { classify, isPgFailure, READ_TIMEOUT, type PgCall, type PgOutcome, type PgRaw } from '@sluice/domain';
import type { Dispatcher } from 'undici';
import { ConnectionShare, type Lane } from './connection-share.ts';
import { Connections } from './connections.ts';
import { LATE_CHECK, SendTooLate } from './late-guard.ts';
import type { Permit, PermitSource, Priority } from './permits.ts';
import { ReadTimeouts, type ReadTimeoutBounds, type ReadTimeoutView } from './read-timeouts.ts';
import { CALL_HEADER, track } from './send-tracker.ts';

/** How the client reaches the PG, its share of the PG's connections, and its timeouts. */
export interface PgClientOptions {
  baseUrl: string;
  secretKey: string;
  /** This process's share of the PG's connection cap. */
  connections: number;
  /** Of that share, the connections only inquiries and cancels may use. */
  reservedConnections?: number;
  connectTimeoutMs: number;
  /** The read timeout's bounds and its factor over the observed p75 (read-timeouts.ts). */
  readTimeout: ReadTimeoutBounds;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  poolWaitTimeoutMs: number;
}

/** The client's options from the parsed config: this process's share of the PG's connections (less the headroom) and the timeouts. */
export function pgClientOptionsOf(config: Config): PgClientOptions {
  return {
    baseUrl: required(config, 'PG_BASE_URL'),
    secretKey: required(config, 'PG_SECRET_KEY'),
    connections: connectionsPerProcess(config),
    reservedConnections: reservedConnectionsPerProcess(config),
    connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
    readTimeout: { minMs: config.PG_HEADERS_TIMEOUT_MIN_MS, maxMs: config.PG_HEADERS_TIMEOUT_MS, factor: config.PG_HEADERS_TIMEOUT_FACTOR },
    bodyTimeoutMs: config.PG_BODY_TIMEOUT_MS,
    keepAliveTimeoutMs: config.PG_KEEPALIVE_TIMEOUT_MS,
    poolWaitTimeoutMs: config.PG_POOL_WAIT_TIMEOUT_MS,
  };
}

/**
 * What a guard answers: `null` to send, or the reason not to (returned to the caller as is).
 * `recheck` is true when the call already passed once and has since taken a later send slot.
 */
export type Guard<R> = (recheck: boolean) => Promise<R | null>;

/**
 * The body of a cancel: the contract's `cancelReason`, and `cancelAmount` for a partial cancel
 * (none cancels the whole balance).
 */
export interface CancelBody {
  cancelReason: string;
  cancelAmount?: number;
}

/** A call's Idempotency-Key, request id and guard. */
export interface CallOptions<R> {
  idempotencyKey?: string;
  requestId?: string;
  guard?: Guard<R>;
  /** The payment the call is for: reported (for the books), never sent. */
  paymentId?: string;
}

/** What a call came to: the classified outcome, or the guard's refusal. */
export type CallResult<R> =
  | { refused: false; outcome: PgOutcome; raw: PgRaw; report: CallReport }
  | { refused: true; refusal: R };

/** One PG call as it went: plain data, so that it can cross a thread. */
export interface CallReport {
  call: PgCall;
  transport: PgRaw['transport'];
  /** The PG's HTTP status when it answered, else null. */
  httpStatus: number | null;
  outcome: PgOutcome['kind'];
  /** Whether this tells the breaker the PG is failing (domain `isPgFailure`). */
  pgFailed: boolean;
  /** From the write to the answer's end (or to the read timeout, or the error); 0 if never written. */
  latencyMs: number;
  /** When the request's headers went onto the socket (this process's clock), or null. */
  sentAtMs: number | null;
  /** Waiting for the connection share and the send slot. */
  gateWaitMs: number;
  /** How long the call held its connection unit, from taking it to giving it back. */
  holdMs: number;
  /** The read timeout in force for this call. */
  timeoutMs: number;
  /** The payment it was for, and its Idempotency-Key (null when none). */
  paymentId: string | null;
  idempotencyKey: string | null;
}

/** Who hears of each call (metrics, the breaker's record). */
export interface CallObserver {
  /** One report per call that reached the connection share (sent or not), none for guard refusals. */
  onCall?(report: CallReport): void;
}

/** The client's own figures. */
export interface ClientStats {
  /** Connections of this process's share in use. */
  inFlight: number;
  /** Send slots taken and then not used: found too late at write, or refused by the guard after. */
  unusedSlots: number;
  readTimeouts: Record<PgCall, ReadTimeoutView>;
}

/**
 * How many send slots in a row a call may find too late before it gives up as not sent (the
 * caller backs off). Each new slot waits for the guard's Redis round trip, which overlaps the
 * wait for the slot only up to the gate's horizon, so a Redis slower than that plus the margin
 * would otherwise burn slots without end.
 */
const MAX_LATE_PERMITS = 8;

const PRIORITY: Record<PgCall, Priority> = { confirm: 'low', transactions: 'low', inquire: 'high', cancel: 'high' };
const LANE: Record<PgCall, Lane> = { confirm: 'general', transactions: 'general', inquire: 'resolution', cancel: 'resolution' };

function errorCode(err: unknown): string {
  const coded = err as { code?: string; cause?: { code?: string } };
  return coded?.code ?? coded?.cause?.code ?? (err instanceof Error ? err.name : 'UNKNOWN');
}

/** One request as pg-client sends it. */
interface Request {
  call: PgCall;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  payload: string | null;
}

/** What one write-and-wait came to. */
type Exchange =
  | { kind: 'answered'; statusCode: number; body: unknown; latencyMs: number; sentAtMs: number | null }
  | { kind: 'timeout'; latencyMs: number; sentAtMs: number | null }
  | { kind: 'error'; code: string; latencyMs: number; sentAtMs: number | null }
  | { kind: 'too_late' };

/** Where a call stands, for its report. */
interface Timing {
  heldAt: number;
  gateWaitMs: number;
  timeoutMs: number;
  paymentId: string | null;
  idempotencyKey: string | null;
}

/** The PG adapter: every PG request goes through its `send`. */
export class PgClient {
  private readonly connections: Connections;
  private readonly auth: string;
  private readonly share: ConnectionShare;
  readonly timeouts: ReadTimeouts;
  /** The base URL's path (`http://pg/api` → `/api`), put before every request's `/v1/...`. */
  private readonly pathPrefix: string;
  /** Calls holding a connection (what close() lets finish, bounded). */
  private readonly live = new Set<Promise<unknown>>();
  private unusedSlots = 0;

  constructor(
    private readonly options: PgClientOptions,
    private readonly permits: PermitSource,
    private readonly observer: CallObserver = {},
  ) {
    this.auth = `Basic ${Buffer.from(`${options.secretKey}:`).toString('base64')}`;
    this.share = new ConnectionShare(options.connections, options.reservedConnections ?? 0);
    this.timeouts = new ReadTimeouts(options.readTimeout);
    const base = new URL(options.baseUrl);
    this.pathPrefix = base.pathname.replace(/\/+$/, '');
    this.connections = new Connections({
      origin: new URL(base.origin),
      size: options.connections,
      connectTimeoutMs: options.connectTimeoutMs,
      // The read timeout is pg-client's own (exchange): undici's is only a backstop behind it.
      headersTimeoutMs: options.readTimeout.maxMs + 5_000,
      bodyTimeoutMs: options.bodyTimeoutMs,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs,
    });
  }

  confirm<R>(payment: { paymentKey: string; orderId: string; amount: number }, opts: CallOptions<R>): Promise<CallResult<R>> {
    return this.send('confirm', 'POST', '/v1/payments/confirm', payment, opts);
  }

  inquire<R>(paymentKey: string, opts: CallOptions<R> = {}): Promise<CallResult<R>> {
    return this.send('inquire', 'GET', `/v1/payments/${encodeURIComponent(paymentKey)}`, undefined, opts);
  }

  cancel<R>(paymentKey: string, body: CancelBody, opts: CallOptions<R>): Promise<CallResult<R>> {
    // Only the contract's two fields, whatever the caller's object holds.
    const sent: CancelBody = body.cancelAmount === undefined ? { cancelReason: body.cancelReason } : { cancelReason: body.cancelReason, cancelAmount: body.cancelAmount };
    return this.send('cancel', 'POST', `/v1/payments/${encodeURIComponent(paymentKey)}/cancel`, sent, opts);
  }

  transactions<R>(query: { startDate: string; endDate: string; startingAfter?: string; limit?: number }, opts: CallOptions<R> = {}): Promise<CallResult<R>> {
    const qs = new URLSearchParams({ startDate: query.startDate, endDate: query.endDate, limit: String(query.limit ?? 10_000) });
    if (query.startingAfter) qs.set('startingAfter', query.startingAfter);
    return this.send('transactions', 'GET', `/v1/transactions?${qs}`, undefined, opts);
  }

  stats(): ClientStats {
    return { inFlight: this.share.inUse(), unusedSlots: this.unusedSlots, readTimeouts: this.timeouts.view() };
  }

  /** Lets calls in flight get their answers or reach their read timeout (bounded), then closes every connection. */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const cap = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.readTimeout.maxMs + this.options.bodyTimeoutMs);
    });
    try {
      await Promise.race([Promise.allSettled([...this.live]), cap]);
    } finally {
      clearTimeout(timer);
    }
    await this.connections.destroy();
  }

  /** The one function every PG request goes through. */
  async send<R>(call: PgCall, method: 'GET' | 'POST', path: string, body: unknown, opts: CallOptions<R>): Promise<CallResult<R>> {
    const waitStart = performance.now();
    const timing: Timing = {
      heldAt: waitStart, gateWaitMs: 0, timeoutMs: this.timeouts.current(call),
      paymentId: opts.paymentId ?? null, idempotencyKey: opts.idempotencyKey ?? null,
    };
    const unit = await this.share.acquire(LANE[call], this.options.poolWaitTimeoutMs);
    if (unit < 0) {
      timing.gateWaitMs = performance.now() - waitStart;
      return this.report(call, { transport: 'not_sent', reason: 'pool_wait_timeout' }, timing, { latencyMs: 0, sentAtMs: null });
    }
    timing.heldAt = performance.now();
    const held = (async (): Promise<CallResult<R>> => {
      // The connection first, then the slot: a connection opened after the slot makes the write late.
      const refused = await this.connections.ready(unit);
      if (refused !== null) {
        timing.gateWaitMs = performance.now() - waitStart;
        return this.report(call, { transport: 'not_sent', reason: refused }, timing, { latencyMs: 0, sentAtMs: null });
      }
      return this.sendHeld(this.request(call, method, path, body, opts), opts, timing, waitStart, this.connections.dispatcher(unit));
    })();
    this.live.add(held);
    try {
      return await held;
    } finally {
      this.live.delete(held);
      this.share.release(unit);
    }
  }

  private request(call: PgCall, method: 'GET' | 'POST', path: string, body: unknown, opts: CallOptions<unknown>): Request {
    const headers: Record<string, string> = { authorization: this.auth };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
    if (opts.requestId) headers['x-request-id'] = opts.requestId;
    return { call, method, path: this.pathPrefix + path, headers, payload: body === undefined ? null : JSON.stringify(body) };
  }

  /** Steps 2–4 with the connection unit held. */
  private async sendHeld<R>(req: Request, opts: CallOptions<R>, timing: Timing, waitStart: number, dispatcher: Dispatcher): Promise<CallResult<R>> {
    let late = 0;
    for (let recheck = false; ; recheck = true) {
      // The guard starts when the slot is assigned (or at the slot, from a source that does not
      // say), and the request waits for both. Its pass is then at most the gate's horizon older
      // than the write: a decision to cancel made in between finds the payment `confirming`, as
      // it would with the request on the wire, and is handled the same way (domain decide.ts).
      const guarded: { pass: Promise<R | null> | null } = { pass: null };
      const startGuard = (): void => {
        if (!opts.guard || guarded.pass) return;
        // Called from inside the gate: a guard that throws must not throw there.
        try {
          guarded.pass = opts.guard(recheck);
        } catch (err) {
          guarded.pass = Promise.reject(err instanceof Error ? err : new Error(String(err)));
        }
        // Awaited below, after the slot: a failure meanwhile is not an unhandled rejection.
        guarded.pass.catch(() => undefined);
      };
      const permit = await this.permits.acquire(PRIORITY[req.call], startGuard);
      startGuard();
      const refusal = guarded.pass ? await guarded.pass : null;
      if (refusal !== null) {
        this.unusedSlots++;
        return { refused: true, refusal };
      }
      // Never before the slot (acquire resolves at it), never later than the margin covers.
      const result = this.permits.isTooLate(permit) ? ({ kind: 'too_late' } as const) : await this.exchange(req, permit, timing, waitStart, dispatcher);
      if (result.kind === 'too_late') {
        this.unusedSlots++;
        if (++late >= MAX_LATE_PERMITS) return this.report(req.call, { transport: 'not_sent', reason: 'late_permits' }, timing, { latencyMs: 0, sentAtMs: null });
        continue;
      }
      return this.settle(req.call, result, timing);
    }
  }

  /**
   * Writes the request on a held connection and waits for its answer up to the read timeout,
   * which runs from the write. At the timeout the request is aborted: undici destroys its socket,
   * which frees the PG's place at once (the contract), and the call is "no answer".
   */
  private async exchange(req: Request, slot: Permit, timing: Timing, waitStart: number, dispatcher: Dispatcher): Promise<Exchange> {
    timing.gateWaitMs = performance.now() - waitStart;
    timing.timeoutMs = this.readTimeoutNow(req.call);
    const abort = new AbortController();
    let readTimer: NodeJS.Timeout | undefined;
    let awaiting = false;
    const settled = (): void => {
      if (awaiting) this.share.answered();
      awaiting = false;
    };
    const tracker = track((at) => {
      this.permits.sent(slot, at);
      this.share.written();
      awaiting = true;
      readTimer = setTimeout(() => abort.abort(), timing.timeoutMs);
    });
    // A ceiling from now, should the write go unseen: a connection opens within its timeout, and
    // the request is written at once on it.
    const ceiling = setTimeout(() => abort.abort(), this.options.connectTimeoutMs + timing.timeoutMs + 1_000);
    const started = performance.now();
    const since = (): number => performance.now() - started;
    return (async (): Promise<Exchange> => {
      try {
        const res = await dispatcher.request({
          method: req.method, path: req.path, headers: { ...req.headers, [CALL_HEADER]: tracker.id }, body: req.payload, signal: abort.signal,
          // Checked once more as undici writes the request: whatever delayed it since the check
          // before (an event loop, a thread not scheduled, a connection opening) counts too.
          [LATE_CHECK]: () => this.permits.isTooLate(slot),
        } as Dispatcher.RequestOptions);
        clearTimeout(readTimer);
        clearTimeout(ceiling);
        settled();
        const sentAtMs = tracker.sentAtMs();
        this.timeouts.answered(req.call, sentAtMs === null ? since() : performance.timeOrigin + performance.now() - sentAtMs);
        const text = await res.body.text();
        let body: unknown = null;
        try {
          body = text ? JSON.parse(text) : null;
        } catch {
          body = null;
        }
        return { kind: 'answered', statusCode: res.statusCode, body, latencyMs: since(), sentAtMs };
      } catch (err) {
        // Not written, and the connection is still there: the caller takes a new slot.
        if (err instanceof SendTooLate) return { kind: 'too_late' };
        const sentAtMs = tracker.sentAtMs();
        if (abort.signal.aborted) {
          if (sentAtMs !== null) this.timeouts.timedOut(req.call, timing.timeoutMs);
          return { kind: 'timeout', latencyMs: since(), sentAtMs };
        }
        return { kind: 'error', code: errorCode(err), latencyMs: since(), sentAtMs };
      } finally {
        clearTimeout(readTimer);
        clearTimeout(ceiling);
        settled();
        tracker.done();
      }
    })();
  }

  /**
   * The read timeout for a call sent now. While the share has connections to spare, waiting
   * longer costs nothing and spares an inquiry: the upper bound. Once the PG holds most of them
   * with requests awaiting answers, each hung call keeps a payment from the PG: the adaptive
   * timeout, which follows the PG's observed latency (read-timeouts.ts).
   */
  private readTimeoutNow(call: PgCall): number {
    return this.share.short() ? this.timeouts.current(call) : this.options.readTimeout.maxMs;
  }

  /** What an exchange means for the caller. */
  private settle<R>(call: PgCall, result: Exclude<Exchange, { kind: 'too_late' }>, timing: Timing): CallResult<R> {
    const at = { latencyMs: result.latencyMs, sentAtMs: result.sentAtMs };
    switch (result.kind) {
      case 'answered':
        return this.report(call, { transport: 'answered', httpStatus: result.statusCode, body: result.body }, timing, at);
      case 'timeout': {
        // A timeout that fired before any write (the ceiling) is treated like one after it: in
        // doubt, the safe reading. At the upper bound it counts as a PG failure for the breaker.
        const reason = this.timeouts.atMax(timing.timeoutMs) ? READ_TIMEOUT.atMax : READ_TIMEOUT.adaptive;
        return this.report(call, { transport: 'no_answer', reason }, timing, at);
      }
      case 'error':
        // Only what provably never left is "not sent": no header was written (a connect error, or
        // a request still queued). Once the headers went out the PG may have read them, whatever
        // the error says.
        return this.report(call, { transport: result.sentAtMs === null ? 'not_sent' : 'no_answer', reason: result.code }, timing, at);
    }
  }

  private report<R>(call: PgCall, raw: PgRaw, timing: Timing, at: { latencyMs: number; sentAtMs: number | null }): CallResult<R> {
    const outcome = classify(call, raw);
    const httpStatus = raw.transport === 'answered' ? raw.httpStatus : null;
    if (httpStatus === 429) this.permits.rateLimited();
    const report: CallReport = {
      call, transport: raw.transport, httpStatus, outcome: outcome.kind, pgFailed: isPgFailure(raw),
      latencyMs: at.latencyMs, sentAtMs: at.sentAtMs, gateWaitMs: timing.gateWaitMs,
      holdMs: performance.now() - timing.heldAt, timeoutMs: timing.timeoutMs,
      paymentId: timing.paymentId, idempotencyKey: timing.idempotencyKey,
    };
    this.observer.onCall?.(report);
    return { refused: false, outcome, raw, report };
  }
}
