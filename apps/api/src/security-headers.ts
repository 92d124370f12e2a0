/**
 * helmet's security headers, computed once at start-up and then set from a list.
 *
 * helmet runs a dozen middlewares per request and rebuilds its Content-Security-Policy string
 * each time (its directives may be functions of the request). Ours are all constant, so running
 * helmet once against a recording response gives the exact headers it would set; setting them
 * from that list cut the intake's per-request CPU (`npm run bench -- --only intake`).
 */
import type { ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import helmet, { type HelmetOptions } from 'helmet';

/** What helmet does to a response: headers set (in order) and headers removed. */
export interface RecordedHeaders {
  set: [name: string, value: string][];
  removed: string[];
}

/**
 * Runs helmet once against a recording response. For constant options only: a directive given as
 * a function of the request (a nonce) would be frozen at its first value.
 */
export function recordHelmet(options: Readonly<HelmetOptions> = {}): RecordedHeaders {
  const out: RecordedHeaders = { set: [], removed: [] };
  const res = {
    setHeader(name: string, value: string | number | readonly string[]) {
      out.set.push([name, Array.isArray(value) ? value.join(', ') : String(value)]);
      return res;
    },
    removeHeader(name: string) {
      out.removed.push(name);
    },
  };
  let done = false;
  helmet(options)({} as Request, res as unknown as Response, (err?: unknown) => {
    if (err) throw err;
    done = true;
  });
  if (!done) throw new Error('helmet did not finish synchronously');
  return out;
}

/** Sets helmet's headers on a response, as helmet(options) would. */
export function securityHeaderSetter(options: Readonly<HelmetOptions> = {}): (res: ServerResponse) => void {
  const { set, removed } = recordHelmet(options);
  return (res) => {
    for (const name of removed) res.removeHeader(name);
    for (const [name, value] of set) res.setHeader(name, value);
  };
}

/** Express middleware that sets helmet's headers, as helmet(options) would. */
export function securityHeaders(setHeaders: (res: ServerResponse) => void = securityHeaderSetter()) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    setHeaders(res);
    next();
  };
}
