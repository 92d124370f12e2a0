/**
 * The worker process. With WORKER_PROCESSES=N > 1 the primary forks N workers (node:cluster),
 * each with its share (PG_CONNECTIONS_TOTAL ÷ N) of the PG's connections. Workers on several
 * machines: run this on each, with WORKER_PROCESSES set to the total count of worker processes
 * and WORKER_FORKS to the count on that machine.
 */
import cluster from 'node:cluster';
import { loadConfig, refuseDemoSecrets, workerConcurrency, type Config } from '@sluice/config';
import { exposeWorkerMetrics, serveClusterMetrics } from './metrics.ts';
import { createLogger } from '@sluice/log';
import { startWorker } from './runtime.ts';

const config = bootConfig();
const log = createLogger(config, { name: 'worker' });

/** The configuration, or exit 1 with the reason on one line (no stack: it is the operator's to fix). */
function bootConfig(): Config {
  try {
    const c = loadConfig();
    refuseDemoSecrets(c);
    return c;
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
const forks = config.WORKER_FORKS ?? config.WORKER_PROCESSES;

if (cluster.isPrimary && forks > 1) {
  // One metrics port per machine: the primary aggregates its forks' registries (prom-client).
  await serveClusterMetrics(config.WORKER_METRICS_PORT, config.HOST);
  for (let i = 0; i < forks; i++) cluster.fork();
  let stopping = false;
  // A fork that dies is replaced (its connection share is free again once it is gone), at most
  // one a second so that a fork failing at start-up does not spin.
  let lastFork = 0;
  cluster.on('exit', (w, code, signal) => {
    log.warn({ pid: w.process.pid, code, signal, alert: !stopping }, 'worker process exited');
    if (stopping) return;
    const wait = Math.max(0, lastFork + 1_000 - Date.now());
    lastFork = Date.now() + wait;
    setTimeout(() => {
      if (!stopping) cluster.fork();
    }, wait);
  });
  const stop = (sig: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(sig);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const running = await startWorker(config, log, () => process.exit(1));
  const metricsServer = await exposeWorkerMetrics(running.metrics, config.WORKER_METRICS_PORT, config.HOST);
  log.info({ concurrency: workerConcurrency(config), gate: config.GATE_ENABLED }, 'worker started');
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) {
      log.warn('second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ sig }, 'stopping: finishing in-flight PG calls');
    metricsServer?.close();
    await running.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
