/**
 * Command-line flags of `npm run bench`. Defaults are the benchmark's targets (60 s of overload at
 * 1,000/s, 3 runs of the gate); `--quick` shrinks everything for a smoke check, and explicit flags
 * still win over it.
 */
import { parseArgs } from 'node:util';

/** The bench's scenarios, in the order they run. */
export const SCENARIOS = ['overload', 'cpu', 'intake', 'faults', 'memory', 'slow', 'crash', 'books', 'fair', 'providers', 'refunds', 'webhooks', 'redis', 'cluster'] as const;
/** One scenario's name (`--only`). */
export type ScenarioName = (typeof SCENARIOS)[number];

/** The bench's flags, parsed. */
export interface BenchOptions {
  /** Overload duration, seconds. */
  seconds: number;
  /** Offered rate of the overload, payments per second. */
  rate: number;
  /** Runs of the main gate configuration (1 worker process). */
  runs: number;
  only: ScenarioName | null;
  quick: boolean;
  /** Where the report goes (relative to the repository root). */
  out: string;
  /** Latency-bound run: seconds of load. */
  latencySeconds: number;
  /** Intake: measured seconds per server, after `intakeWarmup`. */
  intakeSeconds: number;
  intakeWarmup: number;
  intakeConnections: number;
  /** Rounds of (no-op, Sluice) measurements; the ratio is their median. */
  intakeRounds: number;
  /** Faults: payments and their rate. */
  faultPayments: number;
  faultRate: number;
  /** Memory: payments created through the API. */
  memoryPayments: number;
  /** Overload configurations to run, in order (all by default). */
  configs: OverloadKey[];
  /** When set, each overload run's raw evidence (arrivals, samples) is written here as JSON. */
  raw: string | null;
  /**
   * The simulator's scheduling priority (nice). It stands in for a PG on its own machine, whose
   * clock the contract says jitters by a few ms; on these shared 2-core machines a simulator at
   * equal priority is starved by the load generator and Sluice for tens of ms at a time, and its
   * arrival clock then reads a burst. Default −10; `--sim-nice 0` measures it at equal priority.
   */
  simNice: number;
  /**
   * When set, the API and worker processes run with `--cpu-prof` and write their profiles here
   * (one file per process and thread, at exit); docs/perf.md reads them.
   */
  cpuProf: string | null;
}

/** The overload configurations (`--configs`). */
export const OVERLOAD_KEYS = ['gate1', 'gate4', 'baseline'] as const;
/** One overload configuration's name. */
export type OverloadKey = (typeof OVERLOAD_KEYS)[number];

/** The usage line printed on a bad flag or `--help`. */
export const USAGE =
  'npm run bench -- [--seconds N] [--rate N] [--runs N] [--only overload|cpu|intake|faults|memory|slow|crash|books|fair|providers|refunds|webhooks|redis|cluster] [--quick] [--out FILE]\n' +
  '                 [--configs gate1,gate4,baseline] [--raw DIR] [--sim-nice N] [--cpu-prof DIR]';

function positive(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} ${text}: want a positive number`);
  return n;
}

/** Parses argv (without node and the script); throws with a readable message on a bad flag. */
export function parseBenchArgs(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string' },
      rate: { type: 'string' },
      runs: { type: 'string' },
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      configs: { type: 'string' },
      raw: { type: 'string' },
      'sim-nice': { type: 'string' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const only = values.only ?? null;
  if (only !== null && !(SCENARIOS as readonly string[]).includes(only)) {
    throw new Error(`--only ${only}: want one of ${SCENARIOS.join(', ')}`);
  }
  const quick = values.quick === true;
  const configs = (values.configs ?? OVERLOAD_KEYS.join(',')).split(',').map((c) => c.trim());
  for (const c of configs) {
    if (!(OVERLOAD_KEYS as readonly string[]).includes(c)) throw new Error(`--configs ${c}: want some of ${OVERLOAD_KEYS.join(', ')}`);
  }
  return {
    seconds: positive('seconds', values.seconds, quick ? 15 : 60),
    rate: positive('rate', values.rate, 1000),
    runs: Math.round(positive('runs', values.runs, quick ? 1 : 3)),
    only: only as ScenarioName | null,
    quick,
    out: values.out ?? 'BENCHMARKS.md',
    latencySeconds: quick ? 10 : 20,
    intakeSeconds: quick ? 5 : 10,
    intakeWarmup: 2,
    intakeConnections: 64,
    intakeRounds: quick ? 1 : 3,
    faultPayments: quick ? 600 : 2000,
    faultRate: 300,
    memoryPayments: quick ? 5000 : 20_000,
    configs: configs as OverloadKey[],
    raw: values.raw ?? null,
    simNice: values['sim-nice'] === undefined ? -10 : Number(values['sim-nice']),
    cpuProf: values['cpu-prof'] ?? null,
  };
}

/** Whether a scenario is part of this run. */
export function wants(o: BenchOptions, s: ScenarioName): boolean {
  return o.only === null || o.only === s;
}
