/**
 * What every scenario runs with: the options, the shared simulator, a Redis connection for
 * reading evidence, the progress line, and fresh key prefixes (all under one bench-wide id, so
 * that whatever a crash leaves behind is found and deleted by one pattern).
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_PROVIDER, testConfig } from '@sluice/config';
import { gatePrefixOf } from '@sluice/permit-gate';
import type { Redis } from 'ioredis';
import type { BenchOptions } from '../args.ts';
import type { Progress } from './progress.ts';
import { openCount } from './redis-tools.ts';
import type { BacklogSample } from '../analysis/pg-analysis.ts';
import type { SimClient } from './sim-client.ts';

/** What every scenario runs with: the options, the simulator, Redis, the progress line and fresh prefixes. */
export interface BenchContext {
  opts: BenchOptions;
  sim: SimClient;
  redis: Redis;
  progress: Progress;
  /** `bench-<8 hex>`: every run's prefix starts with it. */
  root: string;
  /** A new prefix `bench-<8 hex>-<n>` for one run. */
  newPrefix(): string;
  /** The simulator's process id, for its CPU time. */
  simPid: number | undefined;
}

/** The gate's margin bounds: the config defaults, which the bench does not change. */
const { GATE_MARGIN_MIN_MS: MARGIN_MIN_MS, GATE_MARGIN_MAX_MS: MARGIN_MAX_MS } = testConfig();

/** The margin the gate keeps now: the largest live need any process reported, within bounds. */
async function gateMarginMs(redis: Redis, prefix: string, provider: string, nowMs: number): Promise<number | null> {
  const needs = await redis.hgetall(`${gatePrefixOf({ REDIS_PREFIX: prefix, PG_PROVIDER: provider })}:gate:margins`);
  let margin = MARGIN_MIN_MS;
  let live = 0;
  for (const v of Object.values(needs)) {
    const [needUs, expUs] = v.split(':').map(Number);
    if (needUs === undefined || expUs === undefined || expUs / 1_000 < nowMs) continue;
    live++;
    margin = Math.max(margin, needUs / 1_000);
  }
  return live === 0 ? null : Math.min(MARGIN_MAX_MS, margin);
}

/**
 * A fresh bench-wide id, under which every run's keys are written (and found to delete). Short,
 * because the prefix is in every key and the memory figures count it: `bench-1a2b3c4d-3` is
 * 16 characters, 10 more than the default `sluice`.
 */
export function benchRoot(): string {
  return `bench-${randomBytes(4).toString('hex')}`;
}

/**
 * Samples the backlog (`open` zset) every 100 ms, and once a second the simulator's rate (for the
 * progress line), the gate's margin and the gate's granted slots. The backlog samples are the
 * evidence of when the backlog was non-empty.
 */
export class BacklogSampler {
  readonly samples: BacklogSample[] = [];
  /** The gate's margin (ms) once a second, while some process reports a need. */
  readonly margins: { t: number; marginMs: number }[] = [];
  /**
   * Slots the gate granted, counted from its slots zset once a second (it keeps about 2 s of
   * slots, and slots only grow, so none is missed or counted twice).
   */
  slotsGranted = 0;
  private lastSlot = 0;
  private running = false;
  private loop: Promise<void> = Promise.resolve();

  /** `provider`: whose gate's margin and slots are read (the only PG's by default). */
  constructor(
    private readonly ctx: BenchContext,
    private readonly prefix: string,
    private readonly provider: string = DEFAULT_PROVIDER,
  ) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    let lastStats = 0;
    while (this.running) {
      const t = Date.now();
      try {
        const open = await openCount(this.ctx.redis, this.prefix);
        this.samples.push({ t, open });
        this.ctx.progress.state.backlog = open;
        if (t - lastStats >= 1_000) {
          lastStats = t;
          this.ctx.progress.state.pgRps = (await this.ctx.sim.stats()).rps;
          const m = await gateMarginMs(this.ctx.redis, this.prefix, this.provider, t);
          if (m !== null) this.margins.push({ t, marginMs: m });
          await this.countSlots();
        }
      } catch {
        // A missed sample only coarsens the reading; the next one comes 100 ms later.
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t))));
    }
  }

  /**
   * Resolves true once a sample taken after `after` (ms epoch) shows an empty backlog, false at
   * the deadline.
   */
  async waitEmpty(after: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const last = this.samples[this.samples.length - 1];
      if (last && last.t >= after && last.open === 0) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.countSlots().catch(() => undefined);
  }

  private async countSlots(): Promise<void> {
    const slots = await this.ctx.redis.zrangebyscore(`${gatePrefixOf({ REDIS_PREFIX: this.prefix, PG_PROVIDER: this.provider })}:gate:slots`, `(${this.lastSlot}`, '+inf');
    if (slots.length === 0) return;
    this.slotsGranted += slots.length;
    this.lastSlot = Number(slots[slots.length - 1]);
  }
}
