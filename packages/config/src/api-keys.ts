/**
 * How merchants' API keys are stored: `MERCHANTS=id:hash` lists the hex HMAC-SHA-256 of each key
 * under `API_KEY_PEPPER`, never the key. One function, used by the API to check a key and by
 * `npm start`, `scripts/hash-key.ts`, the bench and the tests to write `MERCHANTS`, so that the
 * two sides can never disagree.
 */
import { createHmac } from 'node:crypto';

/** The hex HMAC-SHA-256 of an API key under the pepper: what `MERCHANTS` lists per merchant. */
export function hashApiKey(pepper: string, key: string): string {
  return createHmac('sha256', pepper).update(key, 'utf8').digest('hex');
}
