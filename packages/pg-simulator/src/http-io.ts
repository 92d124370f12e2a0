/**
 * Small HTTP helpers: building `{code, message}` answers, reading a capped body, writing JSON.
 * Kept allocation-light because every one of ~500 requests a second passes through here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isStoredAnswer, type Answer } from './idempotency.ts';

/** An error answer; whether it is stored under an Idempotency-Key follows the contract's list. */
export function errorAnswer(status: number, code: string, message: string): Answer {
  return { status, body: JSON.stringify({ code, message }), store: isStoredAnswer(status, code) };
}

/** A 200 answer with a JSON body. */
export function okAnswer(body: string, store = true): Answer {
  return { status: 200, body, store };
}

/** Outcome of reading a request body under the size cap. */
export type BodyResult = { kind: 'ok'; text: string } | { kind: 'too_large' } | { kind: 'aborted' };

/** A body this far past the cap is not worth draining: the socket is destroyed instead. */
const DRAIN_SLACK_BYTES = 1 << 20;

/**
 * Reads the body as UTF-8 text. Past `maxBytes` it keeps draining (discarding) so the client
 * finishes its write and can read the 413, rather than seeing a reset mid-upload.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        tooLarge = true;
        chunks.length = 0;
        if (size > maxBytes + DRAIN_SLACK_BYTES) req.socket.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) resolve({ kind: 'too_large' });
      else resolve({ kind: 'ok', text: chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8') });
    });
    req.on('error', () => resolve({ kind: 'aborted' }));
    req.on('close', () => {
      if (!req.complete) resolve({ kind: 'aborted' });
    });
  });
}

/** Writes a JSON answer; extra headers (e.g. `Idempotent-Replayed`) are added as given. */
export function writeJson(res: ServerResponse, status: number, body: string, extra?: Record<string, string>): void {
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  };
  if (extra !== undefined) Object.assign(headers, extra);
  res.writeHead(status, headers);
  res.end(body);
}

/** `Basic base64("<secretKey>:")`, computed once per simulator. */
export function expectedAuthorization(secretKey: string): string {
  return 'Basic ' + Buffer.from(secretKey + ':', 'utf8').toString('base64');
}

/** True when the Authorization header carries the account's secret key (scheme case-insensitive). */
export function isAuthorized(header: string | undefined, expected: string): boolean {
  if (header === undefined) return false;
  if (header === expected) return true;
  const space = header.indexOf(' ');
  return space > 0 && header.slice(0, space).toLowerCase() === 'basic' && header.slice(space + 1).trim() === expected.slice(6);
}

/** Splits `/path?query` without building a URL object (the hot path only needs the path). */
export function splitUrl(url: string): { path: string; query: string } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

/** Decodes a path segment; malformed escapes yield null rather than a throw. */
export function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}
