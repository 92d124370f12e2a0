/**
 * Reconciliation: the safety net, not the mechanism. It reads the PG's book
 * (`GET /v1/transactions`) over a recent window, which overlaps the previous runs because a late
 * approval carries its own commit time, and compares it with Sluice's records by the equivalence:
 *
 *   APPROVED iff the PG holds DONE;       DECLINED iff ABORTED;
 *   CANCELED iff the PG holds CANCELED, or holds nothing;
 *   FAILED   iff the PG holds nothing, ABORTED or a voided CANCELED — never DONE.
 *
 * (A voided approval and a decline leave no row, so a CANCELED row always follows a DONE one.)
 *
 * Repair rules, each recorded on the payment's history, counted and alerted:
 * - the PG holds DONE, Sluice said FAILED / DECLINED / CANCELED (the merchant was told "not
 *   paid"): cancel at the PG so the customer gets the money back; Sluice then shows CANCELED;
 * - the PG holds CANCELED, Sluice said APPROVED, FAILED or DECLINED: Sluice shows CANCELED;
 * - Sluice said APPROVED but the book has no approval: ask the PG (inquiry) and follow it.
 * - the PG holds a cancel of an approved payment that Sluice does not (a merchant's refund Sluice
 *   ended FAILED after REFUND_SETTLE_MS that committed later): Sluice records it (the refund
 *   SUCCEEDED, the balance lowered, CANCELED at 0). A cancel row Sluice holds done matches.
 * A charge at the PG that Sluice has no record of (an orphan) is recorded and alerted, and never
 * touched. Payments not final yet are left to the in-doubt flow (counted as unresolved).
 */
import { parseRefunds, pgCancelsOf, type FinalStatus, type PgOutcome, type PgPayment } from '@sluice/domain';
import type { PgPort } from './sender/pg-port.ts';
import { claimHolder, RefundStore, type Keys, type PaymentRecord, type PaymentStore, type Transitions } from '@sluice/store';
import type { BooksReader } from '@sluice/books';
import type { Logger } from 'pino';

/** What one reconciliation run read, matched, repaired and found orphaned. */
export interface ReconcileReport {
  from: string;
  to: string;
  pgRows: number;
  checked: number;
  matched: number;
  repaired: number;
  orphans: number;
  unresolved: number;
  complete: boolean;
  /** What was found: orphans (a PG charge Sluice has no record of), repairs, and payments that could not be settled. */
  findings: { paymentId: string | null; kind: 'orphan' | 'repaired' | 'unresolved'; detail: Record<string, unknown> }[];
}

interface Row {
  transactionKey: string;
  paymentKey: string;
  orderId?: string;
  status: string;
  amount?: number;
  transactionAt: string;
}

/** The window of the PG's book a run reads, and how long a fresh final payment is left alone. */
export interface ReconcilerOptions {
  lookbackMs: number;
  /** Sluice approvals younger than this are not yet expected in the book. */
  settleMs: number;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace('Z', '+00:00');

/**
 * Rows per page of the PG's book. The contract allows 10,000, but a page that large is one long
 * answer for the PG to build: measured on the simulator, a 10,000-row page held its event loop for
 * tens of ms, long enough for it to read a burst of on-time confirms as arriving together (the
 * 429s of the overload bench came 1 s after those stalls). 1,000-row pages cost 10× the calls —
 * still well under 0.1% of the budget — and keep each answer short.
 */
const PAGE_ROWS = 1_000;

/** What reconciliation reads the PG's book through, and repairs payments with. */
export interface ReconcilerDeps {
  pg: PgPort;
  store: PaymentStore;
  transitions: Transitions;
  log: Logger;
  /** The provider's view of the keys (its approvals, orphans and report); the store's (the default provider's) unless given. */
  keys?: Keys;
  /**
   * The books: Sluice's side of a PG row whose payment Redis has forgotten is read there, and put
   * back into Redis for the hot window so that it is checked and repaired like any other.
   */
  books?: { reader: BooksReader; hotMs: number } | null;
}

/** Compares the PG's book (GET /v1/transactions) with Sluice's final states, and repairs or reports what differs. */
export class Reconciler {
  private readonly pg: PgPort;
  private readonly store: PaymentStore;
  private readonly transitions: Transitions;
  private readonly log: Logger;
  private readonly books: ReconcilerDeps['books'];
  private readonly keys: Keys;
  private readonly refunds: RefundStore;

