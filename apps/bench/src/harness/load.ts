/**
 * The load generator: `POST /v1/payments` through one undici Pool, either open-loop (sends are
 * scheduled by the wall clock and never wait for answers, so a slow server cannot slow the
 * offered rate down) or closed-loop (N connections each send as soon as their last answer came
 * back, which finds a server's saturation throughput).
 */
import { Pool } from 'undici';
import { BENCH_API_KEY } from './stack.ts';

/** One payment request: unique paymentKey, orderId and Idempotency-Key per index. */
export interface PaymentRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * The i-th payment of a run tagged `tag`. Every `declineEvery`-th one carries the simulator's
 * `sim_decline_` marker, so that a run has some declines to check against the ledger.
 */
export function paymentRequest(tag: string, i: number, declineEvery = 0, apiKey = BENCH_API_KEY, provider?: string): PaymentRequest {
  const decline = declineEvery > 0 && i % declineEvery === declineEvery - 1;
  const paymentKey = `${decline ? 'sim_decline_' : ''}pk_${tag}_${i}`;
  return {
    path: '/v1/payments',
    headers: {
      authorization: `Bearer ${apiKey}`,
      'content-type': 'application/json',
      'idempotency-key': `idem-${tag}-${i}`,
    },
    body: JSON.stringify({ paymentKey, orderId: `order-${tag}-${i}`, amount: 1_000 + (i % 1_000), ...(provider ? { provider } : {}) }),
  };
}

/** An undici Pool for the load generator, with this many connections to the API. */
export function createPool(url: string, connections: number): Pool {
  return new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
}

function errorCode(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code ?? e?.cause?.code ?? (err instanceof Error ? err.name : 'UNKNOWN');
}

/** What an open-loop run offered, what was accepted, and the latencies seen. */
export interface OpenLoopResult {
  offered: number;
  accepted: number;
  /** Payment ids from the 202 bodies. */
  ids: string[];
  /** Count per answer other than 202 (`503`, `error:ECONNRESET`, …). */
  others: Map<string, number>;
  /** Latency of each answered request, from its send (ms). */
  latency: Float64Array;
  /** How late each send left against its schedule (ms): the generator's own lag. */
  lag: Float64Array;
  /** Wall-clock (ms epoch) of the first scheduled send and of the last answer. */
  startedAt: number;
  lastAnswerAt: number;
}

/** An open-loop run: the rate, how long, the payments' tag, and callbacks. */
export interface OpenLoopOptions {
  rate: number;
  seconds: number;
  tag: string;
  declineEvery?: number;
  /** The merchant's API key (the bench's merchant by default). */
  apiKey?: string;
  /** The provider (PG) of every payment; none: the only one. */
  provider?: string;
  /** Called with running totals at least once per tick. */
  onTick?: (offered: number, accepted: number) => void;
  /** Called with each payment id as its 202 arrives. */
  onAccepted?: (id: string) => void;
}

/** Sends `rate × seconds` payments on the wall clock's schedule; resolves when all answered. */
export async function openLoop(pool: Pool, o: OpenLoopOptions): Promise<OpenLoopResult> {
  const total = Math.round(o.rate * o.seconds);
  const latency = new Float64Array(total).fill(Number.NaN);
  const lag = new Float64Array(total);
  const ids: string[] = [];
  const others = new Map<string, number>();
  let accepted = 0;
  let lastAnswer = 0;
  const interval = 1_000 / o.rate;
  const t0 = performance.now();
  const startedAt = Date.now();

  const send = async (i: number, scheduled: number): Promise<void> => {
    const req = paymentRequest(o.tag, i, o.declineEvery, o.apiKey, o.provider);
    const at = performance.now();
    lag[i] = at - scheduled;
    let outcome: string;
    try {
      const res = await pool.request({ method: 'POST', path: req.path, headers: req.headers, body: req.body });
      const text = await res.body.text();
      outcome = String(res.statusCode);
      if (res.statusCode === 202) {
        const id = (JSON.parse(text) as { id: string }).id;
        ids.push(id);
        o.onAccepted?.(id);
        accepted += 1;
      }
    } catch (err) {
      outcome = `error:${errorCode(err)}`;
    }
    const done = performance.now();
    latency[i] = done - at;
    lastAnswer = Math.max(lastAnswer, done);
    if (outcome !== '202') others.set(outcome, (others.get(outcome) ?? 0) + 1);
  };

  const pending: Promise<void>[] = [];
  let sent = 0;
  while (sent < total) {
    // Everything whose slot has come is sent now; timers fire every ~1 ms, so sends go out in
    // small bursts that stay on the schedule on average.
    const due = Math.min(total, Math.floor((performance.now() - t0) / interval) + 1);
    while (sent < due) {
      const i = sent++;
      pending.push(send(i, t0 + i * interval));
    }
    o.onTick?.(sent, accepted);
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  o.onTick?.(sent, accepted);
  return { offered: total, accepted, ids, others, latency, lag, startedAt, lastAnswerAt: startedAt + (lastAnswer - t0) };
}

/** What a closed-loop run got: requests, answers and latencies. */
export interface ClosedLoopResult {
  /** Requests answered inside the measured window. */
  requests: number;
  /** Requests sent, the warm-up's included. */
  sent: number;
  rps: number;
  status: Map<string, number>;
  latency: Float64Array;
}

/**
 * `connections` loops, each sending its next request as soon as the last was answered, for
 * `warmupS + seconds`; only answers inside the last `seconds` count.
 */
export async function closedLoop(
  url: string,
  o: {
    connections: number;
    warmupS: number;
    seconds: number;
    request: (i: number) => PaymentRequest;
    /** Stop after this many requests were sent (rps is then meaningless; the count is what matters). */
    stopAfter?: number;
    onTick?: (n: number) => void;
  },
): Promise<ClosedLoopResult> {
  const pool = createPool(url, o.connections);
  const status = new Map<string, number>();
  const lat: number[] = [];
  let next = 0;
  let counted = 0;
  const t0 = performance.now();
  const measureFrom = t0 + o.warmupS * 1_000;
  const end = measureFrom + o.seconds * 1_000;
  const loop = async (): Promise<void> => {
    while (performance.now() < end && (o.stopAfter === undefined || next < o.stopAfter)) {
      const req = o.request(next++);
      const at = performance.now();
      let outcome: string;
      try {
        const res = await pool.request({ method: 'POST', path: req.path, headers: req.headers, body: req.body });
        await res.body.text();
        outcome = String(res.statusCode);
      } catch (err) {
        outcome = `error:${errorCode(err)}`;
      }
      const done = performance.now();
      if (done >= measureFrom && done <= end) {
        counted += 1;
        lat.push(done - at);
        status.set(outcome, (status.get(outcome) ?? 0) + 1);
        if (counted % 1_000 === 0) o.onTick?.(counted);
      }
    }
  };
  await Promise.all(Array.from({ length: o.connections }, loop));
  await pool.close();
  return { requests: counted, sent: next, rps: counted / o.seconds, status, latency: Float64Array.from(lat) };
}
