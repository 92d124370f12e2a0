/**
 * Knows when each PG request's headers went onto the socket, from undici's
 * `undici:client:sendHeaders` diagnostics channel. That moment is what the permit gate's margin
 * must cover (lateness = socket write − slot), and it tells "never sent" (connect errors, a
 * request still queued) from "maybe received" (a socket error after the write).
 *
 * Each request carries an `x-sluice-call` header with a process-unique number that the channel
 * message's raw header block is searched for.
 */
import diagnostics from 'node:diagnostics_channel';

/** The header that carries each request's tracking number. */
export const CALL_HEADER = 'x-sluice-call';
const PATTERN = new RegExp(`${CALL_HEADER}: (\\d+)\\r\\n`);

interface Tracked {
  onSent: (atMs: number) => void;
  sentAtMs: number | null;
}

const tracked = new Map<number, Tracked>();
let seq = 0;
let subscribed = false;

function onSendHeaders(message: unknown): void {
  const at = performance.timeOrigin + performance.now();
  const headers = (message as { headers?: unknown }).headers;
  if (typeof headers !== 'string') return;
  const match = PATTERN.exec(headers);
  if (!match) return;
  const entry = tracked.get(Number(match[1]));
  if (entry && entry.sentAtMs === null) {
    entry.sentAtMs = at;
    entry.onSent(at);
  }
}

/** Starts tracking one request; returns its header value and a handle. */
export function track(onSent: (atMs: number) => void): { id: string; sentAtMs: () => number | null; done: () => void } {
  if (!subscribed) {
    diagnostics.subscribe('undici:client:sendHeaders', onSendHeaders);
    subscribed = true;
  }
  const callId = ++seq;
  const entry: Tracked = { onSent, sentAtMs: null };
  tracked.set(callId, entry);
  return { id: String(callId), sentAtMs: () => entry.sentAtMs, done: () => tracked.delete(callId) };
}
