/** The environment schema: defaults, and the settings that cannot work together. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { admitLead, describeRedisTarget, hashTagOf, parseSentinels, redisTargetOf, admitTickMs, connectionsPerProcess, EnvSchema, loadConfig, merchantWeight, providerKeyPrefix, providersOf, reservedConnectionsPerProcess, testConfig } from './index.ts';

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

  it('admits a lead of ADMIT_LEAD_MS at the PG rate, at least one payment, the processes taking turns', () => {
    expect(admitTickMs(testConfig())).toBe(20);
    expect(admitTickMs(testConfig({ WORKER_PROCESSES: 3 }))).toBe(60);
    expect(admitTickMs(testConfig({ WORKER_PROCESSES: 4, ADMIT_LEAD_MS: 800 }))).toBe(80);
    // Never so rare that a process left alone lets the lead run dry: four times per lead.
    expect(admitTickMs(testConfig({ WORKER_PROCESSES: 50 }))).toBe(75);
    expect(admitLead(testConfig())).toBe(150);
    expect(admitLead(testConfig({ PG_RATE_LIMIT: 2, ADMIT_LEAD_MS: 20 }))).toBe(1);
  });

  it('is one provider from the PG_* variables without PROVIDERS, named PG_PROVIDER, with its keys where they always were', () => {
    const c = testConfig({ PG_BASE_URL: 'http://pg.example', PG_RATE_LIMIT: 300 });
    expect(providersOf(c)).toEqual([{ id: 'default', weight: 1, config: c }]);
    expect(providersOf(testConfig({ PG_PROVIDER: 'toss' }))[0]!.id).toBe('toss');
    expect(providerKeyPrefix('sluice', 'default')).toBe('sluice');
    expect(providerKeyPrefix('sluice', 'toss')).toBe('sluice:p:toss');
  });

  it('reads PROVIDERS (or a file), each entry over the PG_* defaults', () => {
    const list = [
      { id: 'pga', baseUrl: 'http://a.example', secretKey: 'sk_a', rateLimit: 500, weight: 3 },
      { id: 'pgb', baseUrl: 'https://b.example/api', rateLimit: 200, connections: 50, headersTimeoutMs: 4_000 },
    ];
    const c = testConfig({ PROVIDERS: JSON.stringify(list), PG_RATE_WINDOW_MS: 1_000, PG_SECRET_KEY: 'sk_default' });
    const [a, b] = providersOf(c);
    expect(a).toMatchObject({ id: 'pga', weight: 3, config: { PG_PROVIDER: 'pga', PG_BASE_URL: 'http://a.example', PG_SECRET_KEY: 'sk_a', PG_RATE_LIMIT: 500 } });
    expect(b).toMatchObject({ id: 'pgb', weight: 1, config: { PG_PROVIDER: 'pgb', PG_SECRET_KEY: 'sk_default', PG_RATE_LIMIT: 200, PG_CONNECTIONS_TOTAL: 50, PG_HEADERS_TIMEOUT_MS: 4_000, PG_RATE_WINDOW_MS: 1_000 } });
    const dir = mkdtempSync(join(tmpdir(), 'sluice-providers-'));
    const file = join(dir, 'providers.json');
    writeFileSync(file, JSON.stringify(list));
    expect(providersOf(testConfig({ PROVIDERS_FILE: file })).map((p) => p.id)).toEqual(['pga', 'pgb']);
  });

  it('refuses a bad PROVIDERS with a message naming the entry and the field', () => {
    const bad = (v: unknown) => () => testConfig({ PROVIDERS: typeof v === 'string' ? v : JSON.stringify(v) });
    expect(bad('[{"id":')).toThrow(/PROVIDERS: .*not JSON/);
    expect(bad([])).toThrow(/PROVIDERS/);
    expect(bad([{ id: 'a' }, { id: 'a' }])).toThrow(/PROVIDERS\[1\.id\]: "a" is listed twice/);
    expect(bad([{ id: 'A B' }])).toThrow(/PROVIDERS\[0\.id\]/);
    expect(bad([{ id: 'a', baseUrl: 'ftp://x' }])).toThrow(/PROVIDERS\[0\.baseUrl\]/);
    expect(bad([{ id: 'a', rateLimit: 0 }])).toThrow(/PROVIDERS\[0\.rateLimit\]/);
    expect(bad([{ id: 'a', secret: 'x' }])).toThrow(/PROVIDERS\[0\]: Unrecognized key/);
    expect(bad([{ id: 'a', connections: 3 }])).toThrow(/provider "a": WORKER_PROCESSES \(1\) must not exceed its connections/);
    expect(() => testConfig({ PROVIDERS_FILE: '/nonexistent/providers.json' })).toThrow(/PROVIDERS_FILE.*cannot be read/);
  });

  it('names every bad variable at once', () => {
    expect(() => loadConfig({ PORT: 'x', PG_RATE_LIMIT: '0' })).toThrow(/PORT[\s\S]*PG_RATE_LIMIT|PG_RATE_LIMIT[\s\S]*PORT/);
  });

  it('keeps its variable list readable for the README check', () => {
    expect(Object.keys(EnvSchema.shape)).toContain('GATE_MARGIN_MIN_MS');
  });
});

describe('redisTargetOf', () => {
  it('is REDIS_URL without sentinels, and the sentinel group with them', () => {
    expect(redisTargetOf(loadConfig({ REDIS_URL: 'rediss://u:p@redis.example:6380/2' }))).toEqual({ kind: 'url', url: 'rediss://u:p@redis.example:6380/2' });
    const t = redisTargetOf(loadConfig({
      REDIS_SENTINELS: 's1:26379, [::1]:26380,10.0.0.3:5000', REDIS_SENTINEL_NAME: 'sluice', REDIS_USERNAME: 'app', REDIS_PASSWORD: 'pw', REDIS_SENTINEL_PASSWORD: 'spw', REDIS_TLS: 'true',
    }));
    expect(t).toEqual({
      kind: 'sentinel', name: 'sluice', username: 'app', password: 'pw', sentinelPassword: 'spw', tls: true,
      sentinels: [{ host: 's1', port: 26379 }, { host: '::1', port: 26380 }, { host: '10.0.0.3', port: 5000 }],
    });
    // Logged and shown without the password.
    expect(describeRedisTarget(t)).toBe('sentinel sluice via s1:26379,::1:26380,10.0.0.3:5000 (TLS)');
    expect(describeRedisTarget({ kind: 'url', url: 'redis://app:secret@h:6379' })).not.toContain('secret');
  });

  it('refuses a sentinel list it cannot read, naming the entry', () => {
    expect(() => loadConfig({ REDIS_SENTINELS: 's1:26379,s2' })).toThrow(/REDIS_SENTINELS: "s2" is not host:port/);
    expect(() => loadConfig({ REDIS_SENTINELS: 's1:70000' })).toThrow(/REDIS_SENTINELS/);
    expect(() => parseSentinels(' , ')).toThrow(/no address given/);
  });

  it('takes REDIS_SHARDS from 1 (the default: every key where it has always been) to 256', () => {
    expect(loadConfig({}).REDIS_SHARDS).toBe(1);
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'r1:7000', REDIS_PREFIX: '{sluice}', REDIS_SHARDS: '16', REDIS_WAIT_REPLICAS: '1' }).REDIS_SHARDS).toBe(16);
    expect(() => loadConfig({ REDIS_SHARDS: '0' })).toThrow(/REDIS_SHARDS/);
    expect(() => loadConfig({ REDIS_SHARDS: '257' })).toThrow(/REDIS_SHARDS: at most 256/);
  });

  it('is the cluster with REDIS_CLUSTER_NODES, which asks a hash-tagged prefix', () => {
    const t = redisTargetOf(loadConfig({ REDIS_CLUSTER_NODES: 'r1:7000,r2:7001', REDIS_PREFIX: '{sluice}', REDIS_PASSWORD: 'pw', REDIS_TLS: 'true' }));
    expect(t).toEqual({ kind: 'cluster', nodes: [{ host: 'r1', port: 7000 }, { host: 'r2', port: 7001 }], password: 'pw', tls: true });
    expect(describeRedisTarget(t)).toBe('cluster via r1:7000,r2:7001 (TLS)');
    // Without a hash tag the scripts' keys would spread over slots: refused at boot, with the fix.
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'r1:7000' })).toThrow(/REDIS_PREFIX: on Redis Cluster it must hold a hash tag, as in \{sluice\}/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'r1:7000', REDIS_PREFIX: '{}x' })).toThrow(/REDIS_PREFIX/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'r1:7000', REDIS_PREFIX: '{s}', REDIS_SENTINELS: 's1:26379' })).toThrow(/not both/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'r1', REDIS_PREFIX: '{s}' })).toThrow(/REDIS_CLUSTER_NODES: "r1" is not host:port/);
    expect(hashTagOf('{sluice}:pay:1')).toBe('sluice');
    expect(hashTagOf('a{b}c{d}')).toBe('b');
    expect(hashTagOf('sluice')).toBeNull();
  });
});
