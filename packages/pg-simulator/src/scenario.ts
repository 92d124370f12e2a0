/**
 * What a confirm will do: forced per request (`X-Sim-Scenario` header or a `sim_<name>_` paymentKey
 * prefix) or drawn from the fault knobs. A scenario is turned into a plan of three independent
 * parts: what happens to the money, what the answer says, and how the answer is delivered.
 */
import type { SimulatorKnobs } from './knobs.ts';
import type { Rng } from './rng.ts';

/** Every forced outcome the simulator knows. */
export const SCENARIOS = [
  'approve',
  'decline',
  'late',
  'drop',
  'unread',
  'long',
  'ambiguous_commit',
  'ambiguous_nocommit',
  'provider_commit',
  'provider_nocommit',
  'nosession',
  'expired',
  'unknown_status',
  'unknown_code',
] as const;

/** One of {@link SCENARIOS}. */
export type Scenario = (typeof SCENARIOS)[number];

/** A scenario that gets as far as an approval (the session was valid). */
export type PlannedScenario = Exclude<Scenario, 'nosession' | 'expired'>;

const SCENARIO_SET: ReadonlySet<string> = new Set(SCENARIOS);

/**
 * The forced scenario of a confirm, if any. The header wins over the key marker. The marker lives
 * in the paymentKey itself, so it holds again for every retry of that paymentKey.
 */
export function forcedScenario(header: string | undefined, paymentKey: string): Scenario | null {
  if (header !== undefined && SCENARIO_SET.has(header)) return header as Scenario;
  if (!paymentKey.startsWith('sim_')) return null;
  for (const name of SCENARIOS) {
    if (paymentKey.startsWith(name + '_', 4)) return name;
  }
  return null;
}

/** One uniform draw against the cumulative fault rates; whatever is left over approves. */
export function drawScenario(knobs: SimulatorKnobs, rng: Rng): PlannedScenario {
  const u = rng.next();
  let edge = 0;
  const table: [number, PlannedScenario][] = [
    [knobs.declineRate, 'decline'],
    [knobs.lateRate, 'late'],
    [knobs.dropRate, 'drop'],
    [knobs.longApprovalRate, 'long'],
    [knobs.ambiguousCommitRate, 'ambiguous_commit'],
    [knobs.ambiguousNoCommitRate, 'ambiguous_nocommit'],
    [knobs.providerErrorCommitRate, 'provider_commit'],
    [knobs.providerErrorNoCommitRate, 'provider_nocommit'],
  ];
  for (const [rate, scenario] of table) {
    edge += rate;
    if (u < edge) return scenario;
  }
  return 'approve';
}

/** How a confirm unfolds once its session is valid and a record is open. */
export interface ConfirmPlan {
  /** `approve` charges, `decline` aborts, `none` leaves no record at all. */
  effect: 'approve' | 'decline' | 'none';
  answer: 'payment' | 'decline' | 'ambiguous' | 'provider' | 'unknown_status' | 'unknown_code';
  delivery: 'now' | 'late' | 'drop';
  long: boolean;
}

const PLANS: Record<PlannedScenario, ConfirmPlan> = {
  approve: { effect: 'approve', answer: 'payment', delivery: 'now', long: false },
  decline: { effect: 'decline', answer: 'decline', delivery: 'now', long: false },
  late: { effect: 'approve', answer: 'payment', delivery: 'late', long: false },
  drop: { effect: 'approve', answer: 'payment', delivery: 'drop', long: false },
  // Read `unreadMs` late (api-handler.ts), then approved like any confirm.
  unread: { effect: 'approve', answer: 'payment', delivery: 'now', long: false },
  long: { effect: 'approve', answer: 'payment', delivery: 'now', long: true },
  ambiguous_commit: { effect: 'approve', answer: 'ambiguous', delivery: 'now', long: false },
  ambiguous_nocommit: { effect: 'none', answer: 'ambiguous', delivery: 'now', long: false },
  provider_commit: { effect: 'approve', answer: 'provider', delivery: 'now', long: false },
  provider_nocommit: { effect: 'none', answer: 'provider', delivery: 'now', long: false },
  unknown_status: { effect: 'approve', answer: 'unknown_status', delivery: 'now', long: false },
  unknown_code: { effect: 'none', answer: 'unknown_code', delivery: 'now', long: false },
};

/** The plan of a scenario that passed the session check. */
export function planFor(scenario: PlannedScenario): ConfirmPlan {
  return PLANS[scenario];
}
