/**
 * The sender thread. Its event loop does nothing but take send slots and send on time, so its
 * lateness (slot → socket write) is not the worker's BullMQ work: on these 2-core machines a
 * busy main loop was measured 15–60 ms late at the tail, and every millisecond of margin costs
 * 0.1% of the PG's budget. It owns the permit gate, the PG connection pool and the phase guard
 * (each call's guard runs here, right before its send), with its own Redis connection.
 */
import type { Config } from '@sluice/config';
import { connectRedis, makeKeys, Transitions, transitionsOptionsOf } from '@sluice/store';
import { parentPort, workerData } from 'node:worker_threads';
import { LocalPg } from './local-pg.ts';
import type { PortResult } from './pg-port.ts';
import type { FromSender, ToSender } from './protocol.ts';

const port = parentPort!;
const post = (m: FromSender): void => port.postMessage(m);
// Parsed once by the main thread, handed over as plain data.
const config = workerData.config as Config;
const redis = connectRedis(config.REDIS_URL);
// This provider's view of the keys: its breaker, its PG chart, its approvals.
const transitions = new Transitions(redis, makeKeys(config.REDIS_PREFIX, config.PG_PROVIDER), transitionsOptionsOf(config));
const pg = new LocalPg(config, redis, transitions, { onCall: (report) => post({ type: 'called', report }) });
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
      .finally(() => post({ type: 'closed' }));
    return;
  }
  run(message).then(
    (result) => post({ type: 'reply', id: message.id, result }),
    (err: unknown) => post({ type: 'failed', id: message.id, message: err instanceof Error ? err.message : String(err) }),
  );
});
post({ type: 'ready' });
