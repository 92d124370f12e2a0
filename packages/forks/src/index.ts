/**
 * N processes of one app on one machine (node:cluster): the API's `API_PROCESSES` behind one
 * port, the worker's `WORKER_FORKS`. The primary only supervises: it forks the count, forks
 * again a process that dies (at most one a second), passes SIGTERM and SIGINT on to every fork,
 * and exits once all of them have, with the worst exit code among them, so that a supervisor
 * above (compose, systemd) sees an unclean stop. Forks that keep dying at start-up (a bad
 * setting: forking again cannot help) make it give up, exit code 1.
 *
 * And how every process takes its stop signal (`onStop`), forked or not.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';

/** A fork that exits sooner than this after it was forked failed at start-up. */
const START_MS = 5_000;
/** Start-up failures in a row after which the primary gives up. */
const START_FAILURES = 3;
/** A signal this soon after the first is the same stop delivered twice, not an operator's second. */
const SAME_STOP_MS = 1_000;

/** How the primary runs its forks. */
export interface ForkOptions {
  count: number;
  log: Logger;
  /** Environment added to each fork's. */
  env?: Record<string, string>;
  /** A message from a fork (IPC), with the fork to answer. */
  onMessage?: (fork: Worker, message: unknown) => void;
}

/** Forks and supervises `count` processes; returns once they are forked. The primary's only job from then on. */
export function superviseForks(o: ForkOptions): void {
  let stopping = false;
  let worstExit = 0;
  let lastFork = 0;
  let startFailures = 0;
  const bornAt = new Map<Worker, number>();
  // Counted here: node:cluster drops a fork from `cluster.workers` only once its IPC channel closed too.
  const alive = new Set<Worker>();
  const fork = () => {
    const w = cluster.fork(o.env);
    alive.add(w);
    bornAt.set(w, Date.now());
  };
  for (let i = 0; i < o.count; i++) fork();
  if (o.onMessage) cluster.on('message', o.onMessage);
  cluster.on('exit', (w, code, signal) => {
    alive.delete(w);
    const livedMs = Date.now() - (bornAt.get(w) ?? 0);
    bornAt.delete(w);
    o.log.warn({ fork: w.process.pid, code, signal, alert: !stopping }, 'forked process exited');
    if (stopping) {
      worstExit = Math.max(worstExit, code ?? 1);
      if (alive.size === 0) process.exit(worstExit);
      return;
    }
    startFailures = livedMs < START_MS ? startFailures + 1 : 0;
    if (startFailures >= START_FAILURES) {
      o.log.fatal({ alert: true, failures: startFailures }, 'forked processes keep failing at start-up (see their errors above): giving up');
      stopping = true;
      for (const other of alive) other.process.kill('SIGTERM');
      if (alive.size === 0) process.exit(1);
      worstExit = 1;
      return;
    }
    const wait = Math.max(0, lastFork + 1_000 - Date.now());
    lastFork = Date.now() + wait;
    setTimeout(() => {
      if (!stopping) fork();
    }, wait);
  });
  // A second signal: the primary leaves at once (the forks got theirs and act on it).
  onStop((sig) => {
    stopping = true;
    if (alive.size === 0) process.exit(0);
    for (const w of alive) w.process.kill(sig);
  }, o.log);
}

/**
 * Runs `stop` on the first SIGTERM or SIGINT; a second one exits at once (code 1), an impatient
 * operator's way out. Except within a second of the first: a terminal's Ctrl-C or a service
 * manager's stop reaches every process of the group, and a fork gets it again from its primary.
 */
export function onStop(stop: (signal: NodeJS.Signals) => void, log: Logger): void {
  let firstAt = 0;
  const handle = (signal: NodeJS.Signals) => {
    if (firstAt === 0) {
      firstAt = Date.now();
      stop(signal);
      return;
    }
    if (Date.now() - firstAt < SAME_STOP_MS) return;
    log.warn({ signal }, 'second signal: exiting now');
    process.exit(1);
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}
