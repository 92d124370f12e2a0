/**
 * Scenario 4, memory: Redis bytes per payment. N payments are created through the API with no
 * worker running (the backlog as it sits in Redis), then a worker takes them all to a final
 * state (what a processed payment leaves behind until its retention ends). Read two ways:
 * `used_memory` deltas (the whole server, so other users of a shared Redis add noise), and
 * MEMORY USAGE summed over the run's own keys, per kind of key.
 */
import { randomUUID } from 'node:crypto';
import { BacklogSampler, type BenchContext } from '../harness/context.ts';
import { closedLoop, paymentRequest } from '../harness/load.ts';
import { deleteMatching, memoryByKind, usedMemory } from '../harness/redis-tools.ts';
import { Stack } from '../harness/stack.ts';

/** Redis memory by kind of key at one point of the memory scenario. */
export interface MemoryReading {
  usedMemoryDelta: number;
  /** MEMORY USAGE over the run's keys. */
  keysBytes: number;
  keys: number;
  byKind: Map<string, { keys: number; bytes: number }>;
}

/** What the memory scenario measured: bytes per queued and per final payment. */
export interface MemoryResult {
  payments: number;
  created: number;
  queued: MemoryReading;
  final: MemoryReading;
  drained: boolean;
}

async function settle(): Promise<void> {
  // Let batched enqueues, lazy frees and BullMQ's own clean-up land before reading.
  await new Promise((r) => setTimeout(r, 2_000));
}

/** Runs the memory scenario. */
export async function runMemory(ctx: BenchContext): Promise<MemoryResult> {
  const { opts, sim, progress, redis } = ctx;
  const n = opts.memoryPayments;
  progress.phase('memory: starting the API (no worker)');
  await sim.fresh();
  const prefix = ctx.newPrefix();
  const stack = new Stack(prefix, sim.pgUrl, { BACKLOG_MAX_SECONDS: '1000000' });
  try {
    const apiUrl = await stack.startApi();
    await settle();
    const before = await usedMemory(redis);
    progress.phase(`memory: creating ${n} payments`);
    const tag = randomUUID().slice(0, 8);
    // Closed loop, stopped once n requests went out: exactly n payments, as fast as they go.
    const res = await closedLoop(apiUrl, {
      connections: 32,
      warmupS: 0,
      seconds: 3_600,
      request: (i) => paymentRequest(tag, i),
      stopAfter: n,
      onTick: (k) => {
        progress.state.offered = k;
        progress.state.accepted = k;
      },
    });
    const created = res.status.get('202') ?? 0;
    await settle();
    const queuedUsed = (await usedMemory(redis)) - before;
    const queuedKeys = await memoryByKind(redis, prefix);

    progress.phase('memory: worker takes them to final');
    const sampler = new BacklogSampler(ctx, prefix);
    sampler.start();
    await stack.startWorker(1);
    const drained = await sampler.waitEmpty(Date.now(), Math.max(120_000, (3 * n * 1_000) / 500));
    await sampler.stop();
    await settle();
    const finalUsed = (await usedMemory(redis)) - before;
    const finalKeys = await memoryByKind(redis, prefix);
    const result: MemoryResult = {
      payments: n,
      created,
      queued: { usedMemoryDelta: queuedUsed, keysBytes: queuedKeys.total, keys: queuedKeys.keys, byKind: queuedKeys.byKind },
      final: { usedMemoryDelta: finalUsed, keysBytes: finalKeys.total, keys: finalKeys.keys, byKind: finalKeys.byKind },
      drained,
    };
    progress.note(
      `memory: queued ${(queuedKeys.total / created).toFixed(0)} B/payment (used_memory ${(queuedUsed / created).toFixed(0)}), ` +
        `final ${(finalKeys.total / created).toFixed(0)} B/payment (used_memory ${(finalUsed / created).toFixed(0)})`,
    );
    return result;
  } finally {
    await stack.stop();
    await deleteMatching(redis, `${prefix}:*`);
  }
}
