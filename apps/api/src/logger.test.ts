/** Secrets and merchant data never reach the logs, whatever a call site passes. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loggableError } from './errors.ts';
import { createLogger } from './logger.ts';

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
    const log = createLogger({ LOG_LEVEL: 'info' }, stream);
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
    expect(line.payment.id).toBe('pay_1');
  });

  it('logs nothing at info when LOG_LEVEL is warn', () => {
    const { lines, stream } = capture();
    createLogger({ LOG_LEVEL: 'warn' }, stream).info('per-request noise');
    expect(lines).toEqual([]);
  });
});

describe('loggableError', () => {
  it('keeps kind, message and code, and drops attached command arguments', () => {
    const e = Object.assign(new Error('ERR script failed'), { code: 'ERR', command: { name: 'evalsha', args: ['secret-metadata'] } });
    const l = loggableError(e);
    expect(l).toMatchObject({ type: 'Error', message: 'ERR script failed', code: 'ERR' });
    expect(JSON.stringify(l)).not.toContain('secret-metadata');
  });
});