  constructor(
    d: ReconcilerDeps,
    private readonly o: ReconcilerOptions,
  ) {
    this.pg = d.pg;
    this.store = d.store;
    this.transitions = d.transitions;
    this.log = d.log;
    this.books = d.books ?? null;
    this.keys = d.keys ?? d.store.keys;
    this.refunds = new RefundStore(this.store.redis, { prefix: this.keys.prefix, retentionMs: d.store.opts.retentionMs, shards: this.keys.shards.length }, this.keys.provider);
  }

  /**
   * Puts back into Redis, from the books, the payments of these paymentKeys (Redis no longer holds
   * them), for the hot window. Returns paymentKey → payment id of those found. A books failure
   * leaves them to be reported as orphans this run (and checked again next run).
   */
  private async fromBooks(paymentKeys: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (!this.books || paymentKeys.length === 0) return out;
    let found: Map<string, Record<string, string>>;
    try {
      found = await this.books.reader.byPaymentKeys(paymentKeys);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'reconciliation: the books did not answer; payments Redis forgot are not checked this run');
      return out;
    }
    for (const [paymentKey, snapshot] of found) {
      await this.store.rehydrate(snapshot, this.books.hotMs);
      if (snapshot.id) out.set(paymentKey, snapshot.id);
    }
    return out;
  }

