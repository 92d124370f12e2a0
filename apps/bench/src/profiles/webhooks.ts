/**
 * Webhooks (issue "Merchant lifecycle"): one endpoint on a receiver in the bench process, taking
 * every event type. Two rounds, one worker process:
 * 1. 500 payments/s for 20 s, the receiver answering 204 at once: the time from each payment's
 *    final state (the event's timestamp) to its delivery's arrival, p50 / p99 / max;
 * 2. 100 payments/s for 30 s while the receiver answers 503 for 60 s from the start, then 204:
 *    every event delivered after it is back, none lost, each with its sequence number. The retry
 *    schedule runs at 0.05 × the specification's (5 s → 0.25 s, 5 min → 15 s, 30 min → 90 s) so
 *    that the run waits minutes, not hours: the schedule's shape is what is tested.
 */
import { createServer, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { DEMO_SECRETS } from '@sluice/config';
import { percentile } from '../analysis/stats.ts';
import { BacklogSampler, type BenchContext } from '../harness/context.ts';
import { createPool, openLoop } from '../harness/load.ts';
import { BENCH_API_KEY, Stack } from '../harness/stack.ts';

/** One round's figures. */
export interface WebhookRound {
  payments: number;
  events: number;
  delivered: number;
  duplicates: number;
  withSeq: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** For the outage round: seconds from the receiver's return to the last event delivered. */
  catchUpSeconds: number;
}

/** What the profile measured. */
export interface WebhooksResult {
  fast: WebhookRound;
  outage: WebhookRound & { downSeconds: number };
  problems: string[];
}

class Receiver {
  down = false;
  readonly arrivals = new Map<string, { at: number; timestamp: number; seq: number | null }>();
  duplicates = 0;
  lastAt = 0;
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        if (this.down) return void res.writeHead(503).end();
        const ev = JSON.parse(body) as { id: string; timestamp: string; data?: { seq?: number } };
        if (this.arrivals.has(ev.id)) this.duplicates++;
        else this.arrivals.set(ev.id, { at: Date.now(), timestamp: Date.parse(ev.timestamp), seq: ev.data?.seq ?? null });
        this.lastAt = Date.now();
        res.writeHead(204).end();
      });
    });
    this.server.keepAliveTimeout = 5_000;
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}/hook`;
  }

  reset(): void {
    this.arrivals.clear();
    this.duplicates = 0;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

async function round(ctx: BenchContext, stack: Stack, receiver: Receiver, apiUrl: string, rate: number, seconds: number, label: string, downMs = 0): Promise<WebhookRound> {
  receiver.reset();
  const sampler = new BacklogSampler(ctx, stack.prefix);
  sampler.start();
  ctx.progress.phase(`webhooks, ${label}: ${rate}/s for ${seconds} s`);
  const started = Date.now();
  if (downMs > 0) {
    receiver.down = true;
    setTimeout(() => (receiver.down = false), downMs);
  }
  const pool = createPool(apiUrl, 64);
  const load = await openLoop(pool, { rate, seconds, tag: `wh-${randomUUID().slice(0, 8)}` });
  await pool.close();
  await sampler.waitEmpty(load.lastAnswerAt, 120_000);
  await sampler.stop();
  const expected = load.ids.length;
  // Every payment ends in one event (approved or declined): wait for them all, or give up.
  const deadline = Date.now() + (downMs > 0 ? 240_000 : 60_000);
  ctx.progress.phase(`webhooks, ${label}: waiting for ${expected} deliveries`);
  while (receiver.arrivals.size < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  const latencies = [...receiver.arrivals.values()].map((a) => a.at - a.timestamp);
  return {
    payments: expected,
    events: expected,
    delivered: receiver.arrivals.size,
    duplicates: receiver.duplicates,
    withSeq: [...receiver.arrivals.values()].filter((a) => typeof a.seq === 'number' && a.seq > 0).length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.reduce((a, b) => Math.max(a, b), 0),
    catchUpSeconds: downMs > 0 ? Math.max(0, receiver.lastAt - (started + downMs)) / 1_000 : 0,
  };
}

/** Runs the webhooks scenario. */
export async function runWebhooks(ctx: BenchContext): Promise<WebhooksResult> {
  const receiver = new Receiver();
  await receiver.start();
  await ctx.sim.fresh();
  const prefix = ctx.newPrefix();
  const stack = new Stack(prefix, ctx.sim.pgUrl, { WEBHOOK_ENCRYPTION_KEY: DEMO_SECRETS.webhookKey, WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_RETRY_SCALE: '0.05' });
  try {
    await stack.startWorker(1);
    const apiUrl = await stack.startApi();
    const reg = await fetch(`${apiUrl}/v1/webhook-endpoints`, {
      method: 'POST', headers: { authorization: `Bearer ${BENCH_API_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ url: receiver.url }),
    });
    if (reg.status !== 201) throw new Error(`registering the endpoint: ${reg.status} ${await reg.text()}`);
    const fast = await round(ctx, stack, receiver, apiUrl, 500, 20, 'receiver up');
    const downMs = 60_000;
    const outage = await round(ctx, stack, receiver, apiUrl, 100, 30, 'receiver down for 60 s', downMs);
    return { fast, outage: { ...outage, downSeconds: downMs / 1_000 }, problems: stack.problems().errors };
  } finally {
    await stack.stop();
    await receiver.close();
  }
}
