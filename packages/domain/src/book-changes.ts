/**
 * The books' changes: what Sluice's Lua scripts append to the books stream (parsed by
 * `@sluice/store`'s `changeOf`) and what `@sluice/books` writes to PostgreSQL. A payment change carries the whole payment at its new version, so applying it is an
 * idempotent upsert; a call carries one PG call.
 */

/** A payment at one version, and the event that made it. */
export interface PaymentChange {
  kind: 'payment';
  /** The stream entry's id. */
  entryId: string;
  id: string;
  version: number;
  /** The payment's fields as Sluice stores them (strings). */
  snapshot: Record<string, string>;
  /** The state change (from, to, cause, outcome), with its time `at` in ms. */
  event: Record<string, unknown> & { at: number };
  /** The 202 body, on the change that created the payment. */
  intakeBody: string | null;
}

/** One PG call. */
export interface CallChange {
  kind: 'call';
  entryId: string;
  at: number;
  paymentId: string | null;
  call: string;
  idempotencyKey: string | null;
  outcome: string;
  httpStatus: number | null;
  latencyMs: number;
}

/** One reconciliation run: its counts and what it found. */
export interface RunChange {
  kind: 'run';
  entryId: string;
  at: number;
  report: Record<string, unknown> & { from: string };
  findings: { paymentId: string | null; kind: string; detail: Record<string, unknown> }[];
}

/** A change drained from the stream. */
export type BookChange = PaymentChange | CallChange | RunChange;
