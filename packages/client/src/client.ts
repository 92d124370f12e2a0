/**
 * The merchant's client of Sluice's API: typed, with nothing of Sluice's server in it.
 *
 * The one rule it keeps for the merchant: **a request it retries is the same request.** Each call
 * that creates something (a payment, a cancel) carries an Idempotency-Key, the caller's or one it
 * makes, and every retry of that call sends the same key, so a timeout or a dropped connection
 * never makes a second payment or a second refund. It retries what may have failed on the way
 * (network errors, 5xx, 503 with Retry-After), never an answer about the request itself (4xx).
 */
import { randomUUID } from 'node:crypto';

/** A payment as Sluice answers it. */
export interface Payment {
  id: string;
  paymentKey: string;
  orderId: string;
  amount: number;
  currency: string;
  provider: string;
  metadata: Record<string, string> | null;
  status: 'QUEUED' | 'PROCESSING' | 'APPROVED' | 'DECLINED' | 'FAILED' | 'CANCELED';
  attempts: number;
  createdAt: string;
  updatedAt: string;
  finalizedAt: string | null;
  transactionKey: string | null;
  approvedAt: string | null;
  failure: { code: string; message: string } | null;
  balanceAmount: number;
  cancels: { id: string; amount: number; reason: string; status: 'PENDING' | 'SUCCEEDED' | 'FAILED'; failure: { code: string; message: string } | null; createdAt: string; completedAt: string | null }[];
  eta: string | null;
}

/** What `createPayment` sends. */
export interface NewPayment {
  paymentKey: string;
  orderId: string;
  amount: number;
  currency?: string;
  provider?: string;
  metadata?: Record<string, string>;
}

/** An error answer of Sluice: its status, code and message. */
export class SluiceApiError extends Error {
  override readonly name = 'SluiceApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(`${status} ${code}: ${message}`);
  }
}

/** How the client is set up. */
export interface ClientOptions {
  /** Sluice's base URL, e.g. `https://pay.example.com`. */
  baseUrl: string;
  /** The merchant's API key. */
  apiKey: string;
  /** Tries per call, the first included (default 4). */
  maxAttempts?: number;
  /** How long one try may take (default 15 s; a long poll adds its wait). */
  timeoutMs?: number;
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch;
}

const FINAL = new Set(['APPROVED', 'DECLINED', 'FAILED', 'CANCELED']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The merchant's client. */
export class SluiceClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;
  private readonly attempts: number;
  private readonly timeoutMs: number;

  constructor(private readonly o: ClientOptions) {
    this.base = o.baseUrl.replace(/\/+$/, '');
    this.fetch = o.fetch ?? fetch;
    this.attempts = Math.max(1, o.maxAttempts ?? 4);
    this.timeoutMs = o.timeoutMs ?? 15_000;
  }

  /** Accepts a payment. Without `idempotencyKey`, one is made; every retry of this call sends the same. */
  createPayment(p: NewPayment, opts: { idempotencyKey?: string } = {}): Promise<Payment> {
    return this.call<Payment>('POST', '/v1/payments', p, opts.idempotencyKey ?? randomUUID());
  }

  /** A payment as it stands. */
  getPayment(id: string): Promise<Payment> {
    return this.call<Payment>('GET', `/v1/payments/${encodeURIComponent(id)}`);
  }

  /**
   * Waits until the payment is final (long polls of up to 30 s each, retried), or `timeoutMs`
   * passed; returns it as read last.
   */
  async waitForFinal(id: string, opts: { timeoutMs?: number } = {}): Promise<Payment> {
    const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
    for (;;) {
      const left = Math.ceil((deadline - Date.now()) / 1_000);
      const wait = Math.max(0, Math.min(30, left));
      const p = await this.call<Payment>('GET', `/v1/payments/${encodeURIComponent(id)}?wait=${wait}`, undefined, undefined, wait * 1_000);
      if (FINAL.has(p.status) || Date.now() >= deadline) return p;
    }
  }

  /** Cancels a payment in whole (no amount) or in part. The key is the caller's or made here, and kept across retries. */
  cancel(id: string, c: { reason: string; amount?: number }, opts: { idempotencyKey?: string } = {}): Promise<Payment> {
    return this.call<Payment>('POST', `/v1/payments/${encodeURIComponent(id)}/cancel`, c, opts.idempotencyKey ?? randomUUID());
  }

  /** The merchant's events in order, after the event `after`. */
  listEvents(opts: { after?: string; limit?: number } = {}): Promise<{ data: { id: string; type: string; timestamp: string; data: Record<string, unknown> }[]; hasMore: boolean; nextAfter: string | null }> {
    const q = new URLSearchParams();
    if (opts.after) q.set('after', opts.after);
    if (opts.limit) q.set('limit', String(opts.limit));
    return this.call('GET', `/v1/events${q.size ? `?${q}` : ''}`);
  }

  /** One call, retried with the same Idempotency-Key while the answer may not have been the server's last word. */
  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown, idempotencyKey?: string, extraMs = 0): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.o.apiKey}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    let last: unknown;
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      let res: Response;
      try {
        res = await this.fetch(`${this.base}${path}`, {
          method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(this.timeoutMs + extraMs),
        });
      } catch (err) {
        // No answer: the request may or may not have arrived. The same key makes a retry safe.
        last = err;
        await sleep(backoff(attempt));
        continue;
      }
      const text = await res.text();
      if (res.ok) return JSON.parse(text) as T;
      const e = parseError(res.status, text);
      if (res.status < 500) throw e;
      last = e;
      const after = Number(res.headers.get('retry-after'));
      await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1_000, 30_000) : backoff(attempt));
    }
    throw last instanceof Error ? last : new Error(String(last));
  }
}

function backoff(attempt: number): number {
  const d = Math.min(8_000, 250 * 2 ** (attempt - 1));
  return d / 2 + Math.random() * (d / 2);
}

function parseError(status: number, text: string): SluiceApiError {
  try {
    const b = JSON.parse(text) as { code?: string; message?: string; details?: unknown };
    return new SluiceApiError(status, b.code ?? 'UNKNOWN', b.message ?? '', b.details);
  } catch {
    return new SluiceApiError(status, 'UNKNOWN', text.slice(0, 200));
  }
}
