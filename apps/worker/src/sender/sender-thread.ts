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
import type { FromSender, ToSender } from './protocol.ts';

const port = parentPort!;
const post = (m: FromSender): void => port.postMessage(m);
// Parsed once by the main thread, handed over as plain data.
const config = workerData.config as Config;
const redis = connectConfigured(config, createLogger(config, { name: 'sender' }));
// This provider's view of the keys: its breaker, its PG chart, its approvals.
const transitions = new Transitions(redis, makeKeys(config.REDIS_PREFIX, config.PG_PROVIDER, config.REDIS_SHARDS), transitionsOptionsOf(config));
// Call reports ride on the next reply (one message per call, not two: a message costs the sender
// a structured clone and the main thread a wake-up); any left at the end of the loop's turn go
// on their own, so the main thread's metrics never wait for a reply that does not come.
let reports: CallReport[] = [];
let reportsFlush: NodeJS.Immediate | null = null;
const takeReports = (): CallReport[] => {
  const taken = reports;
  reports = [];
  return taken;
};
const pg = new LocalPg(config, redis, transitions, {
  onCall: (report) => {
    reports.push(report);
    reportsFlush ??= setImmediate(() => {
      reportsFlush = null;
      if (reports.length > 0) post({ type: 'called', reports: takeReports() });
    });
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
        if (reports.length > 0) post({ type: 'called', reports: takeReports() });
        post({ type: 'closed' });
      });
    return;
  }
  run(message).then(
    (result) => post({ type: 'reply', id: message.id, result, reports: takeReports() }),
    (err: unknown) => post({ type: 'failed', id: message.id, message: err instanceof Error ? err.message : String(err) }),
  );
});
post({ type: 'ready' });
