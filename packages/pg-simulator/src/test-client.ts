/**
 * A minimal HTTP client for the simulator's own tests, on `node:http` so the simulator keeps zero
 * dependencies. It returns the raw body text, which the byte-for-byte replay checks need.
 */
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { DEFAULT_SECRET_KEY } from './options.ts';

/** An answer as received. */
export interface SimResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON (typed loosely: tests inspect fields). */
  json: () => Record<string, unknown> & { code?: string; status?: string };
}

/** Options of {@link call}. */
export interface CallOptions {
  /** An object is sent as JSON; a string is sent as is. */
  body?: unknown;
  headers?: Record<string, string>;
  idempotencyKey?: string;
  /** The secret key to authenticate with, or false for no Authorization header. */
  secretKey?: string | false;
  agent?: Agent;
}

/** `Basic base64("<secretKey>:")`. */
export function basicAuth(secretKey: string = DEFAULT_SECRET_KEY): string {
  return 'Basic ' + Buffer.from(`${secretKey}:`).toString('base64');
}

/** Sends one request; rejects on a connection error (refused, reset, destroyed). */
export function call(baseUrl: string, method: string, path: string, opts: CallOptions = {}): Promise<SimResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.secretKey !== false) headers['authorization'] = basicAuth(opts.secretKey === undefined ? undefined : opts.secretKey);
  if (opts.idempotencyKey !== undefined) headers['idempotency-key'] = opts.idempotencyKey;
  let payload: string | undefined;
  if (opts.body !== undefined) {
    payload = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, baseUrl), { method, headers, agent: opts.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** POST /v1/payments/confirm with a valid body for `paymentKey`. */
export function confirm(
  baseUrl: string,
  paymentKey: string,
  opts: CallOptions & { orderId?: string; amount?: number } = {},
): Promise<SimResponse> {
  const body = opts.body ?? { paymentKey, orderId: opts.orderId ?? `order-${paymentKey}`, amount: opts.amount ?? 10_000 };
  return call(baseUrl, 'POST', '/v1/payments/confirm', { ...opts, body });
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('waitFor: condition not met in time');
    await sleep(10);
  }
}

/** The error code of a rejected call (ECONNREFUSED, ECONNRESET…), or 'ANSWERED' if it resolved. */
export async function connectionError(promise: Promise<SimResponse>): Promise<string> {
  try {
    await promise;
    return 'ANSWERED';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}
