/**
 * Writes drained changes into the books, in one transaction per batch, idempotently: a change
 * applied twice changes nothing (payments are upserted by version, events and calls keyed by what
 * identifies them), and an older version of a payment never overwrites a newer one, whatever order
 * the changes come in.
 */
import type pg from 'pg';
import { parseRefunds, webhookBody, webhookEventOf, type BookChange, type CallChange, type PaymentChange, type RunChange } from '@sluice/domain';

/** The first day of the month of `ms`, UTC, as `YYYY-MM-01`. */
export function monthOf(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}-01`;
}

const numOrNull = (v: string | undefined): number | null => (v ? Number(v) : null);
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** What a batch wrote. */
export interface ApplyResult {
  payments: number;
  events: number;
  calls: number;
  runs: number;
}

/** Writes changes to the books. Keeps the months whose partitions it has made sure of. */
export class BooksWriter {
  private readonly months = new Set<string>();

  constructor(private readonly pool: pg.Pool) {}

  /** Applies a batch in one transaction; throws (nothing written) when the database fails. */
  async apply(changes: readonly BookChange[]): Promise<ApplyResult> {
    const payments = changes.filter((c): c is PaymentChange => c.kind === 'payment');
    const calls = changes.filter((c): c is CallChange => c.kind === 'call');
    const runs = changes.filter((c): c is RunChange => c.kind === 'run');
    // The newest version of each payment in the batch; a 202 body from whichever change has it.
    const latest = new Map<string, PaymentChange>();
    const bodies = new Map<string, string>();
    for (const c of payments) {
      const seen = latest.get(c.id);
      if (!seen || seen.version < c.version) latest.set(c.id, c);
      if (c.intakeBody !== null) bodies.set(c.id, c.intakeBody);
    }
    const months = new Set<string>();
    for (const c of latest.values()) months.add(monthOf(Number(c.snapshot.createdAt)));
    for (const c of payments) months.add(monthOf(c.event.at));
    for (const c of calls) months.add(monthOf(c.at));

    const client = await this.pool.connect();
    // A connection lost mid-transaction is an 'error' event on the checked-out client, which
    // nothing else listens to: unheard, it would end the process. The query fails as well.
    let broken = false;
    const onError = (): void => {
      broken = true;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const newMonths = [...months].filter((m) => !this.months.has(m));
      for (const m of newMonths) await client.query('SELECT books_ensure_month($1::date)', [m]);
      const rows = [...latest.values()];
      if (rows.length > 0) {
        const s = rows.map((c) => c.snapshot);
        await client.query(
          `INSERT INTO payments (id, created_at, merchant_id, payment_key, order_id, amount, currency, status, phase, attempts, pg_calls,
             transaction_key, approved_at, failure_code, finalized_at, updated_at, version, snapshot, intake_body)
           SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[],
             $10::int[], $11::int[], $12::text[], $13::text[], $14::text[], $15::timestamptz[], $16::timestamptz[], $17::bigint[], $18::jsonb[], $19::text[])
           ON CONFLICT (id, created_at) DO UPDATE SET
             status = EXCLUDED.status, phase = EXCLUDED.phase, attempts = EXCLUDED.attempts, pg_calls = EXCLUDED.pg_calls,
             transaction_key = EXCLUDED.transaction_key, approved_at = EXCLUDED.approved_at, failure_code = EXCLUDED.failure_code,
             finalized_at = EXCLUDED.finalized_at, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version, snapshot = EXCLUDED.snapshot,
             intake_body = COALESCE(payments.intake_body, EXCLUDED.intake_body)
           WHERE payments.version < EXCLUDED.version`,
          [
            rows.map((c) => c.id),
            s.map((x) => new Date(Number(x.createdAt)).toISOString()),
            s.map((x) => x.merchantId ?? ''),
            s.map((x) => x.paymentKey ?? ''),
            s.map((x) => x.orderId ?? ''),
            s.map((x) => x.amount ?? '0'),
            s.map((x) => x.currency ?? ''),
            s.map((x) => x.status ?? ''),
            s.map((x) => x.phase ?? ''),
            s.map((x) => Number(x.attempts ?? 0)),
            s.map((x) => Number(x.pgCalls ?? 0)),
            s.map((x) => x.transactionKey || null),
            s.map((x) => x.approvedAt || null),
            s.map((x) => x.failureCode || null),
            s.map((x) => isoOrNull(numOrNull(x.finalizedAt))),
            s.map((x) => new Date(Number(x.updatedAt ?? x.createdAt)).toISOString()),
            rows.map((c) => c.version),
            s.map((x) => JSON.stringify(x)),
            rows.map((c) => bodies.get(c.id) ?? null),
          ],
        );
        // A body that came with an older version than the row already holds.
        const withBody = rows.filter((c) => bodies.has(c.id));
        if (withBody.length > 0) {
          await client.query(
            `UPDATE payments p SET intake_body = b.body FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS b(id, created_at, body)
             WHERE p.id = b.id AND p.created_at = b.created_at AND p.intake_body IS NULL`,
            [withBody.map((c) => c.id), withBody.map((c) => new Date(Number(c.snapshot.createdAt)).toISOString()), withBody.map((c) => bodies.get(c.id)!)],
          );
        }
        // The merchants' cancels each snapshot lists, at its version.
        const cancels = rows.flatMap((c) => parseRefunds(c.snapshot.refunds).map((r) => ({ r, c })));
        if (cancels.length > 0) {
          await client.query(
            `INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, kind, amount, reason, status, failure_code, pg_transaction_key, created_at, completed_at, version)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::bigint[])
             ON CONFLICT (cancel_id) DO UPDATE SET
               kind = EXCLUDED.kind, status = EXCLUDED.status, failure_code = EXCLUDED.failure_code, pg_transaction_key = EXCLUDED.pg_transaction_key,
               completed_at = EXCLUDED.completed_at, version = EXCLUDED.version
             WHERE payment_cancels.version < EXCLUDED.version`,
            [
              cancels.map(({ r }) => r.id),
              cancels.map(({ c }) => c.id),
              cancels.map(({ c }) => c.snapshot.merchantId ?? ''),
              cancels.map(({ r }) => r.kind),
              cancels.map(({ r }) => r.amount),
              cancels.map(({ r }) => r.reason),
              cancels.map(({ r }) => r.status),
              cancels.map(({ r }) => r.failure?.code ?? null),
              cancels.map(({ r }) => r.pgTransactionKey ?? null),
              cancels.map(({ r }) => new Date(r.createdAt).toISOString()),
              cancels.map(({ r }) => isoOrNull(r.completedAt ?? null)),
              cancels.map(({ c }) => c.version),
            ],
          );
        }
        // Claims: released ones go first, so that a new payment of the same order in this batch takes them.
        const released = rows.filter((c) => c.snapshot.claimsReleased === '1');
        const holding = rows.filter((c) => c.snapshot.claimsReleased !== '1');
        if (released.length > 0) {
          const ids = released.map((c) => c.id);
          await client.query('DELETE FROM order_claims WHERE payment_id = ANY($1::text[])', [ids]);
          await client.query('DELETE FROM payment_key_claims WHERE payment_id = ANY($1::text[])', [ids]);
        }
        if (holding.length > 0) {
          const ids = holding.map((c) => c.id);
          await client.query('INSERT INTO order_claims SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING', [holding.map((c) => c.snapshot.orderId ?? ''), ids]);
          await client.query('INSERT INTO payment_key_claims SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING', [holding.map((c) => c.snapshot.paymentKey ?? ''), ids]);
        }
      }
      if (payments.length > 0) {
        await client.query(
          `INSERT INTO payment_events (payment_id, version, at, from_phase, to_phase, status, attempt, cause)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::int[], $8::jsonb[])
           ON CONFLICT DO NOTHING`,
          [
            payments.map((c) => c.id),
            payments.map((c) => c.version),
            payments.map((c) => new Date(c.event.at).toISOString()),
            payments.map((c) => (typeof c.event.from === 'string' ? c.event.from : null)),
            payments.map((c) => c.snapshot.phase ?? ''),
            payments.map((c) => c.snapshot.status ?? ''),
            payments.map((c) => Number(c.snapshot.attempts ?? 0)),
            payments.map((c) => JSON.stringify(c.event)),
          ],
        );
      }
      // The events merchants hear of, from the same changes (every change, not only each payment's newest).
      const events = payments.map(webhookEventOf).filter((e) => e !== null);
      if (events.length > 0) {
        await client.query(
          `INSERT INTO events (id, merchant_id, type, payment_id, seq, created_at, body)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[], $7::text[])
           ON CONFLICT DO NOTHING`,
          [
            events.map((e) => e.id),
            events.map((e) => e.merchantId),
            events.map((e) => e.type),
            events.map((e) => e.data.paymentId),
            events.map((e) => e.data.seq),
            events.map((e) => new Date(e.createdAt).toISOString()),
            events.map((e) => webhookBody(e)),
          ],
        );
      }
      if (calls.length > 0) {
        await client.query(
          `INSERT INTO pg_calls (entry_id, at, payment_id, call, idempotency_key, outcome, http_status, latency_ms)
           SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::int[])
           ON CONFLICT DO NOTHING`,
          [
            calls.map((c) => c.entryId),
            calls.map((c) => new Date(c.at).toISOString()),
            calls.map((c) => c.paymentId),
            calls.map((c) => c.call),
            calls.map((c) => c.idempotencyKey),
            calls.map((c) => c.outcome),
            calls.map((c) => c.httpStatus),
            calls.map((c) => Math.round(c.latencyMs)),
          ],
        );
      }
      for (const run of runs) {
        const inserted = await client.query(
          `INSERT INTO reconciliation_runs (entry_id, started_at, finished_at, report) VALUES ($1, $2, $3, $4)
           ON CONFLICT (entry_id) DO NOTHING RETURNING id`,
          [run.entryId, run.report.from, new Date(run.at).toISOString(), JSON.stringify(run.report)],
        );
        const runId = (inserted.rows[0] as { id: string } | undefined)?.id;
        if (runId !== undefined && run.findings.length > 0) {
          await client.query(
            'INSERT INTO reconciliation_findings (run_id, payment_id, kind, detail) SELECT $1, * FROM unnest($2::text[], $3::text[], $4::jsonb[])',
            [runId, run.findings.map((f) => f.paymentId), run.findings.map((f) => f.kind), run.findings.map((f) => JSON.stringify(f.detail))],
          );
        }
      }
      await client.query('COMMIT');
      for (const m of newMonths) this.months.add(m);
      return { payments: rows.length, events: payments.length, calls: calls.length, runs: runs.length };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      broken = true;
      throw err;
    } finally {
      client.off('error', onError);
      // A client that failed is closed rather than pooled: its connection may be half gone.
      client.release(broken);
    }
  }
}
