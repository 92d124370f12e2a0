/**
 * The intake's body reader, in place of body-parser's `express.json`, because a payment body must
 * be read exactly as sent or refused at once:
 * - a `Content-Length` over the limit is a 413 from the header alone, and a body that grows past
 *   the limit is cut off there; both close the connection, so nobody waits for bytes that will
 *   not be read (body-parser answered only once the whole declared body had arrived: a client
 *   that declared 99,999,999 bytes and sent 7 held the connection until the socket timeout);
 * - bytes that are not UTF-8 are a 400, not replaced by U+FFFD (a paymentKey changed on the way
 *   in is a payment the merchant did not describe);
 * - a `Content-Encoding` is a 415: intake bodies are a few hundred bytes;
 * - a key given twice in one object (`"amount":1,"amount":999999`) is a 400: JSON.parse keeps the
 *   last one, another parser the first, and a payment body must mean one thing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { SluiceError } from '@sluice/domain';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** `charset=` of a Content-Type, if given. */
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)"?/i;

/**
 * The first key that appears twice in one object of `text`, or null. `text` must be valid JSON
 * (call it after JSON.parse succeeded): the scan only tracks strings and brackets. Keys are
 * compared decoded, so `"amount"` and `"\u0061mount"` are the same key.
 */
export function firstDuplicateKey(text: string): string | null {
  // One set of keys per open object; null for an open array.
  const open: (Set<string> | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) open.push(new Set());
    else if (c === 0x5b /* [ */) open.push(null);
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) open.pop();
    else if (c === 0x22 /* " */) {
      let end = i + 1;
      let escaped = false;
      for (; end < text.length; end++) {
        const d = text.charCodeAt(end);
        if (d === 0x22) break;
        if (d === 0x5c /* \ */) {
          escaped = true;
          end++; // the escaped character, which may be a quote
        }
      }
      const keys = open[open.length - 1];
      if (keys) {
        // A string in an object is a key when a colon follows it.
        let j = end + 1;
        while (j < text.length && (text.charCodeAt(j) === 0x20 || text.charCodeAt(j) === 0x0a || text.charCodeAt(j) === 0x0d || text.charCodeAt(j) === 0x09)) j++;
        if (text.charCodeAt(j) === 0x3a /* : */) {
          const key = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
          if (keys.has(key)) return key;
          keys.add(key);
        }
      }
      i = end;
    }
  }
  return null;
}

/** Parses a JSON body as {@link jsonBody} does: UTF-8 bytes, one JSON value, no key twice. */
export function parseJsonBody(bytes: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new SluiceError('INVALID_REQUEST', 'The request body is not valid UTF-8', 400);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SluiceError('INVALID_REQUEST', 'The request body is not valid JSON', 400);
  }
  const dup = typeof value === 'object' && value !== null ? firstDuplicateKey(text) : null;
  if (dup !== null) {
    throw new SluiceError('INVALID_REQUEST', 'The request body gives a key twice', 400, false, [
      // The key, not its values: they may be anything the merchant sent.
      { path: dup.length <= 40 ? dup : `${dup.slice(0, 40)}…`, code: 'duplicate_key', message: 'A key may appear once per object' },
    ]);
  }
  return value;
}

const tooLarge = (): SluiceError => new SluiceError('PAYLOAD_TOO_LARGE', 'The request body is too large', 413);

/**
 * Reads a JSON body of at most `limitBytes` from `req`. The caller has checked the Content-Type.
 * A refusal before the whole body was read sets `Connection: close` on `res`: the rest is not
 * read, so the connection cannot carry another request. A client that goes away mid-body gets no
 * answer (there is no one to send it to): the promise then never settles.
 */
export function readJsonBody(req: IncomingMessage, res: ServerResponse, limitBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const fail = (err: SluiceError): void => {
      res.setHeader('Connection', 'close');
      reject(err);
    };
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      fail(new SluiceError('UNSUPPORTED_MEDIA_TYPE', 'Content-Encoding is not supported: send the JSON as is', 415));
      return;
    }
    const charset = CHARSET.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      fail(new SluiceError('UNSUPPORTED_MEDIA_TYPE', 'The body must be UTF-8', 415));
      return;
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limitBytes) {
      fail(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limitBytes) {
        done = true;
        req.off('data', onData);
        req.pause();
        fail(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (done) return;
      done = true;
      try {
        resolve(parseJsonBody(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
      } catch (err) {
        reject(err);
      }
    });
  });
}

/** Express middleware: {@link readJsonBody} into `req.body`. */
export function jsonBody(limitBytes: number) {
  return (req: Request, res: Response, next: NextFunction): void => {
    readJsonBody(req, res, limitBytes).then((body) => {
      req.body = body;
      next();
    }, next);
  };
}

const JSON_TYPE = /^application\/json\s*(?:;|$)/i;

/** 415 before the body is read: only JSON is accepted. */
export function assertJsonType(req: IncomingMessage): void {
  if (!JSON_TYPE.test(req.headers['content-type'] ?? '')) {
    throw new SluiceError('UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json', 415);
  }
}

/** Express middleware: {@link assertJsonType}. */
export function requireJson(req: Request, _res: Response, next: NextFunction): void {
  assertJsonType(req);
  next();
}
