/** The environment schema: defaults, and the settings that cannot work together. */
import { describe, expect, it } from 'vitest';
import { connectionsPerProcess, EnvSchema, loadConfig, reservedConnectionsPerProcess, testConfig } from './index.ts';

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

  it('names every bad variable at once', () => {
    expect(() => loadConfig({ PORT: 'x', PG_RATE_LIMIT: '0' })).toThrow(/PORT[\s\S]*PG_RATE_LIMIT|PG_RATE_LIMIT[\s\S]*PORT/);
  });

  it('keeps its variable list readable for the README check', () => {
    expect(Object.keys(EnvSchema.shape)).toContain('GATE_MARGIN_MIN_MS');
  });
});
