/**
 * The simulator's knobs: fault rates, latency shape and the contract's limits. They can be set at
 * start (options or `SIM_*` env) and changed at runtime through `POST /__sim/config`, so every
 * value is validated by the one function below whichever way it arrives.
 */

/** How the PG is unreachable: `refuse` closes the listener, `hang` reads requests and never answers. */
export type OutageMode = 'none' | 'refuse' | 'hang';

/** Every runtime-tunable behaviour of the simulator. Rates are probabilities in 0..1. */
export interface SimulatorKnobs {
  /** Share of confirms declined (403, payment ABORTED). */
  declineRate: number;
  /** Share of confirms that commit on time but whose answer leaves `lateMs` later. */
  lateRate: number;
  lateMs: number;
  /** Share of confirms that commit, then lose the connection without an answer. */
  dropRate: number;
  /**
   * How long a confirm of the `unread` scenario sits unread (as in a socket buffer of a PG that
   * is slow to read): until then the PG holds nothing for it, and it is processed afterwards
   * even if the client has given up and closed the connection.
   */
  unreadMs: number;
  /** Share of confirms whose approval runs `longApprovalMinMs`..`longApprovalMaxMs`. */
  longApprovalRate: number;
  longApprovalMinMs: number;
  longApprovalMaxMs: number;
  /** Share answered 500 after committing the charge. */
  ambiguousCommitRate: number;
  /** Share answered 500 without recording anything. */
  ambiguousNoCommitRate: number;
  /** Share answered 502 PROVIDER_ERROR after committing. */
  providerErrorCommitRate: number;
  /** Share answered 502 PROVIDER_ERROR without recording anything. */
  providerErrorNoCommitRate: number;
  /** Share of cancels that commit, then answer 500 (not stored: the same key cancels again). */
  cancelCommitErrorRate: number;
  /** Share of cancels that commit, then lose the connection without an answer (not stored either). */
  cancelDropRate: number;
  /** Share of cancels processed `cancelSlowMs` late: the cancel commits then, and answers then. */
  cancelSlowRate: number;
  cancelSlowMs: number;
  outage: OutageMode;
  /** When > 0, an outage ends by itself after this long (a refused listener cannot take the HTTP call that ends it). */
  outageMs: number;
  /** Median approval latency; 0 makes approvals immediate (fast tests). */
  latencyMedianMs: number;
  latencyP99Ms: number;
  /** Contract: 500 requests in any rolling 1,000 ms window. */
  rateLimit: number;
  windowMs: number;
  /** Contract: 200 concurrent connections. */
  maxConnections: number;
  /** Contract: idle keep-alive 4 s. */
  keepAliveMs: number;
  /** Contract: 16 KiB request body. */
  maxBodyBytes: number;
}

/** Defaults: a healthy PG with the contract's limits and a ~150 ms median / ~1.5 s p99 approval. */
export const DEFAULT_KNOBS: Readonly<SimulatorKnobs> = Object.freeze({
  declineRate: 0,
  lateRate: 0,
  lateMs: 12_000,
  dropRate: 0,
  unreadMs: 20_000,
  longApprovalRate: 0,
  longApprovalMinMs: 12_000,
  longApprovalMaxMs: 30_000,
  ambiguousCommitRate: 0,
  ambiguousNoCommitRate: 0,
  providerErrorCommitRate: 0,
  providerErrorNoCommitRate: 0,
  cancelCommitErrorRate: 0,
  cancelDropRate: 0,
  cancelSlowRate: 0,
  cancelSlowMs: 5_000,
  outage: 'none',
  outageMs: 0,
  latencyMedianMs: 150,
  latencyP99Ms: 1_500,
  rateLimit: 500,
  windowMs: 1_000,
  maxConnections: 200,
  keepAliveMs: 4_000,
  maxBodyBytes: 16_384,
});

type KnobKind = 'rate' | 'ms' | 'count' | 'outage';

