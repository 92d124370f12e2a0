/**
 * Every error leaves as `{ code, message, details? }`. Known failures are SluiceErrors (the body
 * reader, json-body.ts, raises its own); the router's URIError is mapped to a 400 so that a client
 * mistake is never a 500; anything else is a 500 INTERNAL that says nothing inside.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { isSluiceError, SluiceError } from '@sluice/domain';
import { cutBySlotMove } from '@sluice/store';
import type { ApiLocals } from './request-context.ts';

/**
 * Errors that are the client's, raised outside Sluice's code: the router's URIError for a
 * malformed percent-escape in a path parameter (`/v1/payments/%E0%A4%A`).
 */
function fromClient(err: unknown): SluiceError | null {
  if (err instanceof URIError) return new SluiceError('INVALID_REQUEST', 'The path holds a malformed percent-escape', 400);
  return null;
}

/**
 * Redis refusing a write for now, not for good: a primary without the replicas
 * `min-replicas-to-write` asks for (NOREPLICAS), a demoted one (READONLY), one loading its data
 * (LOADING), a replica whose primary is away (MASTERDOWN); on a Redis Cluster, a node that no
 * longer serves the slot (MOVED, ASK: a redirection the client could not follow while the slot
 * moved) or a cluster without its quorum (CLUSTERDOWN), or a batch a slot move split
 * (`cutBySlotMove`). Nothing was written; the merchant retries with the same key.
 */
const REDIS_FOR_NOW = /^(NOREPLICAS|READONLY|LOADING|MASTERDOWN)\b/;

/**
 * The connection to Redis closed under a command (ioredis aborts the rest of a pipeline that was
 * partly answered): whether it ran is not known, and the retry with the same key decides.
 */
const connectionLost = (err: Error): boolean => err.name === 'AbortError' || err.message === 'Connection is closed.';

function fromRedis(err: unknown): SluiceError | null {
  if (!(err instanceof Error) || !(REDIS_FOR_NOW.test(err.message) || cutBySlotMove(err) || connectionLost(err))) return null;
  return new SluiceError('REDIS_UNAVAILABLE', 'Redis cannot take writes for a moment (a failover, or the connection dropped under the request); retry with the same Idempotency-Key', 503, true);
}

/** What a merchant is told to wait when Redis refuses writes for now. */
const REDIS_RETRY_AFTER_SECONDS = 1;

/**
 * What of an unexpected error may be logged: its kind, message, code and stack. Not its other
 * properties: ioredis attaches the failed command with its arguments, which for the intake
 * script are the merchant's metadata and the whole 202 body.
 */
export function loggableError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err };
  const out: Record<string, unknown> = { type: err.name, message: err.message, stack: err.stack };
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') out.code = code;
  return out;
}

/** The last route: anything unmatched is a JSON 404. */
export function notFoundRoute() {
  return (_req: Request, _res: Response, _next: NextFunction): void => {
    throw new SluiceError('NOT_FOUND', 'Not found', 404);
  };
}

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Answers `err` in the API's error shape, as Express's `res.status().json()` would (the same
 * bytes and headers; a JSON Content-Type even where a route had set another before it failed).
 * 5xx are logged (with the request id); 4xx are the client's and are not. An answer already under
 * way cannot take another: the connection is cut.
 */
export function sendError(logger: Logger, err: unknown, req: IncomingMessage, res: ServerResponse, requestId: string | undefined, path: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const known = isSluiceError(err) ? err : (fromClient(err) ?? fromRedis(err));
  const e = known ?? new SluiceError('INTERNAL', 'Internal error', 500);
  if (e.code === 'REDIS_UNAVAILABLE' && !res.hasHeader('Retry-After')) res.setHeader('Retry-After', String(REDIS_RETRY_AFTER_SECONDS));
  if (e.code === 'REDIS_UNAVAILABLE' || e.code === 'REPLICA_UNCONFIRMED') {
    // A failover's moments, answered with Retry-After: expected, and one line each at most.
    logger.warn({ code: e.code, reason: err instanceof Error ? err.message.slice(0, 80) : undefined, requestId, path }, 'request answered 503: Redis failing over');
  } else if (e.httpStatus >= 500 && e.code !== 'BACKLOG_FULL' && e.code !== 'MERCHANT_BACKLOG_FULL') {
    logger.error({ err: loggableError(err), requestId, method: req.method, path }, 'request failed');
  }
  res.statusCode = e.httpStatus;
  res.setHeader('Content-Type', JSON_CONTENT_TYPE);
  res.end(JSON.stringify(e.toBody()));
}

/** The error middleware: {@link sendError}; past the headers, Express closes the connection. */
export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response<unknown, ApiLocals>, next: NextFunction): void => {
    if (res.headersSent) {
      next(err);
      return;
    }
    sendError(logger, err, req, res, res.locals.requestId, req.path);
  };
}
