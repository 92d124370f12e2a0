/** Signing, sealing and the address policy of webhooks; the signature checked by an independent implementation of the specification. */
import { describe, expect, it } from 'vitest';
import { guardedLookup, isPublicAddress, newEndpointSecret, SecretBox, signWebhook, urlProblem, webhookHeaders, RETRY_SCHEDULE_MS, retryDelayMs, DELIVERY_ATTEMPTS } from './index.ts';

/** Standard Webhooks' verification as its specification writes it, with WebCrypto (not node:crypto's HMAC). */
async function independentSignature(secret: string, id: string, ts: string, body: string): Promise<string> {
  const raw = Uint8Array.from(atob(secret.replace(/^whsec_/, '')), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${id}.${ts}.${body}`)));
  return `v1,${btoa(String.fromCharCode(...mac))}`;
}

describe('signing', () => {
  it('signs as the specification says: v1, base64 HMAC-SHA256 of id.timestamp.body under the secret bytes', async () => {
    const secret = newEndpointSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    const body = JSON.stringify({ type: 'payment.approved', data: { note: 'é ✓' } });
    const h = webhookHeaders(secret, 'evt_1', 1_700_000_000, body);
    expect(h['webhook-signature']).toBe(await independentSignature(secret, 'evt_1', '1700000000', body));
    // The specification's own example (standardwebhooks.com, "Verifying webhooks").
    expect(signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}'))
      .toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });
});

describe('sealed secrets', () => {
  it('open with the key and the endpoint they were sealed for, and with nothing else', () => {
    const box = new SecretBox(Buffer.alloc(32, 7).toString('base64'));
    const sealed = box.seal('whsec_abc', 'we_1');
    expect(sealed).not.toContain('abc');
    expect(box.open(sealed, 'we_1')).toBe('whsec_abc');
    expect(() => box.open(sealed, 'we_2')).toThrow();
    expect(() => new SecretBox(Buffer.alloc(32, 8).toString('base64')).open(sealed, 'we_1')).toThrow();
    expect(() => new SecretBox('c2hvcnQ=')).toThrow(/32 bytes/);
  });
});

describe('the address policy', () => {
  it('tells public addresses from loopback, private, link-local and reserved ones', () => {
    for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '100.128.0.1']) expect(isPublicAddress(ip), ip).toBe(true);
    for (const ip of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '224.0.0.1', 'nonsense']) {
      expect(isPublicAddress(ip), ip).toBe(false);
    }
  });

  it('refuses URLs that are not https (in production), carry credentials, or name a private address', () => {
    const strict = { allowHttp: false, allowPrivate: false };
    expect(urlProblem('https://merchant.example/hook', strict)).toBeNull();
    expect(urlProblem('http://merchant.example/hook', strict)).toMatch(/https/);
    expect(urlProblem('http://merchant.example/hook', { allowHttp: true, allowPrivate: false })).toBeNull();
    expect(urlProblem('https://user:pw@merchant.example/', strict)).toMatch(/credentials/);
    for (const u of ['https://127.0.0.1/', 'https://[::1]/', 'https://169.254.169.254/latest', 'https://localhost:8443/', 'https://10.0.0.5/']) expect(urlProblem(u, strict), u).toMatch(/private/);
    expect(urlProblem('https://127.0.0.1/', { allowHttp: false, allowPrivate: true })).toBeNull();
    expect(urlProblem('not a url', strict)).toBe('not a URL');
  });

  it('refuses at connect a name that resolves to a private address (the address connected to, after DNS)', async () => {
    const lookup = (allowPrivate: boolean) =>
      new Promise<{ err: NodeJS.ErrnoException | null; address: unknown }>((resolve) => guardedLookup({ allowHttp: true, allowPrivate })('localhost', {}, (err, address) => resolve({ err, address })));
    const refused = await lookup(false);
    expect(refused.err?.code).toBe('EADDRNOTALLOWED');
    const allowed = await lookup(true);
    expect(allowed.err).toBeNull();
    expect(['127.0.0.1', '::1']).toContain(allowed.address);
  });
});

describe('the retry schedule', () => {
  it('is the specification\'s: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h, ten tries in all', () => {
    expect(RETRY_SCHEDULE_MS.map((ms) => ms / 1_000)).toEqual([5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400]);
    expect(DELIVERY_ATTEMPTS).toBe(10);
    expect([1, 2, 9].map((n) => retryDelayMs(n))).toEqual([5_000, 300_000, 86_400_000]);
    expect(retryDelayMs(1, 0.001)).toBe(5);
  });
});
