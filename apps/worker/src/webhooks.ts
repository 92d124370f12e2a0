/**
 * Signed webhooks, the worker's half: the dispatcher turns the events merchants hear of into
 * deliveries, and the deliverer sends them.
 *
 * The outbox is the books stream: every change of a payment is appended to it by the Lua script
 * that makes the change, in the same atomic step. The dispatcher reads it in a consumer group of
 * its own (`webhooks`; the drainers' group reads the same entries for PostgreSQL), asks the domain
 * which changes are events (`webhookEventOf`), adds one delivery job per subscribed endpoint (its
 * id `<event>.<endpoint>`, so an entry read twice adds nothing), and only then acknowledges the
 * entries. A dispatcher killed between the read and the acknowledgement leaves its entries
 * pending; another takes them over once idle. The stream is trimmed only past what every group
 * has acknowledged.
 *
 * Deliveries are a BullMQ queue of their own (`webhooks`), with their own connections (an undici
 * Agent whose lookup refuses private addresses), apart from the PG's budget. Each is POSTed with
 * the Standard Webhooks headers, at least once, retried on the specification's schedule; `410
 * Gone` disables the endpoint; redirects are not followed.
 */
import { webhookBody, webhookEventOf, type WebhookEvent } from '@sluice/domain';
import { createWebhookQueue, DELIVERY_JOB_OPTIONS, deliveryJobId, queuePrefixOf, WEBHOOK_QUEUE, type DeliveryJob } from '@sluice/queue';
import { BooksStream, changeOf, takesEvent, WebhookEndpoints, WEBHOOKS_GROUP, type Keys, type Redis, type WebhookEndpoint } from '@sluice/store';
import { DELIVERY_ATTEMPTS, guardedLookup, retryDelayMs, SecretBox, webhookHeaders, type AddressPolicy } from '@sluice/webhooks';
import { UnrecoverableError, Worker, type ConnectionOptions, type Job, type Queue } from 'bullmq';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';

/** What the webhook side of a worker process needs. */
export interface WebhookOptions {
  redis: Redis;
  /** A connection for the dispatcher's blocking reads. */
  reader: Redis;
  bullConnection: ConnectionOptions;
  keys: Keys;
  box: SecretBox;
  policy: AddressPolicy;
  concurrency: number;
  timeoutMs: number;
  retryScale: number;
  consumer: string;
  log: Logger;
  /** How long an entry read by a dispatcher that died stays its own before another takes it (default 30 s). */
  claimIdleMs?: number;
}

/** How long an entry read by a dispatcher that died stays its own before another takes it, by default. */
const CLAIM_IDLE_MS = 30_000;
/** With several shards, how long a dispatch round that found nothing in any stream waits. */
const IDLE_ROUND_MS = 50;
/** How long the dispatcher keeps a merchant's endpoints before reading them again. */
const ENDPOINTS_TTL_MS = 1_000;

/** The dispatcher and the deliverer of one worker process. */
export class Webhooks {
  readonly queue: Queue<DeliveryJob>;
  readonly worker: Worker<DeliveryJob>;
  private readonly streams: BooksStream[];
  private readonly endpoints: WebhookEndpoints;
  private readonly agent: Agent;
  private readonly cache = new Map<string, { at: number; list: WebhookEndpoint[] }>();
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private readonly lastClaim: number[];
  /** Events this process dispatched (for tests and metrics). */
  dispatched = 0;

  constructor(private readonly o: WebhookOptions) {
    // Each payment shard's stream (one with REDIS_SHARDS=1).
    this.streams = o.keys.shards.map((k) => new BooksStream(o.redis, k, WEBHOOKS_GROUP));
    this.lastClaim = this.streams.map(() => 0);
    this.endpoints = new WebhookEndpoints(o.redis, o.keys.prefix);
    this.queue = createWebhookQueue(o.bullConnection, o.keys.prefix);
    this.agent = new Agent({
      connect: { lookup: guardedLookup(o.policy), timeout: o.timeoutMs },
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      connections: 16,
      keepAliveTimeout: 4_000,
    });
    this.worker = new Worker<DeliveryJob>(WEBHOOK_QUEUE, (job) => this.deliver(job), {
      connection: o.bullConnection,
      prefix: queuePrefixOf(o.keys.prefix),
      concurrency: o.concurrency,
      settings: { backoffStrategy: (attemptsMade: number) => retryDelayMs(attemptsMade, o.retryScale) },
      removeOnComplete: { age: 300, count: 2_000 },
      removeOnFail: { age: 7 * 24 * 3_600, count: 50_000 },
    });
    this.worker.on('failed', (job) => {
      if (job && job.attemptsMade >= DELIVERY_ATTEMPTS) void o.redis.hincrby(o.keys.counters, 'webhook:gaveUp', 1).catch(() => undefined);
    });
  }

  /** Starts the dispatcher's loop. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops dispatching and delivering (deliveries under way finish or come back to the queue). */
  async close(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.worker.close();
    await this.queue.close();
    await this.agent.close();
  }

