/**
 * Everything the simulator knows, in one object that in-process tests can read directly
 * (`RunningSimulator.state`). The HTTP layer only reads and mutates it; socket-level effects of a
 * knob change (outage, keep-alive) are pushed to the server through {@link SimulatorState.onKnobs}.
 */
import { ArrivalLog, type EndpointIndex } from './arrival-log.ts';
import { nowMs } from './clock.ts';
import { IdempotencyStore } from './idempotency.ts';
import { mergeKnobs, parseKnobPatch, type SimulatorKnobs } from './knobs.ts';
import { Ledger } from './ledger.ts';
import { Rng } from './rng.ts';

/** Names used by `byEndpoint` in `/__sim/stats`, indexed like {@link EndpointIndex}. */
const ENDPOINT_NAMES = ['confirm', 'inquire', 'inquireByOrder', 'cancel', 'transactions', 'other'] as const;

/** The body of `GET /__sim/stats`. */
export interface SimulatorStats {
  requests: number;
  byEndpoint: Record<(typeof ENDPOINT_NAMES)[number], number>;
  status429: number;
  status503: number;
  maxInWindow: number;
  peakConnections: number;
  openConnections: number;
  /** Arrivals in the last full wall-clock second. */
  rps: number;
}

/** The live state of one simulator: knobs, ledger, idempotency keys, arrivals and counters. */
export class SimulatorState {
  readonly secretKey: string;
  knobs: SimulatorKnobs;
  rng: Rng;
  readonly ledger = new Ledger();
  readonly idempotency = new IdempotencyStore();
  readonly arrivals = new ArrivalLog();
  readonly byEndpoint = [0, 0, 0, 0, 0, 0];
  status429 = 0;
  status503 = 0;
  openConnections = 0;
  peakConnections = 0;
  /** Bumped by reset, so work in flight from before a reset leaves the fresh state alone. */
  generation = 0;
  /** Called after every knob change with the previous and the new knobs. */
  onKnobs: ((prev: SimulatorKnobs, next: SimulatorKnobs) => void) | null = null;
  private readonly seed: number;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(secretKey: string, seed: number, knobs: SimulatorKnobs) {
    this.secretKey = secretKey;
    this.seed = seed;
    this.rng = new Rng(seed);
    this.knobs = knobs;
  }

  /** Validates and applies a partial knob change; throws with a readable message when invalid. */
  setKnobs(input: unknown): SimulatorKnobs {
    const parsed = parseKnobPatch(input);
    if (!parsed.ok) throw new Error(parsed.message);
    const next = mergeKnobs(this.knobs, parsed.patch);
    if (typeof next === 'string') throw new Error(next);
    const prev = this.knobs;
    this.knobs = next;
    if (prev.windowMs !== next.windowMs) this.arrivals.rewindow(next.windowMs);
    this.onKnobs?.(prev, next);
    return next;
  }

  /** Records an arrival and returns its index and the rolling-window count including it. */
  arrive(t: number, endpoint: EndpointIndex): { index: number; inWindow: number } {
    this.byEndpoint[endpoint] = (this.byEndpoint[endpoint] ?? 0) + 1;
    const inWindow = this.arrivals.record(t, endpoint, this.knobs.windowMs);
    return { index: this.arrivals.length - 1, inWindow };
  }

  /** Runs `fn` after `ms`; the timer is dropped on {@link dispose} so a closed simulator goes quiet. */
  after(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  /** A promise form of {@link after}. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  /** Clears ledger, idempotency keys, arrivals and counters, and reseeds the RNG. */
  reset(): void {
    this.generation += 1;
    this.ledger.clear();
    this.idempotency.clear();
    this.arrivals.clear();
    this.byEndpoint.fill(0);
    this.status429 = 0;
    this.status503 = 0;
    this.peakConnections = this.openConnections;
    this.rng = new Rng(this.seed);
  }

  /** Cancels every pending timer (approvals, late answers); used when the server closes. */
  dispose(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /** The body of `GET /__sim/stats`. */
  stats(): SimulatorStats {
    const byEndpoint = {} as SimulatorStats['byEndpoint'];
    ENDPOINT_NAMES.forEach((name, i) => (byEndpoint[name] = this.byEndpoint[i] ?? 0));
    const secondStart = Math.floor(nowMs() / 1000) * 1000;
    return {
      requests: this.arrivals.length,
      byEndpoint,
      status429: this.status429,
      status503: this.status503,
      maxInWindow: this.arrivals.maxInWindow,
      peakConnections: this.peakConnections,
      openConnections: this.openConnections,
      rps: this.arrivals.countBetween(secondStart - 1000, secondStart),
    };
  }

  /** The body of `GET /__sim/ledger`, including keys that were confirmed but hold no record. */
  ledgerView(): { payments: Record<string, LedgerEntryView> } {
    const payments: Record<string, LedgerEntryView> = {};
    for (const [paymentKey, count] of this.ledger.confirmArrivals) {
      payments[paymentKey] = {
        status: 'NONE', chargeCount: 0, refunded: false, refundedAmount: 0, orderId: null, amount: null, approvedAt: null,
        confirmArrivals: count, confirmKeys: this.ledger.confirmKeys.get(paymentKey)?.size ?? 0,
        firstConfirmAt: this.ledger.firstConfirmAt.get(paymentKey) ?? null,
      };
    }
    for (const record of this.ledger.payments.values()) {
      const entry: LedgerEntryView = {
        status: record.status,
        chargeCount: record.chargeCount,
        refunded: record.refunded,
        refundedAmount: record.refundedAmount,
        cancelCount: record.cancels.length,
        orderId: record.orderId,
        amount: record.amount,
        approvedAt: record.approvedAt,
        confirmArrivals: this.ledger.confirmArrivals.get(record.paymentKey) ?? 0,
        confirmKeys: this.ledger.confirmKeys.get(record.paymentKey)?.size ?? 0,
        firstConfirmAt: this.ledger.firstConfirmAt.get(record.paymentKey) ?? null,
      };
      if (record.canceledAt !== null) entry.canceledAt = record.canceledAt;
      payments[record.paymentKey] = entry;
    }
    return { payments };
  }
}

/** One payment in `GET /__sim/ledger`; status `NONE` means confirms arrived but no record stands. */
export interface LedgerEntryView {
  status: string;
  chargeCount: number;
  refunded: boolean;
  /** Money returned to the card by cancels, in total (a second refund shows here). */
  refundedAmount: number;
  /** Cancels that returned money (one per refund, a repeat included). */
  cancelCount?: number;
  orderId: string | null;
  amount: number | null;
  approvedAt: string | null;
  confirmArrivals: number;
  /** How many distinct Idempotency-Keys the confirms of this paymentKey carried (1 for Sluice). */
  confirmKeys: number;
  /** When its first confirm arrived (ms epoch), or null if none did. */
  firstConfirmAt: number | null;
  canceledAt?: string;
}
