/**
 * The drainer process: applies the books' migrations, then drains the books stream into
 * PostgreSQL until SIGTERM, when it finishes the batch in hand. Run with
 * `tsx apps/drainer/src/main.ts`; run one or more (each is a consumer of the same group).
 */
import { hostname } from 'node:os';
import { BooksWriter, booksPool, migrateBooks } from '@sluice/books';
import { describeRedisTarget, hotWindowMs, loadConfig, redisTargetOf, required } from '@sluice/config';
import { createLogger } from '@sluice/log';
import { BooksStream, checkShardCount, connectConfigured, PaymentStore, storeOptionsOf } from '@sluice/store';
import { Drainer } from './drainer.ts';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const databaseUrl = required(config, 'DATABASE_URL');
  const log = createLogger(config, { name: 'drainer' });
  const applied = await migrateBooks(databaseUrl);
  if (applied.length > 0) log.info({ migrations: applied }, 'books migrated');

  const redis = connectConfigured(config, log);
  const store = new PaymentStore(redis, storeOptionsOf(config));
  // A drainer that counted the shards otherwise would leave some shards' books undrained.
  await checkShardCount(redis, store.keys);
  const pool = booksPool(databaseUrl);
  const writer = new BooksWriter(pool);
  // One drainer per payment shard (each shard has its stream), each with a connection of its own
  // for its blocking reads.
  const readers = store.keys.shards.map(() => connectConfigured(config, log, { enableAutoPipelining: false }));
  const drainers = store.keys.shards.map((k, n) => new Drainer(store, new BooksStream(redis, k, undefined, store.claims), readers[n]!, writer, {
    consumer: `${hostname()}:${process.pid}`,
    batchSize: config.DRAIN_BATCH_SIZE,
    claimIdleMs: config.DRAIN_CLAIM_IDLE_MS,
    lingerMs: config.DRAIN_LINGER_MS,
    hotMs: hotWindowMs(config),
    claimsHorizonMs: config.LATE_CONFIRM_HORIZON_MS,
  }, log));

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, 'stopping: finishing the batch in hand');
    for (const d of drainers) d.stop();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  log.info({ consumer: `${hostname()}:${process.pid}`, redis: describeRedisTarget(redisTargetOf(config)) }, 'drainer started');
  await Promise.all(drainers.map((d) => d.run()));
  // A blocked read is cut short by closing its connection.
  for (const r of readers) r.disconnect();
  await Promise.all([redis.quit(), pool.end()]);
  log.info({ shards: drainers.map((d) => d.stats) }, 'drainer stopped');
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
