/**
 * What a merchant may send to `POST /v1/payments`, and the request's fingerprint for
 * idempotency. Validation is strict: an unknown field is a 400, not silently dropped, so a typo
 * in a field name never creates a payment the merchant did not describe.
 */
import { hash } from 'node:crypto';
import { z } from 'zod';
import { containsPan, hasLoneSurrogate, PAYMENT_STATUSES, SluiceError } from '@sluice/domain';
import { DEFAULT_PROVIDER } from '@sluice/config';
import { MAX_WAIT_SECONDS } from './long-poll.ts';

/** orderIds go into Redis keys and the PG's API: a safe, bounded alphabet. */
export const ORDER_ID = z.string().regex(/^[A-Za-z0-9_-]{6,64}$/, 'orderId: 6–64 characters of A–Z, a–z, 0–9, _ and -');

const METADATA_MAX_KEYS = 20;

/**
 * A string of `min`–`max` characters as the PG counts them: UTF-16 code units (`String.length`;
 * an emoji outside the BMP counts 2). zod's own `min`/`max` count code points, so a paymentKey of
 * 101 emoji (202 units) passed them and then failed at the PG. They stay for the OpenAPI
 * document's `minLength`/`maxLength`; the refinement is what holds. A lone surrogate is refused:
 * it would be stored as U+FFFD, a string the merchant never sent.
 */
export function pgString(min: number, max: number, name: string) {
  return z
    .string()
    .min(min)
    .max(max)
    .refine((s) => s.length >= min && s.length <= max, `${name}: ${min}–${max} UTF-16 code units`)
    .refine((s) => !hasLoneSurrogate(s), `${name}: not well-formed Unicode (a lone surrogate)`);
}

/** The request body schema. `currency` may only repeat the PG's one currency (it has no field for it). */
export function paymentRequestSchema(currency: string, providers: readonly string[] = [DEFAULT_PROVIDER]) {
  // Descriptions and `maxProperties` are for the OpenAPI document (openapi.ts), which is
  // generated from this schema; they change nothing in validation.
  const [only, ...more] = providers;
  const provider =
    more.length === 0
      ? z.literal(only ?? DEFAULT_PROVIDER).optional().describe('The PG whose payment window the customer used (only one is configured: optional)')
      : z.enum([only!, ...more] as [string, ...string[]]).describe('The PG whose payment window the customer used: required, one of GET /v1/providers');
  return z.strictObject({
    paymentKey: pgString(1, 200, 'paymentKey').describe("The PG's token from the customer's authorisation"),
    orderId: ORDER_ID.describe('Unique across the PG account (all merchants)'),
    // zod 4's int() admits safe integers only, so amounts past 2^53 are refused, not rounded.
    amount: z.number().int().positive().describe('Minor units'),
    currency: z.literal(currency).optional().describe("Only the PG account's currency"),
    provider,
    metadata: z
      .record(pgString(1, 40, 'metadata key'), pgString(0, 500, 'metadata value'))
      .refine((m) => Object.keys(m).length <= METADATA_MAX_KEYS, `metadata: at most ${METADATA_MAX_KEYS} keys`)
      .meta({ maxProperties: METADATA_MAX_KEYS })
      .optional()
      .describe('String values; anything that looks like a card number is refused (400 CARD_DATA_NOT_ALLOWED)'),
  });
}

/**
 * The body of `POST /v1/payments/{id}/cancel`: a reason, and an amount for a partial cancel
 * (none: the whole balance left). The reason goes to the PG as `cancelReason` (≤ 200 UTF-16
 * code units, the contract's count).
 */
export const cancelRequestSchema = z.strictObject({
  reason: pgString(1, 200, 'reason').describe('Why: sent to the PG as the cancelReason'),
  amount: z.number().int().positive().optional().describe('Minor units; none cancels the whole balance left'),
});

/** A cancel request as accepted. */
export type CancelRequestBody = z.infer<typeof cancelRequestSchema>;

/** Parses a cancel body: 400 with the issues when it is invalid, or when its reason holds a card number. */
export function parseCancelRequest(body: unknown): CancelRequestBody {
  const parsed = cancelRequestSchema.safeParse(body);
  if (!parsed.success) throw new SluiceError('INVALID_REQUEST', 'The request body is invalid', 400, false, issuesOf(parsed.error));
  if (containsPan(parsed.data.reason)) {
    throw new SluiceError('CARD_DATA_NOT_ALLOWED', 'reason must not contain card numbers', 400, false, { field: 'reason' });
  }
  return parsed.data;
}

