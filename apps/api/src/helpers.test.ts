/** The pure pieces: key hashing, auth lookup, canonical JSON, TRUST_PROXY, ceiling, rendering. */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PaymentRecord } from '@sluice/store';
import { hashApiKey } from '@sluice/config';
import { MerchantAuth } from './auth.ts';
import { canonicalJson, fingerprintOf, parsePaymentRequest, paymentRequestSchema, sha256Hex } from './payment-request.ts';
import { backlogCeiling } from './intake.ts';
import { bodyTemplate, etaOf, newRecord, renderPayment } from './render.ts';
import { parseTrustProxy } from './request-context.ts';

const PEPPER = 'pepper-0123456789abcdef';

describe('hashApiKey / MerchantAuth', () => {
  it('is HMAC-SHA-256(pepper, key) in hex', () => {
    expect(hashApiKey(PEPPER, 'sk_live_1')).toBe(createHmac('sha256', PEPPER).update('sk_live_1').digest('hex'));
    expect(hashApiKey(PEPPER, 'sk_live_1')).toMatch(/^[0-9a-f]{64}$/);
    expect(hashApiKey('another-pepper-000', 'sk_live_1')).not.toBe(hashApiKey(PEPPER, 'sk_live_1'));
  });

  it('maps a presented key to its merchant and nothing else', () => {
    const auth = new MerchantAuth(PEPPER, [
      { id: 'shop1', keyHash: hashApiKey(PEPPER, 'k1') },
      { id: 'shop2', keyHash: hashApiKey(PEPPER, 'k2') },
    ]);
    expect(auth.merchantFor('Bearer k1')).toBe('shop1');
    expect(auth.merchantFor('Bearer k2')).toBe('shop2');
    expect(auth.merchantFor('bearer   k2')).toBe('shop2');
    expect(auth.merchantFor('Bearer k3')).toBeNull();
    expect(auth.merchantFor('k1')).toBeNull();
    expect(auth.merchantFor('Bearer k1 extra')).toBeNull();
    expect(auth.merchantFor(`Bearer ${'k'.repeat(513)}`)).toBeNull();
    expect(auth.merchantFor(undefined)).toBeNull();
    // A key hashed under another pepper is not accepted.
    expect(new MerchantAuth('other-pepper-00000', [{ id: 'x', keyHash: hashApiKey(PEPPER, 'k1') }]).merchantFor('Bearer k1')).toBeNull();
  });
});

describe('canonicalJson / fingerprint', () => {
  it('sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: 'x', c: [2, { f: 1, e: 0 }] }, u: undefined })).toBe('{"a":{"c":[2,{"e":0,"f":1}],"d":"x"},"b":1}');
  });

  it('keeps __proto__ an ordinary key', () => {
    const o = JSON.parse('{"__proto__":"x","a":"y"}') as unknown;
    expect(canonicalJson(o)).toBe('{"__proto__":"x","a":"y"}');
  });

  it('treats a missing currency as the PG currency, and any field change as another request', () => {
    const schema = paymentRequestSchema('KRW');
    const base = parsePaymentRequest(schema, { paymentKey: 'pk', orderId: 'order-1', amount: 10 });
    const withCurrency = parsePaymentRequest(schema, { amount: 10, currency: 'KRW', orderId: 'order-1', paymentKey: 'pk' });
    expect(fingerprintOf(withCurrency, 'KRW')).toBe(fingerprintOf(base, 'KRW'));
    expect(fingerprintOf({ ...base, amount: 11 }, 'KRW')).not.toBe(fingerprintOf(base, 'KRW'));
    expect(fingerprintOf({ ...base, metadata: {} }, 'KRW')).not.toBe(fingerprintOf(base, 'KRW'));
  });
});

describe('parseTrustProxy', () => {
  it.each([
    ['false', false],
    ['', false],
    ['true', true],
    ['2', 2],
    ['loopback', ['loopback']],
    ['loopback, 10.0.0.0/8 ,uniquelocal', ['loopback', '10.0.0.0/8', 'uniquelocal']],
  ])('%j → %j', (input, want) => {
    expect(parseTrustProxy(input)).toEqual(want);
  });
});

describe('backlogCeiling', () => {
  it('is BACKLOG_MAX_SECONDS of work at the PG rate', () => {
    expect(backlogCeiling({ BACKLOG_MAX_SECONDS: 1_200, PG_RATE_LIMIT: 500, PG_RATE_WINDOW_MS: 1_000 })).toBe(600_000);
    expect(backlogCeiling({ BACKLOG_MAX_SECONDS: 1, PG_RATE_LIMIT: 2, PG_RATE_WINDOW_MS: 1_000 })).toBe(2);
    expect(backlogCeiling({ BACKLOG_MAX_SECONDS: 10, PG_RATE_LIMIT: 100, PG_RATE_WINDOW_MS: 2_000 })).toBe(500);
    expect(backlogCeiling({ BACKLOG_MAX_SECONDS: 1, PG_RATE_LIMIT: 1, PG_RATE_WINDOW_MS: 60_000 })).toBe(1);
  });
});

