/**
 * docker-compose.yml cannot run here (no Docker engine), so this test reads it and holds it to
 * what matters: durable Redis flags, the services, two worker replicas, and every variable each
 * app requires set so that its config parses.
 */
import { loadConfig, required } from '@sluice/config';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { hashApiKey } from '@sluice/config';
import { ROOT } from '@sluice/test-support';

interface Service {
  command?: string[];
  environment?: Record<string, string>;
  deploy?: { replicas?: number };
  volumes?: string[];
  ports?: string[];
}
const compose = parse(readFileSync(resolve(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};

describe('docker-compose.yml', () => {
  it('runs Redis 7.4+ with AOF, fsync always, noeviction and a named volume', () => {
    const redis = compose.services.redis!;
    expect((redis as { image?: string }).image).toMatch(/^redis:7\.(4|[5-9])/);
    const cmd = redis.command!.join(' ');
    expect(cmd).toContain('--appendonly yes');
    expect(cmd).toContain('--appendfsync always');
    expect(cmd).toContain('--maxmemory-policy noeviction');
    expect(redis.volumes).toContain('redis-data:/data');
    expect(compose.volumes).toHaveProperty('redis-data');
  });

  it('has the API, two worker replicas and the simulator', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['api', 'pg-simulator', 'redis', 'worker']);
    expect(compose.services.worker!.deploy?.replicas).toBe(2);
    expect(compose.services.worker!.environment!.WORKER_PROCESSES).toBe('2');
    // The simulator's admin routes have no auth: published on the host's loopback only.
    expect(compose.services['pg-simulator']!.ports).toEqual(['127.0.0.1:4010:4010']);
  });

  it('sets every variable the API and the worker require, and their configs parse', () => {
    const api = loadConfig(compose.services.api!.environment!);
    expect(required(api, 'API_KEY_PEPPER')).toBeTruthy();
    expect(api.MERCHANTS.length).toBeGreaterThan(0);
    expect(api.HOST).toBe('0.0.0.0');
    expect(api.REDIS_URL).toBe('redis://redis:6379');
    const worker = loadConfig(compose.services.worker!.environment!);
    expect(required(worker, 'PG_BASE_URL')).toBe('http://pg-simulator:4010');
    expect(required(worker, 'PG_SECRET_KEY')).toBe(compose.services['pg-simulator']!.environment!.SIM_SECRET_KEY);
  });

  it('documents a demo key that really matches the configured hash', () => {
    const env = compose.services.api!.environment!;
    const [, hash] = env.MERCHANTS!.split(':');
    expect(hashApiKey(env.API_KEY_PEPPER!, 'sk_demo_sluice_0123456789abcdef')).toBe(hash);
  });
});
