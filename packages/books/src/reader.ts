/**
 * Reads the books: a payment by id or orderId (once Redis has forgotten it), the 202 body an
 * idempotent replay answers, the merchant's list with cursor pagination, and the daily summary.
 * Every payment comes back as Sluice stores it (`snapshot`, its fields as strings), so that the
 * API renders it exactly as it rendered it from Redis.
 */
import type pg from 'pg';

/** A payment as the books hold it. */
export interface BookedPayment {
  snapshot: Record<string, string>;
  intakeBody: string | null;
}

/** The filters of a list. Times in ms; `startingAfter` is the last id of the previous page. */
export interface ListQuery {
  status?: string | undefined;
  createdFrom?: number | undefined;
  createdTo?: number | undefined;
  limit: number;
  startingAfter?: string | undefined;
}

/** One page of a list, newest first. */
export interface ListPage {
  payments: Record<string, string>[];
  hasMore: boolean;
}

/** One day of the summary: counts and sums in minor units per final status. */
export interface SummaryDay {
  day: string;
  approved: { count: number; amount: number };
  declined: { count: number; amount: number };
  failed: { count: number; amount: number };
  canceled: { count: number; amount: number };
  /** Not final yet (QUEUED or PROCESSING). */
  open: { count: number; amount: number };
  /**
   * Cancels done at the PG that day (by the day they completed, whenever the payment was made):
   * the money given back. A payment refunded in full also counts in `canceled` on its own day.
   */
  refunded: { count: number; amount: number };
}

const BUCKET: Record<string, keyof Omit<SummaryDay, 'day' | 'refunded'>> = { APPROVED: 'approved', DECLINED: 'declined', FAILED: 'failed', CANCELED: 'canceled' };

/** Reads the books. */
export class BooksReader {
  constructor(private readonly pool: pg.Pool) {}

  /** A payment by id. `createdAtMs` (from the id) lets the query read one month's partition. */
  async byId(id: string, createdAtMs?: number): Promise<BookedPayment | null> {
    const r =
      createdAtMs === undefined
        ? await this.pool.query('SELECT snapshot, intake_body FROM payments WHERE id = $1', [id])
        : await this.pool.query('SELECT snapshot, intake_body FROM payments WHERE id = $1 AND created_at = $2', [id, new Date(createdAtMs).toISOString()]);
    const row = r.rows[0] as { snapshot: Record<string, string>; intake_body: string | null } | undefined;
    return row ? { snapshot: row.snapshot, intakeBody: row.intake_body } : null;
  }

  /** The payment holding an orderId (its claim), or the newest payment made with it. */
  async byOrderId(orderId: string): Promise<BookedPayment | null> {
    const r = await this.pool.query(
      `SELECT p.snapshot, p.intake_body FROM payments p
       WHERE p.id = COALESCE((SELECT payment_id FROM order_claims WHERE order_id = $1), (SELECT max(id) FROM payments WHERE order_id = $1))`,
      [orderId],
    );
    const row = r.rows[0] as { snapshot: Record<string, string>; intake_body: string | null } | undefined;
    return row ? { snapshot: row.snapshot, intakeBody: row.intake_body } : null;
  }

  /** The payments holding these paymentKeys (their claims, else the newest made with the key), by paymentKey. */
  async byPaymentKeys(paymentKeys: readonly string[]): Promise<Map<string, Record<string, string>>> {
    if (paymentKeys.length === 0) return new Map();
    const r = await this.pool.query(
      `SELECT DISTINCT ON (p.payment_key) p.payment_key, p.snapshot FROM payments p
       LEFT JOIN payment_key_claims c ON c.payment_key = p.payment_key AND c.payment_id = p.id
       WHERE p.payment_key = ANY($1::text[])
       ORDER BY p.payment_key, (c.payment_id IS NOT NULL) DESC, p.id DESC`,
      [paymentKeys],
    );
    return new Map((r.rows as { payment_key: string; snapshot: Record<string, string> }[]).map((x) => [x.payment_key, x.snapshot]));
  }

