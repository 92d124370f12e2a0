/**
 * Verifying a Sluice webhook as Standard Webhooks say: the signature is `v1,` + base64
 * HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>` under the endpoint secret's bytes
 * (`whsec_` + base64). The timestamp must be within the tolerance of now (a replayed old
 * delivery is refused). Pass the body exactly as received: parsing and re-serialising it changes
 * the bytes.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Why a webhook did not verify. */
export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
}

/** Header values as Node, undici or fetch give them. */
export type HeadersLike = Headers | Record<string, string | string[] | undefined>;

function header(h: HeadersLike, name: string): string | undefined {
  if (typeof (h as Headers).get === 'function') return (h as Headers).get(name) ?? undefined;
  const rec = h as Record<string, string | string[] | undefined>;
  const v = rec[name] ?? rec[Object.keys(rec).find((k) => k.toLowerCase() === name) ?? ''];
  return Array.isArray(v) ? v[0] : v;
}

/** A verified event. */
export interface WebhookEvent<D = Record<string, unknown>> {
  id: string;
  type: string;
  timestamp: string;
  data: D;
}

/**
 * Checks a delivery's headers and body against the endpoint secret and returns the event; throws
 * {@link WebhookVerificationError} when the signature, the id or the timestamp does not hold.
 */
export function verifyWebhook<D = Record<string, unknown>>(
  headers: HeadersLike,
  body: string | Uint8Array,
  secret: string,
  opts: { toleranceSeconds?: number; now?: () => number } = {},
): WebhookEvent<D> {
  const id = header(headers, 'webhook-id');
  const ts = header(headers, 'webhook-timestamp');
  const sigs = header(headers, 'webhook-signature');
  if (!id || !ts || !sigs) throw new WebhookVerificationError('missing webhook-id, webhook-timestamp or webhook-signature');
  const seconds = Number(ts);
  if (!/^\d+$/.test(ts)) throw new WebhookVerificationError('webhook-timestamp is not a number of seconds');
  const now = Math.floor((opts.now ?? Date.now)() / 1_000);
  const tolerance = opts.toleranceSeconds ?? 300;
  if (Math.abs(now - seconds) > tolerance) throw new WebhookVerificationError('webhook-timestamp is outside the tolerance');
  const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${text}`).digest();
  // The header may carry several space-separated signatures (a secret being rotated).
  const ok = sigs.split(' ').some((s) => {
    const [version, value] = s.split(',');
    if (version !== 'v1' || !value) return false;
    const given = Buffer.from(value, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!ok) throw new WebhookVerificationError('no signature matches');
  const event = JSON.parse(text) as WebhookEvent<D>;
  if (event.id !== id) throw new WebhookVerificationError('the body is not the event webhook-id names');
  return event;
}
