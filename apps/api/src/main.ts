/**
 * The API process: builds its clients from the environment, serves `createApp`, and shuts down
 * without losing a payment it has acknowledged. Run with `tsx apps/api/src/main.ts`.
 *
 * Shutdown order matters: stop accepting, let in-flight requests finish (each 202 was sent after
 * Redis stored the payment in its merchant's fair queue, from which the workers admit it), then
 * close the queues and Redis.
 */
import type { Server } from 'node:http';
import { BooksReader, booksPool } from '@sluice/books';
import { loadConfig, providersOf, refuseDemoSecrets } from '@sluice/config';
import { checkRedisSafety, connectRedis, makeKeys, PaymentStore, storeOptionsOf } from '@sluice/store';
import { createQueues } from '@sluice/queue';
import { createApp } from './app.ts';
import { breakerCheck, redisMemoryCheck } from './dashboard/readiness.ts';
import { loggableError } from './errors.ts';
import { createHttpServer } from './http-server.ts';
import { createLogger } from '@sluice/log';
import { FinalWaiters, MAX_WAITERS } from './long-poll.ts';

/** Past this, connections still open at shutdown are cut so that the process does exit. */
const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  refuseDemoSecrets(config);
  const logger = createLogger(config, { name: 'sluice-api' });

  // The intake script has this connection to itself; queues and the board use another, so a
  // slow board query never sits in front of a payment's round trip.
  const redis = connectRedis(config.REDIS_URL);
  const queueRedis = connectRedis(config.REDIS_URL);
  // An evicting Redis loses payments and idempotency keys: refuse it (unless overridden).
  await checkRedisSafety(redis, config.REDIS_ALLOW_EVICTION, logger);

  const store = new PaymentStore(redis, storeOptionsOf(config));
  const queues = createQueues(queueRedis, config.REDIS_PREFIX);

  // Advisory: /readyz shows them (memory warn, breaker state) but stays 200 for them.
  // One breaker check per provider (`breaker` with one PG, `breaker:<id>` with several).
  const providers = providersOf(config);
  const readinessChecks = [
    redisMemoryCheck(queueRedis),
    ...providers.map((p) => breakerCheck(queueRedis, makeKeys(config.REDIS_PREFIX, p.id), providers.length === 1 ? 'breaker' : `breaker:${p.id}`)),
  ];
  // Long polls: one subscriber connection, opened on the first `?wait`.
  const waiters = new FinalWaiters(() => redis.duplicate({ enableAutoPipelining: false }), store.keys.finalChannel, MAX_WAITERS, (err) =>
    logger.warn({ err: loggableError(err) }, 'long-poll subscriber: Redis error; waits fall back to their timeout'),
  );
  // The books: payments Redis has forgotten, lists, summaries. Without DATABASE_URL, Redis only.
  const booksDb = config.DATABASE_URL ? booksPool(config.DATABASE_URL) : null;
  if (!booksDb) logger.warn('DATABASE_URL is not set: archived payments, lists and summaries answer 503 BOOKS_UNAVAILABLE');
  const books = booksDb ? new BooksReader(booksDb) : null;
  const app = createApp({ config, store, queues, logger, readinessChecks, waiters, books });
  const server: Server = createHttpServer(app, config).listen(config.PORT, config.HOST, () => {
    logger.info({ host: config.HOST, port: config.PORT }, 'sluice api listening');
  });
  server.on('error', (err) => {
    logger.fatal({ err }, 'http server error');
    process.exit(1);
  });

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections, finishing requests in flight');
    const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
    force.unref();
    try {
      // close() stops accepting and (Node ≥ 19) drops idle keep-alive sockets; its callback
      // runs once every in-flight request has been answered.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Long polls are answered now, with the state as it is, rather than holding shutdown.
      await waiters.close();
      await closed;
      await queues.close();
      await Promise.all([redis.quit(), queueRedis.quit(), booksDb?.end()]);
      logger.info('shut down cleanly');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'unclean shutdown');
      process.exit(1);
    }
  };
  process.on('SIGTERM', (s) => void shutdown(s));
  process.on('SIGINT', (s) => void shutdown(s));
}

main().catch((err: unknown) => {
  // Before the logger exists (bad config) this is the only way to say why we did not start.
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