describe('renderPayment', () => {
  it('renders times as ISO and keeps internals out', () => {
    const rec: PaymentRecord = {
      id: 'pay_1', merchantId: 'm', paymentKey: 'pk', orderId: 'order-1', amount: 100, currency: 'KRW', metadata: null,
      status: 'APPROVED', phase: 'final', createdAt: 0, updatedAt: 1_000, finalizedAt: 2_000, attempts: 2, pgCalls: 5,
      answeredInquiries: 1, reconfirms: 0, transactionKey: 'tx', approvedAt: '2024-01-01T00:00:00+09:00', failure: null,
      requestId: 'r', inDoubtAt: 500, confirmsSettled: 0, cancels: 0, confirmSentAt: 400, fqSeq: null, provider: 'default', refunds: [], canceledAmount: 0, reservedAmount: 0,
    };
    expect(renderPayment(rec, null)).toEqual({
      id: 'pay_1', paymentKey: 'pk', orderId: 'order-1', amount: 100, currency: 'KRW', provider: 'default', metadata: null, status: 'APPROVED',
      attempts: 2, createdAt: '1970-01-01T00:00:00.000Z', updatedAt: '1970-01-01T00:00:01.000Z',
      finalizedAt: '1970-01-01T00:00:02.000Z', transactionKey: 'tx', approvedAt: '2024-01-01T00:00:00+09:00', failure: null,
      balanceAmount: 100, cancels: [], eta: null,
    });
  });

  it('estimates eta from the send slots at the PG rate, only while QUEUED', () => {
    const rate = { windowMs: 1_000, limit: 500 };
    const queued = { ...baseRecord(), status: 'QUEUED' as const, phase: 'queued' as const };
    // 999 slots ahead + this one's, at 2 ms each: 2 s from now.
    expect(etaOf({ record: queued, slots: 1_000 }, 10_000, rate)).toBe('1970-01-01T00:00:12.000Z');
    expect(etaOf({ record: queued, slots: 1 }, 10_000, { windowMs: 1_000, limit: 3 })).toBe('1970-01-01T00:00:10.333Z');
    // A share of the rate: a fraction of slots.
    expect(etaOf({ record: queued, slots: 2.5 }, 10_000, rate)).toBe('1970-01-01T00:00:10.005Z');
    expect(etaOf({ record: queued, slots: null }, 10_000, rate)).toBeNull();
    expect(etaOf({ record: { ...queued, status: 'PROCESSING' }, slots: 3 }, 10_000, rate)).toBeNull();
  });

  it('leaves a hole for eta at the end of the 202 body', () => {
    const t = bodyTemplate(
      { id: 'pay_1', merchantId: 'm', provider: 'default', paymentKey: 'pk "x"', orderId: 'order-1', amount: 1, currency: 'KRW', metadata: { eta: 'null}' }, requestId: 'r', createdAt: 0 },
      { windowMs: 1_000, limit: 500 },
    );
    const body = JSON.parse(`${t.head}1970-01-01T00:00:00.002Z${t.tail}`) as Record<string, unknown>;
    expect(body).toMatchObject({ paymentKey: 'pk "x"', metadata: { eta: 'null}' }, status: 'QUEUED', eta: '1970-01-01T00:00:00.002Z' });
    expect(Object.keys(body).at(-1)).toBe('eta');
  });
});

/** Strings of any UTF-16 content, lone surrogates and quotes included. */
const anyText = fc.string({ unit: 'binary', maxLength: 40 });
const metadataArb = fc.option(fc.dictionary(anyText.filter((k) => k !== '__proto__'), anyText, { maxKeys: 5 }), { nil: undefined });

describe('hand-written serialisations match the generic ones', () => {
  it('fingerprintOf is SHA-256 of canonicalJson({ ...req, currency, provider }), the default provider left out', () => {
    fc.assert(
      fc.property(
        fc.record({ paymentKey: anyText, orderId: anyText, amount: fc.maxSafeNat(), currency: fc.option(fc.constant('KRW'), { nil: undefined }), metadata: metadataArb }, { requiredKeys: ['paymentKey', 'orderId', 'amount'] }),
        fc.constantFrom('default', 'pg-b', 'toss'),
        (req, provider) => {
          const canonical = provider === 'default' ? { ...req, currency: 'KRW' } : { ...req, currency: 'KRW', provider };
          expect(fingerprintOf({ ...req, provider } as never, 'KRW', provider)).toBe(sha256Hex(canonicalJson(canonical)));
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('bodyTemplate(p) with an eta is JSON.stringify(renderPayment(newRecord(p), eta))', () => {
    fc.assert(
      fc.property(
        fc.record({
          id: anyText, merchantId: anyText, provider: anyText, paymentKey: anyText, orderId: anyText, amount: fc.maxSafeNat(), currency: anyText,
          metadata: metadataArb.map((m) => m ?? null), requestId: fc.option(anyText, { nil: null }), createdAt: fc.integer({ min: 0, max: 8_000_000_000_000 }),
        }),
        (p) => {
          const t = bodyTemplate(p, { windowMs: 1_000, limit: 500 });
          const eta = '2026-01-01T00:00:00.000Z';
          expect(t.head + eta + t.tail).toBe(JSON.stringify(renderPayment(newRecord(p), eta)));
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

function baseRecord(): PaymentRecord {
  return {
    id: 'pay_1', merchantId: 'm', paymentKey: 'pk', orderId: 'order-1', amount: 100, currency: 'KRW', metadata: null,
    status: 'QUEUED', phase: 'queued', createdAt: 0, updatedAt: 0, finalizedAt: null, attempts: 0, pgCalls: 0,
    answeredInquiries: 0, reconfirms: 0, transactionKey: null, approvedAt: null, failure: null, requestId: null, inDoubtAt: null, confirmsSettled: 0, cancels: 0, confirmSentAt: null, fqSeq: null, provider: 'default', refunds: [], canceledAmount: 0, reservedAmount: 0,
  };
}
