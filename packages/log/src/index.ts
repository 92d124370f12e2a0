/**
 * The one logger factory of every Sluice process (the API, the worker, its sender thread): pino,
 * JSON, at LOG_LEVEL, with the same base fields everywhere (`name`, `pid`, `hostname`). Redaction
 * is configured here, once, so that no call site can leak a merchant's API key, an operator's
 * password, the PG's secret key, an Idempotency-Key or metadata (which merchants fill with their
 * customers' details) into the logs.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from '@sluice/config';

/** Paths pino censors wherever they appear in a log line's object. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["idempotency-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["idempotency-key"]',
  'authorization',
  '*.authorization',
  'secretKey',
  '*.secretKey',
  'idempotencyKey',
  'apiKey',
  'metadata',
  '*.metadata',
  'body',
  'req.body',
  '*.apiKey',
  // ioredis errors carry the command's arguments (the intake script's are metadata and bodies).
  'err.command',
  '*.err.command',
];

/** Which process writes, and where to (stdout unless given). */
export interface LoggerOptions {
  name: string;
  destination?: DestinationStream;
}

/** A JSON logger at LOG_LEVEL with the redaction above. */
export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, o: LoggerOptions): Logger {
  const options = { name: o.name, level: config.LOG_LEVEL, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return o.destination ? pino(options, o.destination) : pino(options);
}
