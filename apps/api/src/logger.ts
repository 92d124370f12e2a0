/**
 * The API's pino logger. Redaction is configured here, once, so that no call site can leak a
 * merchant's API key, an operator's password, an Idempotency-Key or metadata (which merchants
 * fill with their customers' details) into the logs.
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

/** A JSON logger at LOG_LEVEL with the redaction above. */
export function createLogger(config: Pick<Config, 'LOG_LEVEL'>, destination?: DestinationStream, name = 'sluice-api'): Logger {
  const options = { name, level: config.LOG_LEVEL, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}
