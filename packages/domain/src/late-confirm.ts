/**
 * "May a confirm of this payment still reach the PG, and charge?" — the one owner of that
 * question. A confirm try is counted when it passes the phase guard (`attempts`) and settled once
 * the PG is known to have read it or it is known never to have been written (`confirmsSettled`):
 * - `settlesTry` says which answers settle the try they answer (the worker passes it to the
 *   apply-step script, which counts it even when the step itself is stale);
 * - a try refused on its re-check is settled by the phase guard itself (guard.lua), since it was
 *   counted and will never be written;
 * - `unreadConfirm` reads the two counts;
 * - `lateConfirmUntil` says until when such a try could still charge: the PG's payment session.
 * decide.ts (a cancel answered "nothing to cancel") acts on it.
 */
import type { PgOutcome } from './pg-outcome.ts';

/**
 * Whether a confirm with this outcome may still reach the PG later: the PG did not answer it
 * itself (no answer, or a 5xx that is not one of its own). Every other outcome settles the try:
 * the PG read it, or it was never written.
 */
export function mayLandLater(o: PgOutcome): boolean {
  return o.kind === 'in_doubt' && o.unread === true;
}

/** Whether the answer to a confirm try settles it (the complement of {@link mayLandLater}). */
export function settlesTry(o: PgOutcome): boolean {
  return !mayLandLater(o);
}

/** Whether some confirm try of the payment is not known to have been read or never written. */
export function unreadConfirm(p: { attempts: number; confirmsSettled: number }): boolean {
  return p.attempts > p.confirmsSettled;
}

/**
 * Until when (epoch ms) an unread confirm of the payment could still charge: its intake plus the
 * PG's payment session and a margin for clocks (`lateConfirmHorizonMs`); 0 when no try is unread.
 */
export function lateConfirmUntil(p: { unreadConfirm: boolean; createdAt: number; lateConfirmHorizonMs: number }): number {
  return p.unreadConfirm ? p.createdAt + p.lateConfirmHorizonMs : 0;
}