  /** One round of the dispatcher: entries read (own pending first, idle ones of the dead, new ones), events turned into deliveries, entries acknowledged. Returns entries handled. */
  async dispatchOnce(blockMs = 1_000): Promise<number> {
    if (this.streams.length === 1) return this.dispatchFrom(0, blockMs);
    // Several shards' streams: no read blocks (a blocking read names one stream, and a cluster
    // serves several only from one slot); a round that finds nothing waits a little.
    let n = 0;
    for (let i = 0; i < this.streams.length; i++) n += await this.dispatchFrom(i, 0);
    if (n === 0) await new Promise((r) => setTimeout(r, Math.min(blockMs, IDLE_ROUND_MS)));
    return n;
  }

  private async dispatchFrom(i: number, blockMs: number): Promise<number> {
    const stream = this.streams[i]!;
    let batch = await stream.read(this.o.reader, this.o.consumer, 200, true, 0);
    const idle = this.o.claimIdleMs ?? CLAIM_IDLE_MS;
    if (batch.length === 0 && Date.now() - this.lastClaim[i]! > idle / 2) {
      this.lastClaim[i] = Date.now();
      batch = await stream.claimIdle(this.o.consumer, idle, 200);
    }
    if (batch.length === 0) batch = await stream.read(this.o.reader, this.o.consumer, 500, false, blockMs);
    if (batch.length === 0) return 0;
    const events: WebhookEvent[] = [];
    for (const entry of batch) {
      if (entry.fields.k !== 'p') continue;
      const change = changeOf(entry);
      const ev = change?.kind === 'payment' ? webhookEventOf(change) : null;
      if (ev) events.push(ev);
    }
    const jobs: { name: string; data: DeliveryJob; opts: typeof DELIVERY_JOB_OPTIONS & { jobId: string } }[] = [];
    for (const ev of events) {
      for (const ep of await this.subscribed(ev)) {
        jobs.push({
          name: 'deliver',
          data: { eventId: ev.id, endpointId: ep.id, body: webhookBody(ev), createdAt: ev.createdAt },
          opts: { ...DELIVERY_JOB_OPTIONS, jobId: deliveryJobId(ev.id, ep.id) },
        });
      }
    }
    if (jobs.length > 0) await this.queue.addBulk(jobs);
    await stream.ack(batch.map((e) => e.id));
    this.dispatched += events.length;
    return batch.length;
  }

  /** The endpoints of the event's merchant that take its type and are not disabled. */
  private async subscribed(ev: WebhookEvent): Promise<WebhookEndpoint[]> {
    let c = this.cache.get(ev.merchantId);
    if (!c || Date.now() - c.at > ENDPOINTS_TTL_MS) {
      c = { at: Date.now(), list: await this.endpoints.list(ev.merchantId) };
      this.cache.set(ev.merchantId, c);
    }
    return c.list.filter((e) => takesEvent(e, ev.type));
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.dispatchOnce();
      } catch (err) {
        // No group yet (no merchant has registered an endpoint): nothing to dispatch. Else Redis is away.
        const message = err instanceof Error ? err.message : String(err);
        if (!message.includes('NOGROUP')) this.o.log.warn({ err: message }, 'webhook dispatch failed; trying again');
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  /** One try of one delivery. Throws to be retried on the schedule. */
  private async deliver(job: Job<DeliveryJob>): Promise<string> {
    const d = job.data;
    const ep = await this.endpoints.get(d.endpointId);
    if (!ep || ep.disabledAt !== null) return 'skipped';
    const headers = webhookHeaders(this.o.box.open(ep.sealedSecret, ep.id), d.eventId, Math.floor(Date.now() / 1_000), d.body);
    const counters = this.o.keys.counters;
    let status: number;
    try {
      // undici's request follows no redirect: a 3xx is a failed try, like any answer but 2xx and 410.
      const res = await request(ep.url, { method: 'POST', headers, body: d.body, dispatcher: this.agent });
      status = res.statusCode;
      await res.body.dump();
    } catch (err) {
      await this.o.redis.hincrby(counters, 'webhook:failedTries', 1);
      throw new Error(`delivery failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (status >= 200 && status < 300) {
      await this.o.redis.multi().hincrby(counters, 'webhook:delivered', 1).lpush(this.o.keys.webhookLatency, Date.now() - d.createdAt).ltrim(this.o.keys.webhookLatency, 0, 999).exec();
      return 'delivered';
    }
    if (status === 410) {
      if (await this.endpoints.disable(ep.id)) {
        await this.o.redis.hincrby(counters, 'webhook:disabled', 1);
        this.o.log.warn({ endpointId: ep.id, merchantId: ep.merchantId }, 'webhook endpoint answered 410 Gone: disabled');
      }
      throw new UnrecoverableError('410 Gone: endpoint disabled');
    }
    await this.o.redis.hincrby(counters, 'webhook:failedTries', 1);
    throw new Error(`receiver answered ${status}`);
  }
}
