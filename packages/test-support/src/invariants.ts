/**
 * The invariant checker: compares what merchants were told (every 202), what Sluice holds, and
 * the PG's ledger. The money rules, as code:
 * - lost: acknowledged, but unknown to Sluice or never final;
 * - double charge: the PG charged a paymentKey more than once;
 * - mismatch: Sluice's final state differs from the PG's, by this equivalence:
 *     APPROVED iff the PG holds DONE;
 *     DECLINED iff the PG holds ABORTED;
 *     CANCELED iff the PG holds CANCELED, or holds nothing;
 *     FAILED   iff the PG holds nothing, ABORTED, or a voided CANCELED (never charged) — never DONE.
 */
export interface LedgerEntry {
  status: string;
  chargeCount: number;
  refunded?: boolean;
}

/** A payment as Sluice shows it, for the check. */
export interface SluiceView {
  id: string;
  paymentKey: string;
  status: string;
}

/** What the check found: lost, not final, double charges, mismatches, and the final states. */
export interface InvariantReport {
  acknowledged: number;
  final: number;
  lost: string[];
  notFinal: string[];
  doubleCharges: string[];
  mismatches: { id: string; paymentKey: string; sluice: string; pg: string }[];
  byStatus: Record<string, number>;
}

const FINAL = new Set(['APPROVED', 'DECLINED', 'FAILED', 'CANCELED']);

/** Whether Sluice's final status agrees with the PG's ledger entry (undefined = holds nothing). */
export function agrees(status: string, pg: LedgerEntry | undefined): boolean {
  const held = pg && pg.status !== 'NONE' ? pg.status : 'NOTHING';
  switch (status) {
    case 'APPROVED':
      return held === 'DONE';
    case 'DECLINED':
      return held === 'ABORTED';
    case 'CANCELED':
      return held === 'CANCELED' || held === 'NOTHING';
    case 'FAILED':
      return held === 'NOTHING' || held === 'ABORTED' || (held === 'CANCELED' && (pg?.chargeCount ?? 0) === 0);
    default:
      return false;
  }
}

/** Checks every accepted payment against the PG's ledger: the money rules. */
export function checkInvariants(
  acknowledgedIds: Iterable<string>,
  sluice: Map<string, SluiceView>,
  ledger: Record<string, LedgerEntry>,
): InvariantReport {
  const r: InvariantReport = { acknowledged: 0, final: 0, lost: [], notFinal: [], doubleCharges: [], mismatches: [], byStatus: {} };
  for (const id of acknowledgedIds) {
    r.acknowledged++;
    const p = sluice.get(id);
    if (!p) {
      r.lost.push(id);
      continue;
    }
    r.byStatus[p.status] = (r.byStatus[p.status] ?? 0) + 1;
    if (!FINAL.has(p.status)) {
      r.notFinal.push(id);
      continue;
    }
    r.final++;
    const pg = ledger[p.paymentKey];
    if (!agrees(p.status, pg)) r.mismatches.push({ id, paymentKey: p.paymentKey, sluice: p.status, pg: pg ? `${pg.status}×${pg.chargeCount}` : 'nothing' });
  }
  for (const [key, e] of Object.entries(ledger)) if (e.chargeCount > 1) r.doubleCharges.push(key);
  return r;
}

/**
 * How long after the breaker opened a confirm may still reach the PG without having been sent
 * while it was open: one that passed the guard just before is written within the permit's
 * allowed lateness (the late-send check refuses beyond GATE_MARGIN_MAX_MS − GATE_MARGIN_MIN_MS, 120 ms), and the PG
 * reads it when it next runs (the simulator stalls for up to ~100 ms on a loaded 2-core machine).
 */
export const GUARD_TO_ARRIVAL_MS = 250;
