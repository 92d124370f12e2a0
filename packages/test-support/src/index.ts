/**
 * What the system tests (test/) and the bench (apps/bench) share: starting Sluice's real
 * processes, and checking every money rule against the PG's ledger. Private: nothing in the
 * gateway itself imports it.
 */
export * from './processes.ts';
export * from './invariants.ts';
export * from './tcp-proxy.ts';
export * from './redis-servers.ts';
