/**
 * Test harness (imported by the *.test.ts files only): the real app over real Redis, with a key
 * prefix of its own, two merchants, and cleanup that leaves Redis as it found it.
 */
import { randomUUID } from 'node:crypto';
import { connect, type AddressInfo } from 'node:net';
import type { RequestListener, Server } from 'node:http';
import { pino, type Logger } from 'pino';
import { testConfig, type Config } from '@sluice/config';
import { BooksStream, connectRedis, PaymentStore, replicaWaiterOf, type Redis } from '@sluice/store';
import { createQueues, type Queues } from '@sluice/queue';
import { BooksReader, BooksWriter, booksPool } from '@sluice/books';
import { createApp } from './app.ts';
import { createHttpServer } from './http-server.ts';
import { hashApiKey } from '@sluice/config';
import { FinalWaiters } from './long-poll.ts';

/** The Redis the API's tests use. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PEPPER = 'test-pepper-0123456789';

/** An API app on real Redis under a fresh prefix, with two merchants' keys: for the API's tests. */
export interface TestApp {
  url: string;
  prefix: string;
  config: Config;
  redis: Redis;
  store: PaymentStore;
  queues: Queues;
  /** The app's long-poll waiters (closed by `close`). */
  waiters: FinalWaiters;
  /** API keys of merchants `m_a` and `m_b`. */
  keyA: string;
  keyB: string;
  close(): Promise<void>;
}

/**
 * Starts the app on port 0 with a fresh prefix. `overrides` go on top of the test config; a
 * `null` override leaves that variable unset.
 */
export async function startTestApp(
  overrides: Record<string, string | number | boolean | null> = {},
  opts: { maxWaiters?: number; logger?: Logger; /** The books to read (a test database): lists, summaries, archived payments. */ databaseUrl?: string } = {},
): Promise<TestApp> {
  const prefix = `test-${randomUUID()}`;
  const keyA = `sk_a_${randomUUID()}`;
  const keyB = `sk_b_${randomUUID()}`;
  const env: Record<string, string | number | boolean | null> = {
    API_KEY_PEPPER: PEPPER,
    MERCHANTS: `m_a:${hashApiKey(PEPPER, keyA)},m_b:${hashApiKey(PEPPER, keyB)}`,
    ADMIN_USER: 'ops',
    ADMIN_PASSWORD: 'ops-password-1',
    REDIS_URL,
    REDIS_PREFIX: prefix,
    ...overrides,
  };
  const config = testConfig(
    Object.fromEntries(Object.entries(env).filter((e): e is [string, string | number | boolean] => e[1] !== null)),
  );
  const redis = connectRedis(config.REDIS_URL);
  const store = new PaymentStore(redis, {
    prefix,
    idempotencyTtlMs: config.IDEMPOTENCY_TTL_MS,
    retentionMs: config.PAYMENT_RETENTION_MS,
  });
  const queues = createQueues(redis, prefix);
  await queuesSettled(redis, prefix);
  const waiters = new FinalWaiters(() => redis.duplicate({ enableAutoPipelining: false }), store.keys.finalChannel, opts.maxWaiters);
  const pool = opts.databaseUrl ? booksPool(opts.databaseUrl) : null;
  const books = pool ? new BooksReader(pool) : null;
  const replicas = replicaWaiterOf(config, redis);
  const app = createApp({ config, store, queues, waiters, books, replicas, logger: opts.logger ?? pino({ level: 'silent' }) });
  const server = await listen(app, config);
  return {
    url: server.url,
    prefix,
    config,
    redis,
    store,
    queues,
    waiters,
    keyA,
    keyB,
    close: async () => {
      await waiters.close();
      await server.close();
      await replicas?.close();
      await pool?.end();
      await cleanRedis(redis, prefix, queues);
      await queues.close();
      await redis.quit();
    },
  };
}

/** Serves an app on 127.0.0.1, port 0. */
export async function listen(app: RequestListener, config: Pick<Config, 'REQUEST_TIMEOUT_MS'> = { REQUEST_TIMEOUT_MS: 10_000 }): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = await new Promise((resolve) => {
    const s = createHttpServer(app, config).listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Every key under the prefix. */
export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 10_000);
    cursor = next;
    out.push(...batch);
  } while (cursor !== '0');
  return out.sort();
}

/**
 * BullMQ writes each queue's meta key in the background after connecting; waiting for them lets
 * tests compare Redis snapshots without seeing those writes land mid-test.
 */
