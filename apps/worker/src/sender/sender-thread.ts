/**
 * The sender thread. Its event loop does nothing but take send slots and send on time, so its
 * lateness (slot → socket write) is not the worker's BullMQ work: on these 2-core machines a
 * busy main loop was measured 15–60 ms late at the tail, and every millisecond of margin costs
 * 0.1% of the PG's budget. It owns the permit gate, the PG connection pool and the phase guard
 * (each call's guard runs here, right before its send), with its own Redis connection.
 */
import type { Config } from '@sluice/config';
import { createLogger } from '@sluice/log';
import { connectConfigured, makeKeys, Transitions, transitionsOptionsOf } from '@sluice/store';
import { parentPort, workerData } from 'node:worker_threads';
import { LocalPg } from './local-pg.ts';
import type { CallReport } from '@sluice/pg-client';
import type { PortResult } from './pg-port.ts';
import { REPLY_BATCH_MS, type FromSender, type Settled, type ToSender } from './protocol.ts';

const port = parentPort!;
const post = (m: FromSender): void => port.postMessage(m);
// Parsed once by the main thread, handed over as plain data.
const config = workerData.config as Config;
const redis = connectConfigured(config, createLogger(config, { name: 'sender' }));
// This provider's view of the keys: its breaker, its PG chart, its approvals.
const transitions = new Transitions(redis, makeKeys(config.REDIS_PREFIX, config.PG_PROVIDER, config.REDIS_SHARDS), transitionsOptionsOf(config));
// Ended calls and call reports go back together, gathered for REPLY_BATCH_MS (protocol.ts).
let replies: Settled[] = [];
let reports: CallReport[] = [];
let flushTimer: NodeJS.Timeout | null = null;
const flush = (): void => {
  if (flushTimer) clearTimeout(flushTimer);
  flushTimer = null;
  if (replies.length === 0 && reports.length === 0) return;
  post({ type: 'settled', replies, reports });
  replies = [];
  reports = [];
};
const soon = (): void => {
  flushTimer ??= setTimeout(flush, REPLY_BATCH_MS);
};
const pg = new LocalPg(config, redis, transitions, {
  onCall: (report) => {
    reports.push(report);
    soon();
  },
});
const statsTimer = setInterval(() => post({ type: 'stats', stats: pg.stats() }), 500);

function run(message: Exclude<ToSender, { type: 'close' }>): Promise<PortResult> {
  switch (message.type) {
    case 'confirm':
      return pg.confirm(message.payment, message.options);
    case 'inquire':
      return pg.inquire(message.paymentKey, message.options);
    case 'cancel':
      return pg.cancel(message.paymentKey, message.body, message.options);
    case 'transactions':
      return pg.transactions(message.query, message.options);
  }
}

port.on('message', (message: ToSender) => {
  if (message.type === 'close') {
    clearInterval(statsTimer);
    void pg
      .close()
      .then(() => redis.quit())
      .catch(() => undefined)
      .finally(() => {
        flush();
        post({ type: 'closed' });
      });
    return;
  }
  run(message).then(
    (result) => replies.push({ id: message.id, result }),
    (err: unknown) => replies.push({ id: message.id, failed: err instanceof Error ? err.message : String(err) }),
  ).finally(soon);
});
post({ type: 'ready' });
