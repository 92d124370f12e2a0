/**
 * Who is calling: merchants by API key (Bearer), operators by HTTP Basic for the admin pages.
 * Keys are never stored in clear: the config holds HMAC-SHA-256(API_KEY_PEPPER, key), so a
 * leaked config or Redis dump does not hand out working keys, and the pepper stays in the
 * process environment only.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hashApiKey } from '@sluice/config';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { SluiceError } from '@sluice/domain';
import { LoginThrottle, type Keys, type Redis } from '@sluice/store';
import type { Config } from '@sluice/config';
import type { ApiLocals } from './request-context.ts';

/** A merchant as configured: `MERCHANTS=id:hmacHex,…`. */
export interface MerchantEntry {
  id: string;
  keyHash: string;
}

/** Longer keys are not ours; refusing them first keeps a huge header from costing an HMAC. */
const MAX_KEY_LENGTH = 512;
const BEARER = /^Bearer +(\S+) *$/i;

/** Resolves API keys to merchant ids. Built once at start-up. */
export class MerchantAuth {
  private readonly byHash = new Map<string, { id: string; hash: Buffer }>();

  constructor(
    private readonly pepper: string,
    merchants: readonly MerchantEntry[],
  ) {
    for (const m of merchants) this.byHash.set(m.keyHash, { id: m.id, hash: Buffer.from(m.keyHash, 'hex') });
  }

  /** The merchant id for an `Authorization` header value, or null. */
  merchantFor(authorization: string | undefined): string | null {
    if (!authorization) return null;
    const m = BEARER.exec(authorization);
    const key = m?.[1];
    if (!key || key.length > MAX_KEY_LENGTH) return null;
    const hex = hashApiKey(this.pepper, key);
    const entry = this.byHash.get(hex);
    if (!entry) return null;
    // The map lookup only finds the candidate; the constant-time compare is what confirms it,
    // so that no string comparison of secret-derived bytes ever short-circuits.
    return timingSafeEqual(Buffer.from(hex, 'hex'), entry.hash) ? entry.id : null;
  }

  /** The merchant whose key `req` presents; a 401 (with `WWW-Authenticate` on `res`) if none. */
  authenticate(req: IncomingMessage, res: ServerResponse): string {
    const merchantId = this.merchantFor(req.headers.authorization);
    if (merchantId === null) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw new SluiceError('UNAUTHORIZED', 'A valid API key is required (Authorization: Bearer <key>)', 401);
    }
    return merchantId;
  }

  /** Express middleware: 401 unless a known merchant key is presented. */
  middleware() {
    return (req: Request, res: Response<unknown, ApiLocals>, next: NextFunction): void => {
      res.locals.merchantId = this.authenticate(req, res);
      next();
    };
  }
}

/** Constant-time string equality that does not reveal the expected length through timing. */
function safeEqual(given: string, expected: string): boolean {
  // Comparing digests keeps both sides the same length, as timingSafeEqual requires.
  const a = createHmac('sha256', 'sluice-admin').update(given).digest();
  const b = createHmac('sha256', 'sluice-admin').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** A Basic `Authorization` header's user and password, or null when there is none or it is not Basic. */
function basicCredentials(header: string | undefined): { user: string; password: string } | null {
  const m = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(header ?? '');
  if (!m?.[1]) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? { user: decoded, password: '' } : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The operator account and where failed logins are counted. */
export interface OperatorAuthOptions {
  user: string;
  password: string;
  throttle: LoginThrottle;
  realm?: string;
}

/**
 * HTTP Basic auth for the operator pages. Both halves are always compared, in constant time, so a
 * wrong user name takes as long as a wrong password. Wrong credentials count against the client's
 * address (`req.ip`: TRUST_PROXY decides whose address that is) and the user name tried; past the
 * throttle's limit every try is a 429 with Retry-After, the right password included, so that
 * guessing learns nothing while it lasts. A request with no credentials is asked for them (401)
 * and counts nothing: a browser's first request is one.
 */
export function basicAuth(opts: OperatorAuthOptions) {
  const realm = opts.realm ?? 'sluice-admin';
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const given = basicCredentials(req.headers.authorization);
    const refuse = (): never => {
      res.setHeader('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
      throw new SluiceError('UNAUTHORIZED', 'Operator credentials are required', 401);
    };
    if (!given) refuse();
    const address = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const waitMs = await opts.throttle.retryAfterMs(address, given!.user);
    if (waitMs > 0) {
      res.setHeader('Retry-After', String(Math.ceil(waitMs / 1000)));
      throw new SluiceError('TOO_MANY_ATTEMPTS', 'Too many failed logins; retry later', 429, true);
    }
    const userOk = safeEqual(given!.user, opts.user);
    const passOk = safeEqual(given!.password, opts.password);
    if (!(userOk && passOk)) {
      await opts.throttle.recordFailure(address, given!.user);
      refuse();
    }
    next();
  };
}

/**
 * The operator pages' auth (bull-board, the dashboard, /metrics), or null when ADMIN_USER and
 * ADMIN_PASSWORD are not both set: then those pages do not exist. Failed logins are counted on
 * `redis` (the operator pages' connection).
 */
export function operatorAuthOf(
  config: Pick<Config, 'ADMIN_USER' | 'ADMIN_PASSWORD' | 'ADMIN_LOGIN_MAX_FAILURES' | 'ADMIN_LOGIN_WINDOW_MS'>,
  redis: () => Promise<Redis>,
  keys: Keys,
): RequestHandler | null {
  if (!config.ADMIN_USER || !config.ADMIN_PASSWORD) return null;
  const throttle = new LoginThrottle(redis, keys, { maxFailures: config.ADMIN_LOGIN_MAX_FAILURES, windowMs: config.ADMIN_LOGIN_WINDOW_MS });
  return basicAuth({ user: config.ADMIN_USER, password: config.ADMIN_PASSWORD, throttle });
}