  /** A merchant's payments, newest first, one page. */
  async list(merchantId: string, q: ListQuery): Promise<ListPage> {
    const where = ['merchant_id = $1'];
    const args: unknown[] = [merchantId];
    const add = (sql: string, v: unknown): void => {
      args.push(v);
      where.push(sql.replace('?', `$${args.length}`));
    };
    if (q.status) add('status = ?', q.status);
    if (q.createdFrom !== undefined) add('created_at >= ?', new Date(q.createdFrom).toISOString());
    if (q.createdTo !== undefined) add('created_at < ?', new Date(q.createdTo).toISOString());
    if (q.startingAfter) add('id < ?', q.startingAfter);
    args.push(q.limit + 1);
    const r = await this.pool.query(`SELECT snapshot FROM payments WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${args.length}`, args);
    const rows = (r.rows as { snapshot: Record<string, string> }[]).map((x) => x.snapshot);
    return { payments: rows.slice(0, q.limit), hasMore: rows.length > q.limit };
  }

  /** Per UTC day from `fromMs` (inclusive) to `toMs` (exclusive): counts and sums by final status. */
  /**
   * A merchant's events in order (created, then id), after the event `after` (none: from the
   * first), at most `limit`. Each is the body its deliveries carry.
   */
  async events(merchantId: string, after: string | null, limit: number): Promise<{ events: string[]; hasMore: boolean }> {
    const r = await this.pool.query<{ body: string }>(
      `SELECT body FROM events e WHERE merchant_id = $1
         AND ($2::text IS NULL OR (created_at, id) > (SELECT created_at, id FROM events WHERE id = $2 AND merchant_id = $1))
       ORDER BY created_at, id LIMIT $3`,
      [merchantId, after, limit + 1],
    );
    const rows = r.rows.map((x) => x.body);
    return { events: rows.slice(0, limit), hasMore: rows.length > limit };
  }

  /** One event of a merchant (its body), or null. */
  async event(merchantId: string, id: string): Promise<string | null> {
    const r = await this.pool.query<{ body: string }>('SELECT body FROM events WHERE id = $1 AND merchant_id = $2', [id, merchantId]);
    return r.rows[0]?.body ?? null;
  }

  async dailySummary(merchantId: string, fromMs: number, toMs: number): Promise<SummaryDay[]> {
    const r = await this.pool.query(
      `SELECT to_char(date_trunc('day', created_at), 'YYYY-MM-DD') AS day, status, count(*)::bigint AS n, coalesce(sum(amount), 0)::bigint AS amount
       FROM payments WHERE merchant_id = $1 AND created_at >= $2 AND created_at < $3
       GROUP BY 1, 2 ORDER BY 1`,
      [merchantId, new Date(fromMs).toISOString(), new Date(toMs).toISOString()],
    );
    const refunds = await this.pool.query(
      `SELECT to_char(date_trunc('day', completed_at), 'YYYY-MM-DD') AS day, count(*)::bigint AS n, coalesce(sum(amount), 0)::bigint AS amount
       FROM payment_cancels WHERE merchant_id = $1 AND status = 'SUCCEEDED' AND completed_at >= $2 AND completed_at < $3
       GROUP BY 1`,
      [merchantId, new Date(fromMs).toISOString(), new Date(toMs).toISOString()],
    );
    const days = new Map<string, SummaryDay>();
    const zero = () => ({ count: 0, amount: 0 });
    const dayOf = (day: string): SummaryDay => {
      let d = days.get(day);
      if (!d) days.set(day, (d = { day, approved: zero(), declined: zero(), failed: zero(), canceled: zero(), open: zero(), refunded: zero() }));
      return d;
    };
    for (const row of r.rows as { day: string; status: string; n: string; amount: string }[]) {
      const bucket = dayOf(row.day)[BUCKET[row.status] ?? 'open'];
      bucket.count += Number(row.n);
      bucket.amount += Number(row.amount);
    }
    for (const row of refunds.rows as { day: string; n: string; amount: string }[]) {
      const d = dayOf(row.day);
      d.refunded.count += Number(row.n);
      d.refunded.amount += Number(row.amount);
    }
    return [...days.values()].sort((a, b) => a.day.localeCompare(b.day));
  }
}
