/**
 * Start-up options: where to listen, the account's secret key, the seed, and initial knobs. The
 * same options come from the environment in `main.ts`, with one `SIM_*` variable per knob.
 */
import { DEFAULT_KNOBS, KNOB_NAMES, knobsFromEnv, mergeKnobs, parseKnobPatch, type SimulatorKnobs } from './knobs.ts';

/** Options of `startSimulator`; every knob of {@link SimulatorKnobs} may be given too. */
export interface SimulatorOptions extends Partial<SimulatorKnobs> {
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** The one secret key (one account) the simulator accepts. */
  secretKey?: string;
  /** Seed of every random choice. */
  seed?: number;
  /**
   * When set, `/__sim/*` is also served on this port, which stays up through a `refuse` outage
   * (the main listener is closed then, so it cannot take the call that ends the outage).
   */
  adminPort?: number;
}

/** `main.ts` listens here by default; `startSimulator` defaults to 0 (a free port). */
export const DEFAULT_PORT = 4010;
/** Loopback only by default: the simulator has no business on a public interface. */
export const DEFAULT_HOST = '127.0.0.1';
/** The demo account's secret key, shared with the project's default config. */
export const DEFAULT_SECRET_KEY = 'test_sk_sluice_demo';
/** A fixed default seed, so two runs without `seed` draw the same outcomes. */
export const DEFAULT_SEED = 0x5eed;

/** Options with every field decided. */
export interface ResolvedOptions {
  port: number;
  host: string;
  secretKey: string;
  seed: number;
  adminPort: number | null;
  knobs: SimulatorKnobs;
}

/** Fills defaults and validates the knobs; throws with a message naming the bad knob. */
export function resolveOptions(opts: Partial<SimulatorOptions>, defaultPort = 0): ResolvedOptions {
  const given: Record<string, unknown> = {};
  for (const name of KNOB_NAMES) {
    if (opts[name] !== undefined) given[name] = opts[name];
  }
  const parsed = parseKnobPatch(given);
  if (!parsed.ok) throw new Error(`pg-simulator options: ${parsed.message}`);
  const knobs = mergeKnobs({ ...DEFAULT_KNOBS }, parsed.patch);
  if (typeof knobs === 'string') throw new Error(`pg-simulator options: ${knobs}`);
  return {
    port: opts.port ?? defaultPort,
    host: opts.host ?? DEFAULT_HOST,
    secretKey: opts.secretKey ?? DEFAULT_SECRET_KEY,
    seed: opts.seed ?? DEFAULT_SEED,
    adminPort: opts.adminPort ?? null,
    knobs,
  };
}

function intFromEnv(env: Record<string, string | undefined>, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name}=${text}: must be a non-negative integer`);
  return value;
}

/**
 * Options from `SIM_PORT` (default 4010), `SIM_HOST`, `SIM_SECRET_KEY`, `SIM_SEED`,
 * `SIM_ADMIN_PORT` and one `SIM_<KNOB>` per knob (e.g. `SIM_DECLINE_RATE`, `SIM_LATENCY_P99_MS`).
 */
export function optionsFromEnv(env: Record<string, string | undefined>): SimulatorOptions {
  const opts: SimulatorOptions = { ...knobsFromEnv(env), port: intFromEnv(env, 'SIM_PORT') ?? DEFAULT_PORT };
  if (env['SIM_HOST']) opts.host = env['SIM_HOST'];
  if (env['SIM_SECRET_KEY']) opts.secretKey = env['SIM_SECRET_KEY'];
  const seed = intFromEnv(env, 'SIM_SEED');
  if (seed !== undefined) opts.seed = seed;
  const adminPort = intFromEnv(env, 'SIM_ADMIN_PORT');
  if (adminPort !== undefined) opts.adminPort = adminPort;
  return opts;
}
