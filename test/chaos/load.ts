/**
 * Steady load as real merchants send it: each payment is POSTed with its own Idempotency-Key and,
 * when the answer is not a 202 (connection refused, a timeout, a 5xx while the API or Redis is
 * down), retried with the SAME key until it is acknowledged. Every 202 is recorded: that is what
 * the invariant checker holds Sluice to.
 */
import { Agent } from 'undici';
import { DEMO_KEY } from '../support/stack.ts';

export class LoadDriver {
  /** Payment id by Idempotency-Key, for every 202 received. */
  readonly acked = new Map<string, string>();
  sent = 0;
  retries = 0;
  private timer: NodeJS.Timeout | null = null;
  private inflight = new Set<Promise<void>>();
  private n = 0;
  private readonly agent = new Agent({ connections: 64, headersTimeout: 10_000, bodyTimeout: 10_000, connectTimeout: 2_000 });

  constructor(private readonly apiUrl: () => string, private readonly run: string) {}

  /** Offers `rate` new payments per second until stop(). */
  start(rate: number): void {
    const every = 1_000 / rate;
    let next = performance.now();
    const tick = () => {
      const now = performance.now();
      while (next <= now) {
        next += every;
        this.launch();
      }
      this.timer = setTimeout(tick, Math.max(1, next - performance.now()));
    };
    tick();
  }

  /** Stops offering new payments, and waits until every one offered has been acknowledged. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
  }

  private launch(): void {
    const i = ++this.n;
    const key = `chaos-${this.run}-${i}`;
    const body = JSON.stringify({ paymentKey: `pk_${this.run}_${i}`, orderId: `order-${this.run}-${i}`, amount: 1_000 + (i % 500) });
    const p = this.post(key, body).finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  private async post(key: string, body: string): Promise<void> {
    this.sent++;
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(`${this.apiUrl()}/v1/payments`, {
          method: 'POST',
          headers: { authorization: `Bearer ${DEMO_KEY}`, 'idempotency-key': key, 'content-type': 'application/json' },
          body,
          // @ts-expect-error undici's dispatcher option on Node's fetch
          dispatcher: this.agent,
        });
        const json = (await res.json().catch(() => ({}))) as { id?: string };
        if (res.status === 202 && json.id) {
          this.acked.set(key, json.id);
          return;
        }
      } catch {
        /* the API is away: try again with the same key */
      }
      this.retries++;
      await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** Math.min(attempt, 4))));
    }
  }
}