  async run(now = Date.now()): Promise<ReconcileReport> {
    const from = now - this.o.lookbackMs;
    const report: ReconcileReport = { from: iso(from), to: iso(now), pgRows: 0, checked: 0, matched: 0, repaired: 0, orphans: 0, unresolved: 0, complete: false, findings: [] };
    // Rows that disagree with Sluice. A DONE row followed (maybe pages later) by a CANCELED row
    // for the same payment is settled by the later row; what is left is checked with the PG.
    const suspects = new Map<string, string>();
    const pending = new Set<string>();
    const ok = await this.readBook(report.from, report.to, async (rows) => {
      report.pgRows += rows.length;
      const k = this.keys;
      const ids = (await this.store.redis.pipeline(rows.map((r) => ['get', k.byPaymentKey(r.paymentKey)])).exec()) ?? [];
      const recIds = ids.map(([, v]) => claimHolder(v as string | null));
      const statusOf = async () => (await this.store.redis.pipeline(recIds.map((id) => ['hmget', k.shardOf(id ?? '-').payment(id ?? '-'), 'status', 'phase', 'refunds'])).exec()) ?? [];
      let recs = await statusOf();
      // Sluice's side of rows whose payments left Redis is in the books: put back for the hot window, then read as any other.
      const forgotten = rows.filter((_, i) => !(recs[i]?.[1] as (string | null)[] | undefined)?.[0]).map((r) => r.paymentKey);
      const restored = await this.fromBooks(forgotten);
      if (restored.size > 0) {
        rows.forEach((r, i) => {
          if (restored.has(r.paymentKey)) recIds[i] = restored.get(r.paymentKey)!;
        });
        recs = await statusOf();
      }
      const seenApproved: string[] = [];
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]!;
        const id = recIds[i];
        const [status, phase, refundsField] = (recs[i]?.[1] as (string | null)[] | undefined) ?? [];
        if (!id || !status) {
          await this.orphan(row);
          report.orphans++;
          report.findings.push({ paymentId: null, kind: 'orphan', detail: { ...row } });
          continue;
        }
        report.checked++;
        if (phase !== 'final') {
          pending.add(row.paymentKey);
          continue;
        }
        pending.delete(row.paymentKey);
        // A cancel row of a merchant's refund that Sluice holds done: it matches, and settles an
        // approval row of the same payment read before it (a refund to 0 shows CANCELED).
        if ((row.status === 'PARTIAL_CANCELED' || row.status === 'CANCELED') && parseRefunds(refundsField).some((c) => c.status === 'SUCCEEDED' && c.pgTransactionKey === row.transactionKey)) {
          suspects.delete(row.paymentKey);
          report.matched++;
          continue;
        }
        // The book has approvals and cancels; a row of another kind (or a partial cancel Sluice
        // does not hold) is checked with the PG like a disagreement, never counted as a match.
        if (row.status !== 'DONE' && row.status !== 'CANCELED') {
          suspects.set(row.paymentKey, id);
          continue;
        }
        if (expected(status, row.status) === null) {
          suspects.delete(row.paymentKey);
          report.matched++;
          if (row.status === 'DONE') seenApproved.push(id);
        } else suspects.set(row.paymentKey, id);
      }
      // Approvals the book has shown need no further check.
      for (const id of seenApproved) await this.store.redis.zrem(k.shardOf(id).approved, id);
    });
    if (!ok) {
      this.log.warn('reconciliation: the PG\'s book could not be read to its end; will try again next run');
      return this.save(report);
    }
    report.unresolved += pending.size;

    for (const id of suspects.values()) await this.checkWithPg(id, report);
    // Sluice approvals the book has not shown (older than the settle time): ask the PG.
    const unseen: string[] = [];
    for (const shard of this.keys.shards) unseen.push(...(await this.store.redis.zrangebyscore(shard.approved, '-inf', now - this.o.settleMs, 'LIMIT', 0, 1_000)));
    for (const id of unseen) {
      report.checked++;
      await this.checkWithPg(id, report);
    }
    report.complete = true;
    return this.save(report);
  }

  /** Asks the PG for the payment as it stands now, and compares with Sluice. */
  private async checkWithPg(id: string, report: ReconcileReport): Promise<void> {
    let rec = await this.store.get(id);
    if (!rec && this.books) {
      const snapshot = (await this.books.reader.byId(id).catch(() => null))?.snapshot;
      if (snapshot) {
        await this.store.rehydrate(snapshot, this.books.hotMs);
        rec = await this.store.get(id);
      }
    }
    if (!rec) {
      // Neither in Redis nor in the books (none configured, or they did not answer).
      await this.store.redis.zrem(this.keys.shardOf(id).approved, id);
      report.unresolved++;
      report.findings.push({ paymentId: id, kind: 'unresolved', detail: { reason: 'not in Redis nor in the books' } });
      this.log.error({ alert: true, paymentId: id }, 'reconciliation: an approval to check is neither in Redis nor in the books');
      return;
    }
    const r = await this.pg.inquire(rec.paymentKey, { requestId: rec.requestId ?? id });
    // Only a definite answer says what the PG holds: a Payment, or 404 NOT_FOUND_PAYMENT for
    // "nothing". Anything else (in doubt, not sent, a 4xx of ours, 401, still processing) is not
    // known, and a repair on it could refund a good payment.
    const held = r.refused ? null : heldBy(r.outcome);
    if (held === null) {
      report.unresolved++;
      return;
    }
    if (rec.status === 'APPROVED' && !r.refused && (r.outcome.kind === 'approved' || r.outcome.kind === 'canceled')) {
      // Cancels the PG holds and Sluice does not (a refund ended FAILED that committed late):
      // recorded first, so that the status compared next is the one they leave.
      if (await this.syncRefunds(rec, r.outcome.payment, report)) rec = (await this.store.get(id)) ?? rec;
    }
    if (held === 'DONE' && rec.status === 'APPROVED') await this.store.redis.zrem(this.keys.shardOf(id).approved, id);
    await this.compare(rec, held, report);
  }

  /** Records the PG's cancels of an approved payment that Sluice does not hold; true if any was. */
  private async syncRefunds(rec: PaymentRecord, payment: PgPayment | undefined, report: ReconcileReport): Promise<boolean> {
    const known = new Set(rec.refunds.map((c) => c.pgTransactionKey).filter((k): k is string => !!k));
    let any = false;
    for (const c of pgCancelsOf(payment) ?? []) {
      if (!c.transactionKey || known.has(c.transactionKey) || typeof c.cancelAmount !== 'number') continue;
      if (await this.refunds.found(rec.id, c.transactionKey, c.cancelAmount, { call: 'reconcile' })) {
        any = true;
        report.repaired++;
        const detail = { cancel: c.transactionKey, amount: c.cancelAmount, reason: 'the PG holds a cancel Sluice did not' };
        report.findings.push({ paymentId: rec.id, kind: 'repaired', detail });
        this.log.error({ alert: true, paymentId: rec.id, ...detail }, 'reconciliation recorded a cancel found at the PG');
      }
    }
    return any;
  }

  private async orphan(row: Row): Promise<void> {
    if ((await this.store.redis.hsetnx(this.keys.orphans, row.paymentKey, JSON.stringify(row))) === 1) {
      await this.store.redis.hincrby(this.keys.counters, 'recon:orphans', 1);
      this.log.error({ alert: true, paymentKey: row.paymentKey, transactionKey: row.transactionKey }, 'reconciliation: a PG charge Sluice has no record of');
    }
  }

  private async compare(rec: PaymentRecord, held: string, report: ReconcileReport): Promise<void> {
    const want = expected(rec.status, held);
    if (want === null) {
      report.matched++;
      return;
    }
    if (held === 'DONE') {
      // The merchant was told "not paid" while the PG charged: give the money back first.
      const r = await this.pg.cancel(rec.paymentKey, { cancelReason: 'Reconciliation: charged after Sluice reported it not paid' }, {
        idempotencyKey: `sluice.${rec.id}.repair-cancel`,
        requestId: rec.requestId ?? rec.id,
      });
      if (r.refused || r.outcome.kind !== 'canceled') {
        report.unresolved++;
        report.findings.push({ paymentId: rec.id, kind: 'unresolved', detail: { reason: 'repair cancel not confirmed', held, status: rec.status } });
        return;
      }
    }
    const reason = `PG holds ${held}, Sluice said ${rec.status}`;
    if (await this.transitions.repair(rec.id, want, reason, { call: 'reconcile' })) {
      report.repaired++;
      report.findings.push({ paymentId: rec.id, kind: 'repaired', detail: { from: rec.status, to: want, reason } });
      this.log.error({ alert: true, paymentId: rec.id, from: rec.status, to: want, reason }, 'reconciliation repaired a payment');
    }
  }

  /** Pages through the PG's book, handing each page over; false if the PG did not answer. */
  private async readBook(startDate: string, endDate: string, onPage: (rows: Row[]) => Promise<void>): Promise<boolean> {
    let startingAfter: string | undefined;
    for (let page = 0; page < 100_000; page++) {
      const q = { startDate, endDate, limit: PAGE_ROWS };
      const r = await this.pg.transactions(startingAfter ? { ...q, startingAfter } : q);
      if (r.refused || r.raw.transport !== 'answered' || r.raw.httpStatus !== 200 || !Array.isArray(r.raw.body)) return false;
      const batch = r.raw.body as Row[];
      if (batch.length > 0) await onPage(batch);
      if (batch.length < PAGE_ROWS) return true;
      const last = batch[batch.length - 1]!.transactionKey;
      // Without the last row's key there is no next page to ask for: the run is incomplete.
      if (typeof last !== 'string' || last === '' || last === startingAfter) {
        this.log.warn({ alert: true, page, startingAfter }, 'reconciliation: a full page of the PG\'s book ends without a transactionKey to go on from');
        return false;
      }
      startingAfter = last;
    }
    return true;
  }

  private async save(report: ReconcileReport): Promise<ReconcileReport> {
    const k = this.keys;
    const { findings, ...counts } = report;
    const at = Date.now();
    // The run goes to the books too (reconciliation_runs, reconciliation_findings), by the drainer
    // (through the first shard's stream: with several shards the root has none).
    await this.store.redis.xadd(k.shards[0]!.books, '*', 'k', 'r', 'at', at, 'report', JSON.stringify(counts), 'findings', JSON.stringify(findings));
    await this.store.redis
      .multi()
      .hset(k.reconcileReport, { ...counts, at })
      .hincrby(k.counters, 'recon:runs', 1)
      .hincrby(k.counters, 'recon:checked', report.checked)
      .hincrby(k.counters, 'recon:matched', report.matched)
      .hincrby(k.counters, 'recon:unresolved', report.unresolved)
      .exec();
    return report;
  }
}

/** What an inquiry's outcome says the PG holds, or null when it does not say. */
export function heldBy(o: PgOutcome): 'DONE' | 'CANCELED' | 'ABORTED' | 'NOTHING' | null {
  switch (o.kind) {
    case 'approved':
      return 'DONE';
    case 'canceled':
      return 'CANCELED';
    case 'declined':
      return 'ABORTED';
    case 'nothing_at_pg':
      return 'NOTHING';
    default:
      return null;
  }
}

/** The status Sluice should show given what the PG holds, or null when they agree. */
export function expected(status: string, held: string): FinalStatus | null {
  switch (held) {
    case 'DONE':
      return status === 'APPROVED' ? null : 'CANCELED';
    case 'CANCELED':
      return status === 'CANCELED' ? null : 'CANCELED';
    case 'ABORTED':
      return status === 'DECLINED' || status === 'FAILED' ? null : 'DECLINED';
    default:
      return status === 'APPROVED' ? 'FAILED' : null;
  }
}
