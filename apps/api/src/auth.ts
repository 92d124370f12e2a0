/**
 * Who is calling: merchants by API key (Bearer), operators by HTTP Basic for the admin pages.
 * Keys are never stored in clear: the config holds HMAC-SHA-256(API_KEY_PEPPER, key), so a
 * leaked config or Redis dump does not hand out working keys, and the pepper stays in the
 * process environment only.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { hashApiKey } from '@sluice/config';
import type { NextFunction, Request, Response } from 'express';
import { SluiceError } from '@sluice/domain';
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

  /** Express middleware: 401 unless a known merchant key is presented. */
  middleware() {
    return (req: Request, res: Response<unknown, ApiLocals>, next: NextFunction): void => {
      const merchantId = this.merchantFor(req.headers.authorization);
      if (merchantId === null) {
        res.setHeader('WWW-Authenticate', 'Bearer');
        throw new SluiceError('UNAUTHORIZED', 'A valid API key is required (Authorization: Bearer <key>)', 401);
      }
      res.locals.merchantId = merchantId;
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

/**
 * HTTP Basic auth for the operator pages. Both halves are always compared, so a wrong user name
 * takes as long as a wrong password.
 */
export function basicAuth(user: string, password: string, realm = 'sluice-admin') {
  return (req: Request, res: Response, next: NextFunction): void => {
    const header = req.headers.authorization ?? '';
    const m = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(header);
    let ok = false;
    if (m?.[1]) {
      const decoded = Buffer.from(m[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon >= 0) {
        const userOk = safeEqual(decoded.slice(0, colon), user);
        const passOk = safeEqual(decoded.slice(colon + 1), password);
        ok = userOk && passOk;
      }
    }
    if (!ok) {
      res.setHeader('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
      throw new SluiceError('UNAUTHORIZED', 'Operator credentials are required', 401);
    }
    next();
  };
}
