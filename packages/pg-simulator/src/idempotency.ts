/**
 * The PG's idempotency store, per the contract: one secret key is one account, so a key matches
 * on key + method + path only, and the body is never compared. An entry is either "processing"
 * (a repeat gets 409) or a stored answer that is replayed byte for byte.
 */

/** An HTTP answer as the PG produced it; `store` says whether the idempotency store keeps it. */
export interface Answer {
  status: number;
  /** The exact JSON text sent, so a replay is byte for byte. */
  body: string;
  store: boolean;
}

/** What the store holds for one scope. */
export type IdempotencyEntry = { kind: 'processing' } | { kind: 'stored'; answer: Answer };

/** The 400 codes the contract lists as stored; any other 400 (e.g. an unknown new code) is not. */
const STORED_400_CODES: ReadonlySet<string> = new Set([
  'INVALID_REQUEST',
  'ALREADY_PROCESSED_PAYMENT',
  'DUPLICATED_ORDER_ID',
]);

/**
 * Contract: stored are 200, 400 INVALID_REQUEST / ALREADY_PROCESSED_PAYMENT / DUPLICATED_ORDER_ID,
 * 403 (declines and CANCELED_DURING_PROCESSING) and 404 NOT_FOUND_PAYMENT_SESSION. Everything
 * else (401, 409, 413, 429, 503, 5xx) is processed afresh on repeat.
 */
export function isStoredAnswer(status: number, code: string | null): boolean {
  if (status === 200 || status === 403) return true;
  if (status === 400) return code !== null && STORED_400_CODES.has(code);
  if (status === 404) return code === 'NOT_FOUND_PAYMENT_SESSION';
  return false;
}

/** `POST /v1/payments/confirm` + key → one map key. The NUL cannot occur in a header value. */
export function idempotencyScope(method: string, path: string, key: string): string {
  return `${method} ${path}\u0000${key}`;
}

/** In-memory store; the contract's 15-day retention outlives any simulator run, so nothing expires. */
export class IdempotencyStore {
  private readonly entries = new Map<string, IdempotencyEntry>();

  /** The entry for a scope, if any. */
  get(scope: string): IdempotencyEntry | undefined {
    return this.entries.get(scope);
  }

  /** Marks a scope as in flight, so repeats answer 409 until {@link finish}. */
  begin(scope: string): void {
    this.entries.set(scope, { kind: 'processing' });
  }

  /** Ends processing: keeps the answer if the contract stores it, else forgets the key entirely. */
  finish(scope: string, answer: Answer): void {
    if (answer.store) this.entries.set(scope, { kind: 'stored', answer });
    else this.entries.delete(scope);
  }

  /** Number of keys held (processing or stored). */
  get size(): number {
    return this.entries.size;
  }

  /** Forgets every key. */
  clear(): void {
    this.entries.clear();
  }
}