/** A cancel request's fingerprint: the payment, the amount and the reason. */
export function cancelFingerprintOf(paymentId: string, req: CancelRequestBody): string {
  return sha256Hex(`{"amount":${JSON.stringify(req.amount ?? null)},"paymentId":${JSON.stringify(paymentId)},"reason":${JSON.stringify(req.reason)}}`);
}

/** A payment request as intake accepts it (the schema's output). */
export type PaymentRequest = z.infer<ReturnType<typeof paymentRequestSchema>>;

/** Issues as `details`: where and what, never the value (it may be card data or a secret). */
function issuesOf(err: z.ZodError): { path: string; code: string; message: string }[] {
  return err.issues.map((i) => ({ path: i.path.map(String).join('.'), code: i.code, message: i.message }));
}

const hasProtoKey = (o: unknown): boolean => typeof o === 'object' && o !== null && Object.hasOwn(o, '__proto__');

/** Parses a body or throws 400 INVALID_REQUEST / CARD_DATA_NOT_ALLOWED. */
export function parsePaymentRequest(schema: ReturnType<typeof paymentRequestSchema>, body: unknown): PaymentRequest {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new SluiceError('INVALID_REQUEST', 'The request body is invalid', 400, false, issuesOf(parsed.error));
  }
  if (hasProtoKey((body as { metadata?: unknown }).metadata)) {
    // zod drops a `__proto__` record key silently; storing metadata other than what was sent
    // would be worse than refusing it.
    throw new SluiceError('INVALID_REQUEST', 'The request body is invalid', 400, false, [
      { path: 'metadata.__proto__', code: 'invalid_key', message: 'metadata: "__proto__" is not a usable key' },
    ]);
  }
  const md = parsed.data.metadata;
  if (md) {
    // Only metadata is free text. orderId is not checked: its alphabet already rules out
    // spaced PANs, and a merchant's 16-digit order number must not be refused for being
    // Luhn-valid by chance.
    for (const k in md) {
      if (containsPan(k) || containsPan(md[k]!)) {
        throw new SluiceError('CARD_DATA_NOT_ALLOWED', 'metadata must not contain card numbers', 400, false, { field: 'metadata' });
      }
    }
  }
  return parsed.data;
}

/** Printable ASCII, 1–255 characters (the same rule the PG applies to its own Idempotency-Key). */
const IDEMPOTENCY_KEY = /^[\x20-\x7E]{1,255}$/;

/** Reads the `Idempotency-Key` header or throws 400. */
export function idempotencyKeyOf(header: string | string[] | undefined): string {
  if (typeof header !== 'string' || !IDEMPOTENCY_KEY.test(header)) {
    throw new SluiceError('INVALID_REQUEST', 'Idempotency-Key header is required: 1–255 printable ASCII characters', 400, false, [
      { path: 'headers.idempotency-key', code: header === undefined ? 'missing' : 'invalid', message: 'Idempotency-Key: 1–255 printable ASCII characters' },
    ]);
  }
  return header;
}

/**
 * JSON with object keys sorted at every level, so that two requests that mean the same thing
 * (fields in another order) get the same fingerprint. Written straight to a string: no object is
 * built from caller-chosen keys (`__proto__` stays an ordinary key).
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(o).sort()) {
    if (o[k] !== undefined) parts.push(`${JSON.stringify(k)}:${canonicalJson(o[k])}`);
  }
  return `{${parts.join(',')}}`;
}

/** SHA-256 in hex. The one-shot `hash` costs ~0.3 µs where createHash costs ~0.75 µs (twice per intake). */
export const sha256Hex = (s: string): string => hash('sha256', s, 'hex');

/**
 * The request's fingerprint: SHA-256 of `canonicalJson({ ...req, currency, provider })`.
 * `currency` and `provider` are filled in first: leaving one out and sending the only value it can
 * have are the same request, and a retry that adds it must replay, not count as key reuse. The
 * default provider is left out (as if absent), so that fingerprints stored before there were
 * several PGs still match.
 *
 * Written out for the validated shape (top-level keys in sorted order, only metadata sorted at
 * run time) rather than through the generic canonicalJson, which cost the intake ~4 µs a
 * request. The bytes are the same, and must stay so: stored idempotency keys hold these hashes
 * (helpers.test.ts checks the two against each other on generated requests).
 */
