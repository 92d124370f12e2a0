/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): the headers `webhook-id`,
 * `webhook-timestamp` (seconds) and `webhook-signature`, which is `v1,` + the base64 HMAC-SHA256
 * of `<id>.<timestamp>.<body>` under the endpoint's secret (`whsec_` + base64 of its bytes).
 * Only signing lives here; a merchant verifies with `verifyWebhook` of `packages/client`.
 */
import { createHmac, randomBytes } from 'node:crypto';

/** The secret prefix the specification uses. */
const PREFIX = 'whsec_';

/** A new endpoint secret: 24 random bytes, `whsec_` + base64. */
export function newEndpointSecret(): string {
  return PREFIX + randomBytes(24).toString('base64');
}

/** The signature header value of one delivery. */
export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`;
}

/** The three headers of one delivery. */
export function webhookHeaders(secret: string, id: string, timestampSeconds: number, body: string): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': signWebhook(secret, id, timestampSeconds, body),
    'content-type': 'application/json',
  };
}
