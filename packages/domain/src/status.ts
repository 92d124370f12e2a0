/**
 * Payment statuses as merchants see them, and the internal phase that decides which PG call
 * may go out next. This file is the one place where the lifecycle is defined.
 */

/** What a merchant sees on `GET /v1/payments/:id`. */
export const PAYMENT_STATUSES = ['QUEUED', 'PROCESSING', 'APPROVED', 'DECLINED', 'FAILED', 'CANCELED'] as const;
/** A payment's status as merchants see it. */
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/** The statuses a payment ends in. */
export const FINAL_STATUSES = ['APPROVED', 'DECLINED', 'FAILED', 'CANCELED'] as const;
/** A final status. */
export type FinalStatus = (typeof FINAL_STATUSES)[number];

/** Whether a string is a final status. */
export function isFinalStatus(s: string): s is FinalStatus {
  return (FINAL_STATUSES as readonly string[]).includes(s);
}

/**
 * The internal phase. It is the guard before every PG call:
 * - `queued`: the PG has never been sent this payment;
 * - `confirming`: a confirm may be sent (and re-sent with the same Idempotency-Key);
 * - `inquiring`: the outcome is in doubt; only status inquiries go out (and, after the PG said it
 *   holds nothing, a bounded re-confirm, which moves the phase back to `confirming`);
 * - `canceling`: Sluice has decided to cancel; no confirm may ever go out again;
 * - `final`: nothing more is sent for this payment (except a reconciliation repair).
 */
export const PHASES = ['queued', 'confirming', 'inquiring', 'canceling', 'final'] as const;
/** A payment's internal phase. */
export type Phase = (typeof PHASES)[number];

/** The merchant-visible status of a phase that is not final. */
export function statusOfPhase(phase: Exclude<Phase, 'final'>): PaymentStatus {
  return phase === 'queued' ? 'QUEUED' : 'PROCESSING';
}

/**
 * Allowed phase moves: the one table of the lifecycle. `queued → confirming` is the first send;
 * nothing ever goes back to `queued`, and nothing leaves `canceling` except to `final` (or
 * `inquiring` when a cancel's answer was itself unclear). A move to the same phase is a repeat
 * (a confirm re-sent with its key, another inquiry). The Lua scripts that move phases (the phase
 * guard and apply-step) take it from here as constants generated at build time
 * ({@link lifecycleLua}, `npm run gen:lua`); a test fails when those are stale, and another walks
 * every (phase, move) pair against the real scripts. A status changed within `final` (a
 * reconciliation repair; a refund bringing the balance to 0) is not a phase move.
 */
export const PHASE_MOVES: Readonly<Record<Phase, readonly Phase[]>> = {
  queued: ['confirming', 'final'],
  // → canceling: the merchant cancels a payment being confirmed (refunds.ts, a `void`).
  confirming: ['confirming', 'inquiring', 'canceling', 'final'],
  inquiring: ['confirming', 'inquiring', 'canceling', 'final'],
  canceling: ['canceling', 'inquiring', 'final'],
  final: [],
};

/** Whether the lifecycle allows a move from one phase to another. */
export function canMove(from: Phase, to: Phase): boolean {
  return PHASE_MOVES[from].includes(to);
}

/** The phases from which a move to `to` is legal. */
export function phasesInto(to: Phase): Phase[] {
  return PHASES.filter((p) => PHASE_MOVES[p].includes(to));
}

/**
 * The Lua include the phase-moving scripts use (`packages/store/src/lua/includes/lifecycle.lua`):
 * {@link PHASE_MOVES} as a table of sets, and the check. Generated, never edited by hand.
 */
export function lifecycleLua(): string {
  const rows = PHASES.map((from) => `  ${from} = { ${PHASE_MOVES[from].map((to) => `${to} = true`).join(', ')} },`);
  return [
    '--[[',
    '  GENERATED from packages/domain/src/status.ts (PHASE_MOVES) by `npm run gen:lua`. Do not edit:',
    '  change the table in the domain and regenerate; a test fails while this file is stale.',
    '',
    '  canMove(from, to): whether the lifecycle allows a payment in phase `from` to move to `to`.',
    ']]',
    'local PHASE_MOVES = {',
    ...rows,
    '}',
    'local function canMove(from, to)',
    '  local moves = PHASE_MOVES[from]',
    '  return moves ~= nil and moves[to] == true',
    'end',
    '',
  ].join('\n');
}