export function fingerprintOf(req: PaymentRequest, currency: string, provider: string = DEFAULT_PROVIDER): string {
  let s = `{"amount":${JSON.stringify(req.amount)},"currency":${JSON.stringify(currency)}`;
  if (req.metadata !== undefined) s += `,"metadata":${canonicalJson(req.metadata)}`;
  s += `,"orderId":${JSON.stringify(req.orderId)},"paymentKey":${JSON.stringify(req.paymentKey)}`;
  // The provider is part of the request; the default one is left out, so that a deployment with
  // one PG keeps the fingerprints (and replays) it had before there were several.
  if (provider !== DEFAULT_PROVIDER) s += `,"provider":${JSON.stringify(provider)}`;
  return sha256Hex(`${s}}`);
}

/**
 * Reads `?wait=N` of a status read: whole seconds 0–{@link MAX_WAIT_SECONDS}, absent = 0.
 * Throws 400 for anything else (a repeated parameter, a fraction, a sign, a word).
 */
export function waitSecondsOf(q: unknown): number {
  if (q === undefined) return 0;
  const n = typeof q === 'string' && /^\d{1,2}$/.test(q) ? Number(q) : Number.NaN;
  if (!(n <= MAX_WAIT_SECONDS)) {
    throw new SluiceError('INVALID_REQUEST', `wait must be a whole number of seconds from 0 to ${MAX_WAIT_SECONDS}`, 400, false, [
      { path: 'query.wait', code: 'invalid', message: `wait: 0–${MAX_WAIT_SECONDS} (seconds)` },
    ]);
  }
  return n;
}

/** A query string's issues as a 400, like a body's. */
function queryError(err: z.ZodError): SluiceError {
  return new SluiceError('INVALID_REQUEST', 'The query string is invalid', 400, false, issuesOf(err).map((i) => ({ ...i, path: `query.${i.path}` })));
}

const isoTime = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

/** `GET /v1/payments` without orderId: filters and a cursor (the last id of the previous page). Unknown parameters are a 400. */
export const listQuerySchema = z.strictObject({
  status: z.enum(PAYMENT_STATUSES).optional().describe('Only payments in this status (as the books hold it)'),
  createdFrom: isoTime.optional().describe('Created at or after this time (ISO 8601)'),
  createdTo: isoTime.optional().describe('Created before this time (ISO 8601)'),
  limit: z.string().regex(/^\d{1,3}$/, 'limit: 1–100').transform(Number).pipe(z.number().int().min(1).max(100)).default(20).describe('Payments per page, 1–100 (default 20)'),
  startingAfter: z.string().regex(/^pay_[0-9a-z]{1,60}$/, 'startingAfter: a payment id').optional().describe('The last id of the previous page (`nextStartingAfter`)'),
});

/** Reads a list query or throws 400. */
export function listQueryOf(query: unknown): z.output<typeof listQuerySchema> {
  const parsed = listQuerySchema.safeParse(query);
  if (!parsed.success) throw queryError(parsed.error);
  return parsed.data;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
/** The longest span a summary covers, in days. */
export const SUMMARY_MAX_DAYS = 366;

/** `GET /v1/summary/daily`: UTC days `from`–`to` (both included), as JSON or CSV. */
export const summaryQuerySchema = z
  .strictObject({
    from: z.string().regex(DAY, 'from: YYYY-MM-DD').describe('First day (UTC), YYYY-MM-DD'),
    to: z.string().regex(DAY, 'to: YYYY-MM-DD').describe('Last day (UTC), included'),
    format: z.enum(['json', 'csv']).optional().describe('csv for a CSV file; by default JSON (or what Accept asks for)'),
  })
  .transform((q) => ({ fromMs: Date.parse(`${q.from}T00:00:00Z`), toMs: Date.parse(`${q.to}T00:00:00Z`) + 86_400_000, format: q.format }))
  .refine((q) => Number.isFinite(q.fromMs) && Number.isFinite(q.toMs) && q.toMs > q.fromMs && q.toMs - q.fromMs <= SUMMARY_MAX_DAYS * 86_400_000, {
    message: `from ≤ to, real dates, at most ${SUMMARY_MAX_DAYS} days`,
  });

/** Reads a summary query or throws 400. */
export function summaryQueryOf(query: unknown): z.output<typeof summaryQuerySchema> {
  const parsed = summaryQuerySchema.safeParse(query);
  if (!parsed.success) throw queryError(parsed.error);
  return parsed.data;
}
