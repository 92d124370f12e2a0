/**
 * The API process: builds its clients from the environment, serves `createApp`, and shuts down
 * without losing a payment it has acknowledged. Run with `tsx apps/api/src/main.ts`. With
 * API_PROCESSES=N > 1 this process only supervises N forks on the same port (`@sluice/forks`).
 *
 * Shutdown order matters: stop accepting, let in-flight requests finish (each 202 was sent after
 * Redis stored the payment in its merchant's fair queue, from which the workers admit it), then
 * close the queues and Redis.
 */
import cluster from 'node:cluster';
import type { Server } from 'node:http';
import { BooksReader, booksPool } from '@sluice/books';
import { describeRedisTarget, loadConfig, providersOf, redisTargetOf, refuseDemoSecrets, type Config } from '@sluice/config';
import { onStop, superviseForks } from '@sluice/forks';
import { checkRedisSafety, checkShardCount, connectConfigured, makeKeys, PaymentStore, replicaWaiterOf, storeOptionsOf, watchRedis } from '@sluice/store';
import { createQueues } from '@sluice/queue';
import { createApp } from './app.ts';
import { breakerCheck, redisMemoryCheck } from './dashboard/readiness.ts';
import { loggableError } from './errors.ts';
import { createHttpServer } from './http-server.ts';
import { createLogger } from '@sluice/log';
import type { Logger } from 'pino';
import { answerFigureRequests, API_FORK_ENV } from './metrics.ts';
import { FinalWaiters, MAX_WAITERS } from './long-poll.ts';

/** Past this, connections still open at shutdown are cut so that the process does exit. */
const SHUTDOWN_GRACE_MS = 10_000;
/** What closing may take past the grace period (queues, connections). */
const SHUTDOWN_CLOSE_MS = 2_000;

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  refuseDemoSecrets(config);
  const logger = createLogger(config, { name: 'sluice-api' });
  if (cluster.isPrimary && config.API_PROCESSES > 1) {
    // API_PROCESSES: the primary serves nothing itself. Each fork listens on PORT; node:cluster
    // hands each new connection to the next fork in turn. Everything a request needs is in Redis,
    // so any fork answers any request (a long poll is woken through Redis, whichever fork wrote).
    superviseForks({ count: config.API_PROCESSES, log: logger, env: { [API_FORK_ENV]: '1' }, onMessage: answerFigureRequests() });
    logger.info({ processes: config.API_PROCESSES, host: config.HOST, port: config.PORT }, 'sluice api: forked its processes');
    return;
  }
  await serve(config, logger);
}

/** One API process: its connections, the app on PORT, and its shutdown. */
async function serve(config: Config, logger: Logger): Promise<void> {
  // The intake script has this connection to itself; queues and the board use another, so a
  // slow board query never sits in front of a payment's round trip.
  const redis = connectConfigured(config, logger);
  const queueRedis = connectConfigured(config, logger);
  // An evicting Redis loses payments and idempotency keys: refuse it (unless overridden).
  await checkRedisSafety(redis, config.REDIS_ALLOW_EVICTION, logger, config.REDIS_WAIT_REPLICAS);

  const store = new PaymentStore(redis, storeOptionsOf(config));
  await checkShardCount(redis, store.keys);
  const queues = createQueues(queueRedis, config.REDIS_PREFIX);

  // Advisory: /readyz shows them (memory warn, breaker state) but stays 200 for them.
  // One breaker check per provider (`breaker` with one PG, `breaker:<id>` with several).
  const providers = providersOf(config);
  const readinessChecks = [
    redisMemoryCheck(queueRedis, makeKeys(config.REDIS_PREFIX, undefined, config.REDIS_SHARDS)),
    ...providers.map((p) => breakerCheck(queueRedis, makeKeys(config.REDIS_PREFIX, p.id, config.REDIS_SHARDS), providers.length === 1 ? 'breaker' : `breaker:${p.id}`)),
  ];
  // Long polls: one subscriber connection, opened on the first `?wait`.
  const subscriber = () => {
    const sub = redis.duplicate({ enableAutoPipelining: false });
    // A subscriber that hangs would leave every long poll waiting out its timeout.
    watchRedis(sub, { hangMs: config.REDIS_HANG_MS, onHang: (hangMs) => logger.warn({ hangMs }, 'long-poll subscriber answered no PING: dropped, reconnecting') });
    return sub;
  };
  const waiters = new FinalWaiters(subscriber, store.keys.finalChannel, MAX_WAITERS, (err) =>
    logger.warn({ err: loggableError(err) }, 'long-poll subscriber: Redis error; waits fall back to their timeout'),
  );
  // The books: payments Redis has forgotten, lists, summaries. Without DATABASE_URL, Redis only.
  const booksDb = config.DATABASE_URL ? booksPool(config.DATABASE_URL) : null;
  if (!booksDb) logger.warn('DATABASE_URL is not set: archived payments, lists and summaries answer 503 BOOKS_UNAVAILABLE');
  const books = booksDb ? new BooksReader(booksDb) : null;
  // REDIS_WAIT_REPLICAS: a 202 only for writes on the replicas (one WAIT per batch, its own connection).
  const replicas = replicaWaiterOf(config, redis);
  const app = createApp({ config, store, queues, logger, readinessChecks, waiters, books, replicas });
  const server: Server = createHttpServer(app, config).listen(config.PORT, config.HOST, () => {
    logger.info({ host: config.HOST, port: config.PORT, redis: describeRedisTarget(redisTargetOf(config)) }, 'sluice api listening');
  });
  server.on('error', (err) => {
    logger.fatal({ err }, 'http server error');
    process.exit(1);
  });

  const shutdown = async (signal: NodeJS.Signals): Promise<void> => {
    logger.info({ signal }, 'shutting down: no new connections, finishing requests in flight');
    const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
    force.unref();
    // Closing the queues and connections talks to Redis: with Redis away or hung it would wait for
    // ever. Nothing is lost by leaving (a request not answered 202 was not accepted).
    setTimeout(() => {
      logger.error('Redis did not answer during shutdown: exiting unclean');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS + SHUTDOWN_CLOSE_MS).unref();
    try {
      // close() stops accepting and (Node ≥ 19) drops idle keep-alive sockets; its callback
      // runs once every in-flight request has been answered.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Long polls are answered now, with the state as it is, rather than holding shutdown.
      await waiters.close();
      await closed;
      await queues.close();
      await replicas?.close();
      await Promise.all([redis.quit(), queueRedis.quit(), booksDb?.end()]);
      logger.info('shut down cleanly');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'unclean shutdown');
      process.exit(1);
    }
  };
  onStop((s) => void shutdown(s), logger);
}

main().catch((err: unknown) => {
  // Before the logger exists (bad config) this is the only way to say why we did not start.
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
