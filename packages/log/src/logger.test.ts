/** Secrets and merchant data never reach the logs, whatever a call site passes. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './index.ts';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { lines, stream };
}

describe('createLogger', () => {
  it('redacts Authorization, Idempotency-Key, metadata, bodies and Redis command arguments', () => {
    const { lines, stream } = capture();
    const log = createLogger({ LOG_LEVEL: 'info' }, { name: 'sluice-api', destination: stream });
    log.info(
      {
        req: { headers: { authorization: 'Bearer sk_live_SECRET1', 'idempotency-key': 'IDEMSECRET2', host: 'x' }, body: { metadata: { a: 'M3' } } },
        metadata: { note: 'M4' },
        payment: { metadata: { note: 'M5' }, id: 'pay_1' },
        apiKey: 'sk_live_SECRET6',
        err: { message: 'boom', command: { name: 'evalsha', args: ['M7'] } },
      },
      'hello',
    );
    const out = lines.join('');
    for (const secret of ['SECRET1', 'IDEMSECRET2', 'M3', 'M4', 'M5', 'SECRET6', 'M7']) expect(out).not.toContain(secret);
    const line = JSON.parse(out) as { req: { headers: Record<string, string> }; payment: { id: string } };
    expect(line.req.headers.authorization).toBe('[redacted]');
    expect(line.req.headers.host).toBe('x');
    // The worker's fields: the PG's secret key in whatever object carries it.
    const { lines: more, stream: second } = capture();
    createLogger({ LOG_LEVEL: 'info' }, { name: 'worker', destination: second }).info({ pg: { secretKey: 'test_sk_SECRET8', authorization: 'Basic SECRET9' } }, 'pg');
    expect(more.join('')).not.toMatch(/SECRET8|SECRET9/);
    expect(JSON.parse(more.join(''))).toMatchObject({ name: 'worker', pid: process.pid });
    expect(line.payment.id).toBe('pay_1');
  });

  it('logs nothing at info when LOG_LEVEL is warn', () => {
    const { lines, stream } = capture();
    createLogger({ LOG_LEVEL: 'warn' }, { name: 'sluice-api', destination: stream }).info('per-request noise');
    expect(lines).toEqual([]);
  });
});
