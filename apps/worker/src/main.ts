/**
 * The worker process. With WORKER_PROCESSES=N > 1 the primary forks N workers (node:cluster),
 * each with its share (PG_CONNECTIONS_TOTAL ÷ N) of the PG's connections. Workers on several
 * machines: run this on each, with WORKER_PROCESSES set to the total count of worker processes
 * and WORKER_FORKS to the count on that machine.
 */
import cluster from 'node:cluster';
import { describeRedisTarget, loadConfig, redisTargetOf, refuseDemoSecrets, workerConcurrency, type Config } from '@sluice/config';
import { exposeWorkerMetrics, serveClusterMetrics } from './metrics.ts';
import { onStop, superviseForks } from '@sluice/forks';
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

/** What closing may take past the grace period (handing jobs back, quitting connections). */
const SHUTDOWN_CLOSE_MS = 2_000;

if (cluster.isPrimary && forks > 1) {
  // One metrics port per machine: the primary aggregates its forks' registries (prom-client).
  await serveClusterMetrics(config.WORKER_METRICS_PORT, config.HOST);
  // Each fork's connection share is free again once it is gone, so a dead one is simply replaced.
  superviseForks({ count: forks, log });
} else {
  const running = await startWorker(config, log, () => process.exit(1));
  const metricsServer = await exposeWorkerMetrics(running.metrics, config.WORKER_METRICS_PORT, config.HOST);
  log.info({ concurrency: workerConcurrency(config), gate: config.GATE_ENABLED, redis: describeRedisTarget(redisTargetOf(config)) }, 'worker started');
  const stop = async (sig: string) => {
    log.info({ sig }, 'stopping: finishing in-flight PG calls');
    // Closing talks to Redis (admission's last step, handing jobs back, quitting): with Redis away
    // or hung it would wait for ever. Past the grace period and a little for that, exit anyway:
    // the jobs' locks lapse and other workers take them over, as after a crash.
    setTimeout(() => {
      log.error({ graceMs: config.WORKER_SHUTDOWN_GRACE_MS }, 'Redis did not answer during shutdown: exiting unclean; other workers take the jobs over');
      process.exit(1);
    }, config.WORKER_SHUTDOWN_GRACE_MS + SHUTDOWN_CLOSE_MS).unref();
    metricsServer?.close();
    await running.close();
    process.exit(0);
  };
  onStop((sig) => void stop(sig), log);
}