async function queuesSettled(redis: Redis, prefix: string): Promise<void> {
  const metas = ['confirm', 'resolve', 'maintenance'].map((q) => `${prefix}:${q}:meta`);
  for (let i = 0; i < 200; i++) {
    if ((await redis.exists(...metas)) === metas.length) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('BullMQ queues did not become ready');
}

async function cleanRedis(redis: Redis, prefix: string, queues: Queues): Promise<void> {
  for (const q of [queues.confirm, queues.resolve, queues.maintenance]) await q.obliterate({ force: true });
  const keys = await keysUnder(redis, prefix);
  for (let i = 0; i < keys.length; i += 500) await redis.unlink(...keys.slice(i, i + 500));
}

/** A valid request body; ids are unique per call. */
export function paymentBody(over: Record<string, unknown> = {}): Record<string, unknown> {
  const u = randomUUID().replaceAll('-', '');
  return { paymentKey: `pk_${u}`, orderId: `ord_${u.slice(0, 20)}`, amount: 15_000, ...over };
}

/** A test request's answer: status, headers, text and parsed JSON. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body (undefined when it is not JSON). */
  json: any;
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** POSTs /v1/payments. `body` is JSON-encoded unless it is already a string. */
export async function postPayment(
  t: TestApp,
  opts: { key?: string | null; idem?: string | null; body?: unknown; headers?: Record<string, string> },
): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const key = opts.key === undefined ? t.keyA : opts.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const idem = opts.idem === undefined ? randomUUID() : opts.idem;
  if (idem !== null) headers['idempotency-key'] = idem;
  Object.assign(headers, opts.headers);
  const body = typeof opts.body === 'string' || opts.body instanceof Uint8Array ? opts.body : JSON.stringify(opts.body ?? paymentBody());
  return answer(await fetch(`${t.url}/v1/payments`, { method: 'POST', headers, body }));
}

/** POSTs JSON to a path as merchant `key` (A by default), with an Idempotency-Key (a fresh one unless given). */
export async function post(t: TestApp, path: string, body: unknown, key: string = t.keyA, idem: string = randomUUID()): Promise<Answer> {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'idempotency-key': idem };
  return answer(await fetch(`${t.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) }));
}

/** GETs a path, as merchant `key` when given. */
export async function get(t: TestApp, path: string, key?: string, headers: Record<string, string> = {}): Promise<Answer> {
  const h: Record<string, string> = { ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  return answer(await fetch(`${t.url}${path}`, { headers: h }));
}

/** One HTTP/1.1 answer as read off the socket. */
export interface RawAnswer {
  status: number;
  /** Header names in lower case; a repeated header's values joined with ", ". */
  headers: Record<string, string>;
  text: string;
}

/** What a raw exchange produced: the answers in order, whether the server closed, and when. */
export interface RawExchange {
  answers: RawAnswer[];
  /** The server closed the connection. */
  closed: boolean;
  /** Every request given in `methods` was answered (the exchange stopped there). */
  answeredAll: boolean;
  /** Milliseconds from the first write to the close or the timeout. */
  ms: number;
}

/**
 * Splits what a server wrote into answers (Content-Length bodies, or none), skipping interim 1xx
 * answers. `methods[i]` is the method of the i-th request: the answer to a HEAD has no body.
 */
export function parseAnswers(data: Buffer, methods: readonly string[] = []): RawAnswer[] {
  const out: RawAnswer[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const [statusLine, ...lines] = data.subarray(at, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    const status = Number(statusLine!.split(' ')[1]);
    const bodiless = methods[out.length] === 'HEAD' || status === 204 || status === 304 || status < 200;
    const length = bodiless ? 0 : Number(headers['content-length'] ?? 0);
    if (end + 4 + length > data.length) break; // the body is still coming
    const body = data.subarray(end + 4, end + 4 + length);
    if (status >= 200) out.push({ status, headers, text: body.toString('utf8') });
    at = end + 4 + length;
  }
  return out;
}

/**
 * Writes `chunks` to the app's port as they are (each after `gapMs`), then reads until the server
 * closes or `timeoutMs` passes: for what fetch cannot send (repeated headers, broken framing, a
 * Content-Length that lies).
 */
export function rawExchange(
  url: string,
  chunks: (string | Buffer)[],
  opts: { timeoutMs?: number; gapMs?: number; /** Stop once this many requests (of these methods) are answered. */ methods?: readonly string[] } = {},
): Promise<RawExchange> {
  const { port, hostname } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const got: Buffer[] = [];
    const start = Date.now();
    let settled = false;
    const finish = (how: 'closed' | 'answered' | 'timeout'): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ answers: parseAnswers(Buffer.concat(got), opts.methods), closed: how === 'closed', answeredAll: how === 'answered', ms: Date.now() - start });
    };
    const timer = setTimeout(() => finish('timeout'), opts.timeoutMs ?? 5_000);
    socket.on('data', (d: Buffer) => {
      got.push(d);
      if (opts.methods && parseAnswers(Buffer.concat(got), opts.methods).length >= opts.methods.length) finish('answered');
    });
    socket.on('close', () => finish('closed'));
    socket.on('error', () => finish('closed'));
    void (async () => {
      for (const c of chunks) {
        if (socket.destroyed) return;
        socket.write(c);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
    })();
  });
}

/**
 * What the drainer does, at once, for the API's tests: writes every change in the books stream to
 * the books, then archives the final payments with a hot window of `hotMs`.
 */
export async function drainToBooks(t: TestApp, databaseUrl: string, hotMs: number): Promise<void> {
  const stream = new BooksStream(t.redis, t.store.keys);
  const changes = await stream.allChanges();
  const pool = booksPool(databaseUrl);
  try {
    await new BooksWriter(pool).apply(changes);
  } finally {
    await pool.end();
  }
  await stream.archiveCommitted(changes, hotMs, 0);
}
