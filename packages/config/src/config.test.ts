/** The environment schema: defaults, and the settings that cannot work together. */
import { describe, expect, it } from 'vitest';
import { admitLead, connectionsPerProcess, EnvSchema, loadConfig, merchantWeight, reservedConnectionsPerProcess, testConfig } from './index.ts';

describe('loadConfig', () => {
  it('gives each worker process a share of the PG connections that adds up to no more than the cap', () => {
    for (const processes of [1, 2, 3, 7, 196]) {
      const c = testConfig({ WORKER_PROCESSES: processes });
      // The headroom stays unused: a place closed and re-opened in the same instant fits in it.
      expect(connectionsPerProcess(c) * processes).toBeLessThanOrEqual(c.PG_CONNECTIONS_TOTAL - c.PG_CONNECTIONS_HEADROOM);
      expect(connectionsPerProcess(c)).toBeGreaterThanOrEqual(1);
      // The reserve for inquiries and cancels is part of the share, never all of it.
      const reserved = reservedConnectionsPerProcess(c);
      expect(reserved).toBeLessThan(connectionsPerProcess(c));
      if (connectionsPerProcess(c) >= 2) expect(reserved).toBeGreaterThanOrEqual(1);
    }
    expect(connectionsPerProcess(testConfig())).toBe(196);
    expect(reservedConnectionsPerProcess(testConfig())).toBe(20);
    expect(reservedConnectionsPerProcess(testConfig({ WORKER_PROCESSES: 4 }))).toBe(5);
  });

  it('refuses settings that parse one by one but cannot work together, naming each', () => {
    expect(() => testConfig({ WORKER_PROCESSES: 197 })).toThrow(/WORKER_PROCESSES: must not exceed PG_CONNECTIONS_TOTAL − PG_CONNECTIONS_HEADROOM \(196\)/);
    expect(() => testConfig({ GATE_MARGIN_MIN_MS: 80, GATE_MARGIN_MAX_MS: 60 })).toThrow(/GATE_MARGIN_MIN_MS: must not exceed GATE_MARGIN_MAX_MS/);
    expect(() => testConfig({ WORKER_PROCESSES: 2, WORKER_FORKS: 3 })).toThrow(/WORKER_FORKS: must not exceed WORKER_PROCESSES/);
    expect(testConfig({ WORKER_PROCESSES: 4, WORKER_FORKS: 2 }).WORKER_FORKS).toBe(2);
  });

  it('takes a PG base URL with a path, and refuses one that is not plain http(s)', () => {
    expect(testConfig({ PG_BASE_URL: 'https://pg.example:8443/api/' }).PG_BASE_URL).toBe('https://pg.example:8443/api/');
    // Credentials in it would be dropped (undici takes the origin): the secret goes in PG_SECRET_KEY.
    for (const bad of ['ftp://pg.example', 'http://pg.example/api?x=1', 'http://pg.example/#a', 'pg.example', 'http://user:pw@pg.example/']) {
      expect(() => testConfig({ PG_BASE_URL: bad }), bad).toThrow(/PG_BASE_URL/);
    }
  });

  it("reads merchants' weights, 1 for those not listed, and refuses a weight that is not an integer 1–1000", () => {
    const c = testConfig({ MERCHANT_WEIGHTS: 'shop-a:3, shop_b:1000' });
    expect([merchantWeight(c, 'shop-a'), merchantWeight(c, 'shop_b'), merchantWeight(c, 'other'), merchantWeight(c, 'toString')]).toEqual([3, 1_000, 1, 1]);
    for (const bad of ['shop-a:0', 'shop-a:1001', 'shop-a:1.5', 'shop-a', 'shop a:2', 'shop-a:-1']) {
      expect(() => testConfig({ MERCHANT_WEIGHTS: bad }), bad).toThrow(/MERCHANT_WEIGHTS: bad entry/);
    }
  });

  it('admits a lead of ADMIT_LEAD_MS at the PG rate, at least one payment', () => {
    expect(admitLead(testConfig())).toBe(200);
    expect(admitLead(testConfig({ PG_RATE_LIMIT: 2, ADMIT_LEAD_MS: 20 }))).toBe(1);
  });

  it('names every bad variable at once', () => {
    expect(() => loadConfig({ PORT: 'x', PG_RATE_LIMIT: '0' })).toThrow(/PORT[\s\S]*PG_RATE_LIMIT|PG_RATE_LIMIT[\s\S]*PORT/);
  });

  it('keeps its variable list readable for the README check', () => {
    expect(Object.keys(EnvSchema.shape)).toContain('GATE_MARGIN_MIN_MS');
  });
});
