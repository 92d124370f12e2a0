/**
 * Every error leaves as `{ code, message, details? }`. Known failures are SluiceErrors; the
 * body parser's own errors (bad JSON, too large, bad charset) are mapped to their codes so that
 * a client mistake is never a 500; anything else is a 500 INTERNAL that says nothing inside.
 */
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { isSluiceError, SluiceError } from '@sluice/domain';
import type { ApiLocals } from './request-context.ts';

/** The shape of errors raised by Express's body parser (http-errors with a `type`). */
interface HttpParserError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
}

function fromParser(err: unknown): SluiceError | null {
  if (typeof err !== 'object' || err === null) return null;
  const e = err as HttpParserError;
  const status = e.status ?? e.statusCode;
  // http-errors from the body parser carry a `type`, except its decompression failures
  // (`createError(400, zlibError)`: a gzip body that is not gzip), which carry only `expose`.
  const fromHttpErrors = typeof e.type === 'string' || typeof e.expose === 'boolean';
  if (!fromHttpErrors || typeof status !== 'number' || status < 400 || status >= 500) return null;
  if (status === 413) return new SluiceError('PAYLOAD_TOO_LARGE', 'The request body is too large', 413);
  if (status === 415) return new SluiceError('UNSUPPORTED_MEDIA_TYPE', 'Unsupported body encoding or charset', 415);
  if (e.type === 'entity.parse.failed') return new SluiceError('INVALID_REQUEST', 'The request body is not valid JSON', 400);
  return new SluiceError('INVALID_REQUEST', 'The request body could not be read', 400);
}

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

/** The error middleware. 5xx are logged (with the request id); 4xx are the client's and are not. */
export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response<unknown, ApiLocals>, next: NextFunction): void => {
    if (res.headersSent) {
      // Too late for a body of ours; Express closes the connection.
      next(err);
      return;
    }
    const known = isSluiceError(err) ? err : fromParser(err);
    const e = known ?? new SluiceError('INTERNAL', 'Internal error', 500);
    if (e.httpStatus >= 500 && e.code !== 'BACKLOG_FULL') {
      logger.error({ err: loggableError(err), requestId: res.locals.requestId, method: req.method, path: req.path }, 'request failed');
    }
    res.status(e.httpStatus).json(e.toBody());
  };
}
