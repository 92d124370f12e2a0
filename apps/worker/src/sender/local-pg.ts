/**
 * The PG port in this thread: the permit gate, the pg-client and the phase guard, wired from one
 * config. The sender thread runs exactly this; `PG_SENDER_THREAD=false` runs it in the worker's
 * main thread instead.
 */
import type { Config } from '@sluice/config';
import { PgClient, pgClientOptionsOf, Ungated, type CallObserver } from '@sluice/pg-client';
import { permitGateOf, type PermitGate } from '@sluice/permit-gate';
import type { Redis, Transitions } from '@sluice/store';
import type { PgPort, PortCallOptions, PortResult, Refusal, SenderStats, TransactionsQuery } from './pg-port.ts';

/** The PG port in this thread: the permit gate, the PG client and the phase guard, wired from one config. */
export class LocalPg implements PgPort {
  readonly gate: PermitGate | null;
  readonly client: PgClient;

  constructor(config: Config, redis: Redis, private readonly transitions: Transitions, observer: CallObserver = {}) {
    this.gate = config.GATE_ENABLED ? permitGateOf(config, redis) : null;
    this.client = new PgClient(
      pgClientOptionsOf(config),
      this.gate ?? new Ungated(),
      {
        onCall: (report) => {
          // The PG's per-second chart counts a call in the second it was sent, on the Redis clock
          // the gate counts on (by completion, slow answers would pile into a later second).
          const sent: number | 'now' | 'unsent' =
            report.transport === 'not_sent' ? 'unsent' : report.sentAtMs === null ? 'now' : Math.floor(this.gate?.serverMs(report.sentAtMs) ?? report.sentAtMs);
          // The shared breaker's bookkeeping; a lost record only delays the breaker's view.
          transitions.record({ call: report.call, outcome: report.outcome, pgFailed: report.pgFailed, httpStatus: report.httpStatus ?? undefined, sent }).catch(() => undefined);
          observer.onCall?.(report);
        },
      },
    );
  }

  private opts(o: PortCallOptions = {}) {
    const g = o.guard;
    return {
      idempotencyKey: o.idempotencyKey,
      requestId: o.requestId,
      guard: g
        ? async (recheck: boolean): Promise<Refusal | null> => {
            const r = await this.transitions.guard({ ...g, recheck });
            return r.ok ? null : r;
          }
        : undefined,
    };
  }

  confirm(p: { paymentKey: string; orderId: string; amount: number }, o: PortCallOptions): Promise<PortResult> {
    return this.client.confirm(p, this.opts(o));
  }
  inquire(paymentKey: string, o?: PortCallOptions): Promise<PortResult> {
    return this.client.inquire(paymentKey, this.opts(o));
  }
  cancel(paymentKey: string, cancelReason: string, o: PortCallOptions): Promise<PortResult> {
    return this.client.cancel(paymentKey, cancelReason, this.opts(o));
  }
  transactions(q: TransactionsQuery, o?: PortCallOptions): Promise<PortResult> {
    return this.client.transactions(q, this.opts(o));
  }

  stats(): SenderStats {
    const s = this.gate?.stats;
    return {
      granted: s?.granted ?? 0,
      tooLate: s?.tooLate ?? 0,
      fetches: s?.fetches ?? 0,
      fetchErrors: s?.fetchErrors ?? 0,
      rateLimited: s?.rateLimited ?? 0,
      marginMs: this.gate?.currentMarginMs() ?? 0,
      ...this.client.stats(),
    };
  }

  async close(): Promise<void> {
    this.gate?.close();
    await this.client.close();
  }
}
