/**
 * Endpoint secrets at rest: AES-256-GCM under a key from the environment
 * (WEBHOOK_ENCRYPTION_KEY, 32 bytes in base64). The stored form is
 * `v1.<iv>.<tag>.<ciphertext>` (base64url); the endpoint id is the additional data, so a sealed
 * secret moved to another endpoint does not open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Seals and opens endpoint secrets with one key. */
export class SecretBox {
  private readonly key: Buffer;

  /** @param keyBase64 32 bytes in base64 */
  constructor(keyBase64: string) {
    this.key = Buffer.from(keyBase64, 'base64');
    if (this.key.length !== 32) throw new Error('WEBHOOK_ENCRYPTION_KEY must be 32 bytes in base64');
  }

  seal(plain: string, boundTo: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(boundTo));
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
  }

  /** Opens a sealed secret; throws when it was not sealed with this key for `boundTo`. */
  open(sealed: string, boundTo: string): string {
    const [v, iv, tag, ct] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('not a sealed secret');
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    d.setAAD(Buffer.from(boundTo));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  }
}
