/**
 * Per-request context kept in `res.locals`: the request id (echoed to the caller, written into
 * the payment record and the confirm job, so one id follows a payment from intake to the PG) and,
 * once authenticated, the merchant id.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { SluiceError } from '@sluice/domain';

/** What Sluice's middleware puts in `res.locals`. */
export interface ApiLocals {
  requestId: string;
  /** Set by the merchant auth middleware; read only on routes behind it. */
  merchantId: string;
}

/**
 * A caller's id is taken when it is short and made of safe characters (it ends up in logs and
 * in Redis); anything else is replaced rather than rejected, so a proxy's odd id never fails a
 * payment.
 */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's id (the caller's when sane, else a new one), set as the `X-Request-Id` response header. */
export function takeRequestId(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
  res.setHeader('X-Request-Id', id);
  return id;
}

/** Express middleware: sets `res.locals.requestId` and the `X-Request-Id` response header. */
export function requestId() {
  return (req: Request, res: Response<unknown, ApiLocals>, next: NextFunction): void => {
    res.locals.requestId = takeRequestId(req, res);
    next();
  };
}

/**
 * Parses TRUST_PROXY into what Express's `trust proxy` setting takes: `false`/`true`, a hop
 * count, or a comma-separated list of addresses, subnets or names (`loopback`, `10.0.0.0/8`).
 */
export function parseTrustProxy(value: string): boolean | number | string[] {
  const v = value.trim();
  if (v === '' || v === 'false') return false;
  if (v === 'true') return true;
  if (/^\d+$/.test(v)) return Number(v);
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

/**
 * Headers that must not be given twice. Node keeps the first `Authorization` or `Content-Type`
 * and joins two `Idempotency-Key`s with ", " into one valid-looking key: either way Sluice would
 * act on a request other than the one a proxy or a log shows. (Two `X-Request-Id`s, which a proxy
 * may add, are joined into an id that fails its pattern and is replaced: no need to refuse them.)
 */
const SINGLE_HEADERS = new Set(['authorization', 'content-type', 'content-length', 'idempotency-key']);

/** Throws a 400 when a header of {@link SINGLE_HEADERS} appears more than once in `raw` (Node's `rawHeaders`). */
export function refuseRepeated(raw: readonly string[]): void {
  let seen: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!SINGLE_HEADERS.has(name)) continue;
    if (seen?.includes(name)) {
      throw new SluiceError('INVALID_REQUEST', `The ${name} header is given more than once`, 400, false, [
        { path: `headers.${name}`, code: 'repeated', message: `${name}: give it once` },
      ]);
    }
    (seen ??= []).push(name);
  }
}

/** Express middleware: 400 when a header of {@link SINGLE_HEADERS} appears more than once. */
export function refuseRepeatedHeaders() {
  return (req: Request, _res: Response, next: NextFunction): void => {
    refuseRepeated(req.rawHeaders);
    next();
  };
}
