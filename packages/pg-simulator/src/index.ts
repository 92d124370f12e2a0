/**
 * The PG simulator: an HTTP server that behaves as the PG's contract says, with a ledger that
 * tells the truth about charges and knobs that inject the contract's hazards. It shares no code
 * with the rest of the repository on purpose: it is the outside world. A package, so that the
 * process (apps/pg-simulator), the worker's tests and the bench all use the same one.
 */
export { startSimulator, type RunningSimulator } from './server.ts';
export { DEFAULT_SECRET_KEY, optionsFromEnv, type SimulatorOptions } from './options.ts';
export { DEFAULT_KNOBS, envNameFor, type OutageMode, type SimulatorKnobs } from './knobs.ts';
export { SimulatorState, type LedgerEntryView, type SimulatorStats } from './state.ts';
export { maxInRollingWindow, ENDPOINT_CODES, type EndpointCode } from './arrival-log.ts';
export { SCENARIOS, type Scenario } from './scenario.ts';
