/**
 * Where pg-client gets its permission to send. In production this is the global PermitGate; the
 * only other source is `Ungated`, used by the benchmark's baseline (BullMQ's own limiter alone),
 * and it says so in its name.
 */
import type { Permit, PermitGate, Priority } from '@sluice/permit-gate';

/** Where pg-client gets its permission to send: the global gate, or (baseline only) nothing. */
export interface PermitSource {
  /** Resolves at the send slot; `assigned`, if given, is called once the slot is the caller's (at or before it). */
  acquire(priority: Priority, assigned?: (p: Permit) => void): Promise<Permit>;
  isTooLate(permit: Permit, nowMs?: number): boolean;
  sent(permit: Permit, atMs?: number): void;
  rateLimited(): void;
}

/** Every call goes at once. Only for the benchmark baseline with GATE_ENABLED=false. */
export class Ungated implements PermitSource {
  acquire(priority: Priority, assigned?: (p: Permit) => void): Promise<Permit> {
    const permit = { slotMs: Date.now(), marginMs: Infinity, priority };
    assigned?.(permit);
    return Promise.resolve(permit);
  }
  isTooLate(): boolean {
    return false;
  }
  sent(): void {}
  rateLimited(): void {}
}

/** The gate's types, for pg-client's callers. */
export type { Permit, PermitGate, Priority };
