/**
 * What became of a run's payments: final states, the invariant check against the simulator's
 * ledger (reusing the system tests' checker), PG calls per payment, and intake-to-final times.
 */
import { checkInvariants, type InvariantReport, type SluiceView } from '@sluice/test-support';
import type { PaymentRow } from '../harness/redis-tools.ts';
import type { LedgerView } from '../harness/sim-client.ts';

/** What became of a run's payments, checked against the PG's ledger. */
export interface Outcomes {
  byStatus: Record<string, number>;
  invariants: InvariantReport;
  /** Latest `finalizedAt` (ms epoch); NaN when nothing is final. */
  lastFinal: number;
  /** `createdAt` → `finalizedAt` of every final payment (ms). */
  toFinal: Float64Array;
  /** PG calls of every payment. */
  pgCalls: Float64Array;
  inDoubt: {
    count: number;
    /** All PG calls of each in-doubt payment. */
    pgCalls: Float64Array;
    /** Calls after the first confirm (pgCalls − 1). */
    afterFirst: Float64Array;
    toFinal: Float64Array;
  };
}

const num = (v: string | undefined): number => (v === undefined || v === '' ? Number.NaN : Number(v));

/** Reads a run's payment records and the ledger into its outcomes. */
export function summarise(ids: readonly string[], rows: readonly PaymentRow[], ledger: LedgerView): Outcomes {
  const sluice = new Map<string, SluiceView>();
  const toFinal: number[] = [];
  const pgCalls: number[] = [];
  const idCalls: number[] = [];
  const idToFinal: number[] = [];
  let lastFinal = Number.NaN;
  for (const r of rows) {
    if (r.status === undefined) continue;
    sluice.set(r.id, { id: r.id, paymentKey: r.paymentKey ?? '', status: r.status });
    const created = num(r.createdAt);
    const finalized = num(r.finalizedAt);
    const calls = num(r.pgCalls);
    pgCalls.push(Number.isFinite(calls) ? calls : 0);
    if (Number.isFinite(finalized)) {
      toFinal.push(finalized - created);
      if (!(finalized <= lastFinal)) lastFinal = finalized;
    }
    if (r.inDoubtAt !== undefined && r.inDoubtAt !== '') {
      idCalls.push(Number.isFinite(calls) ? calls : 0);
      if (Number.isFinite(finalized)) idToFinal.push(finalized - created);
    }
  }
  const invariants = checkInvariants(ids, sluice, ledger.payments);
  return {
    byStatus: invariants.byStatus,
    invariants,
    lastFinal,
    toFinal: Float64Array.from(toFinal),
    pgCalls: Float64Array.from(pgCalls),
    inDoubt: {
      count: idCalls.length,
      pgCalls: Float64Array.from(idCalls),
      afterFirst: Float64Array.from(idCalls.map((c) => Math.max(0, c - 1))),
      toFinal: Float64Array.from(idToFinal),
    },
  };
}

/** `0 lost / 0 not final / 0 double charges / 0 mismatches` */
export function invariantLine(r: InvariantReport): string {
  return `${r.lost.length} lost / ${r.notFinal.length} not final / ${r.doubleCharges.length} double charges / ${r.mismatches.length} mismatches`;
}

/** Whether a run kept every money rule. */
export function invariantsClean(r: InvariantReport): boolean {
  return r.lost.length + r.notFinal.length + r.doubleCharges.length + r.mismatches.length === 0;
}