const KNOB_KINDS: Record<keyof SimulatorKnobs, KnobKind> = {
  declineRate: 'rate',
  lateRate: 'rate',
  lateMs: 'ms',
  unreadMs: 'ms',
  dropRate: 'rate',
  longApprovalRate: 'rate',
  longApprovalMinMs: 'ms',
  longApprovalMaxMs: 'ms',
  ambiguousCommitRate: 'rate',
  ambiguousNoCommitRate: 'rate',
  providerErrorCommitRate: 'rate',
  providerErrorNoCommitRate: 'rate',
  cancelCommitErrorRate: 'rate',
  cancelDropRate: 'rate',
  cancelSlowRate: 'rate',
  cancelSlowMs: 'ms',
  outage: 'outage',
  outageMs: 'ms',
  latencyMedianMs: 'ms',
  latencyP99Ms: 'ms',
  rateLimit: 'count',
  windowMs: 'count',
  maxConnections: 'count',
  keepAliveMs: 'ms',
  maxBodyBytes: 'count',
};

/** Names of all knobs, in declaration order. */
export const KNOB_NAMES = Object.keys(KNOB_KINDS) as (keyof SimulatorKnobs)[];

/** Result of validating untrusted knob input. */
export type KnobPatchResult =
  | { ok: true; patch: Partial<SimulatorKnobs> }
  | { ok: false; message: string };

function isKnobName(name: string): name is keyof SimulatorKnobs {
  return Object.hasOwn(KNOB_KINDS, name);
}

function checkValue(kind: KnobKind, value: unknown): boolean {
  switch (kind) {
    case 'rate':
      return typeof value === 'number' && value >= 0 && value <= 1;
    case 'ms':
      return typeof value === 'number' && Number.isFinite(value) && value >= 0;
    case 'count':
      return typeof value === 'number' && Number.isInteger(value) && value >= 1;
    case 'outage':
      return value === 'none' || value === 'refuse' || value === 'hang';
  }
}

/** Validates a partial knob object (JSON from `/__sim/config`, or options); unknown names are errors. */
export function parseKnobPatch(input: unknown): KnobPatchResult {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, message: 'config must be a JSON object' };
  }
  const patch: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (!isKnobName(name)) return { ok: false, message: `unknown knob "${name}"` };
    const kind = KNOB_KINDS[name];
    if (!checkValue(kind, value)) return { ok: false, message: `knob "${name}" must be a valid ${kind}` };
    patch[name] = value;
  }
  return { ok: true, patch: patch as Partial<SimulatorKnobs> };
}

/** Applies a validated patch and checks the cross-field rules; returns an error message or the merged knobs. */
export function mergeKnobs(base: SimulatorKnobs, patch: Partial<SimulatorKnobs>): SimulatorKnobs | string {
  const next: SimulatorKnobs = { ...base, ...patch };
  if (next.latencyP99Ms < next.latencyMedianMs) return 'latencyP99Ms must be >= latencyMedianMs';
  if (next.longApprovalMaxMs < next.longApprovalMinMs) return 'longApprovalMaxMs must be >= longApprovalMinMs';
  return next;
}

/** `latencyP99Ms` → `SIM_LATENCY_P99_MS`. */
export function envNameFor(knob: string): string {
  return 'SIM_' + knob.replace(/([A-Z])/g, '_$1').toUpperCase();
}

/** Reads every knob's `SIM_*` variable; throws naming the variable when one is invalid. */
export function knobsFromEnv(env: Record<string, string | undefined>): Partial<SimulatorKnobs> {
  const raw: Record<string, unknown> = {};
  for (const name of KNOB_NAMES) {
    const text = env[envNameFor(name)];
    if (text === undefined || text === '') continue;
    raw[name] = KNOB_KINDS[name] === 'outage' ? text : Number(text);
    const one = parseKnobPatch({ [name]: raw[name] });
    if (!one.ok) throw new Error(`${envNameFor(name)}=${text}: ${one.message}`);
  }
  const all = parseKnobPatch(raw);
  if (!all.ok) throw new Error(all.message);
  return all.patch;
}
