/**
 * docker-compose.yml cannot run here (no Docker engine), so this test reads it and holds it to
 * what matters: durable Redis flags, the services, two worker replicas, and every variable each
 * app requires set so that its config parses.
 */
import { DEMO_SECRETS, demoSecretsInUse, hashApiKey, loadConfig, redisTargetOf, refuseDemoSecrets, required, WORKER_NODE_FLAGS } from '@sluice/config';
import { DEFAULT_SECRET_KEY } from '@sluice/pg-simulator';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { freePort, ROOT, startRedisServer } from '@sluice/test-support';

interface Service {
  command?: string[];
  environment?: Record<string, string>;
  deploy?: { replicas?: number };
  volumes?: string[];
  ports?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}
const TEXT = readFileSync(resolve(ROOT, 'docker-compose.yml'), 'utf8');

/** An env file as compose reads it: KEY=VALUE lines, # comments. */
function envFile(name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(resolve(ROOT, name), 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** Compose's interpolation of `${VAR}`, `${VAR:-default}` and `${VAR:?error}` (unset or empty). */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{([A-Z_][A-Z0-9_]*)(?::([-?])([^}]*))?\}/g, (_all, name: string, op?: string, arg?: string) => {
    const v = env[name];
    if (v !== undefined && v !== '') return v;
    if (op === '?') throw new Error(`required variable ${name} is missing a value: ${arg}`);
    return op === '-' ? arg! : '';
  });
}

const composeWith = (env: Record<string, string>): Compose => parse(interpolate(TEXT, env), { merge: true }) as Compose;
const demo = envFile('.env.demo');
const compose = composeWith(demo);
const OWN = { POSTGRES_PASSWORD: 'own-books-password', PG_SECRET_KEY: 'sk_live_own_0123', API_KEY_PEPPER: 'own-pepper-0123456789abcdef', MERCHANTS: `shop:${hashApiKey('own-pepper-0123456789abcdef', 'sk_own_key')}`, ADMIN_PASSWORD: 'own-admin-password' };

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

  it('has the API, two worker replicas and the simulator, each port on the host’s loopback only', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['api', 'drainer', 'pg-simulator', 'postgres', 'redis', 'worker']);
    expect(compose.services.worker!.deploy?.replicas).toBe(2);
    expect(compose.services.worker!.environment!.WORKER_PROCESSES).toBe('2');
    const published = Object.values(compose.services).flatMap((svc) => svc.ports ?? []);
    expect(published.length).toBeGreaterThan(0);
    for (const p of published) expect(p).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  });

  it('starts the worker with the Node flags every other way of starting it uses', () => {
    expect(compose.services.worker!.command).toEqual(['node', ...WORKER_NODE_FLAGS, '--import', 'tsx', 'apps/worker/src/main.ts']);
  });

  it('holds no secret itself: without an env file it does not start, naming what is missing', () => {
    expect(TEXT).not.toContain(DEMO_SECRETS.pepper);
    expect(TEXT).not.toContain(DEMO_SECRETS.adminPassword);
    expect(TEXT).not.toContain(DEMO_SECRETS.pgSecretKey);
    expect(() => composeWith({})).toThrow(/POSTGRES_PASSWORD|PG_SECRET_KEY|API_KEY_PEPPER|MERCHANTS|ADMIN_PASSWORD/);
    // .env.example as shipped, values still blank, does not start either.
    expect(() => composeWith(envFile('.env.example'))).toThrow(/required variable/);
  });

  it('with the demo env file: configs parse, and the processes accept the demo secrets only because it says SLUICE_DEMO=1', () => {
    const api = loadConfig(compose.services.api!.environment!);
    expect(required(api, 'API_KEY_PEPPER')).toBeTruthy();
    expect(api.HOST).toBe('0.0.0.0');
    expect(api.REDIS_URL).toBe('redis://redis:6379');
    // The drainer and the API reach the books service with the password the postgres service is given.
    const drainer = loadConfig(compose.services.drainer!.environment!);
    expect(required(drainer, 'DATABASE_URL')).toBe(`postgres://sluice:${demo.POSTGRES_PASSWORD}@postgres:5432/sluice`);
    expect(compose.services.postgres!.environment!.POSTGRES_PASSWORD).toBe(demo.POSTGRES_PASSWORD);
    expect(api.DATABASE_URL).toBe(drainer.DATABASE_URL);
    const worker = loadConfig(compose.services.worker!.environment!);
    expect(required(worker, 'PG_BASE_URL')).toBe('http://pg-simulator:4010');
    expect(required(worker, 'PG_SECRET_KEY')).toBe(compose.services['pg-simulator']!.environment!.SIM_SECRET_KEY);
    expect(() => refuseDemoSecrets(api)).not.toThrow();
    expect(() => refuseDemoSecrets(worker)).not.toThrow();
    const notDemo = composeWith({ ...demo, SLUICE_DEMO: '0' });
    expect(() => refuseDemoSecrets(loadConfig(notDemo.services.api!.environment!))).toThrow(
      /^Refusing to start: API_KEY_PEPPER, MERCHANTS \(the demo API key\), ADMIN_PASSWORD, PG_SECRET_KEY, WEBHOOK_ENCRYPTION_KEY hold the demo's published secrets/,
    );
  });

  it('with secrets of one’s own it starts without SLUICE_DEMO', () => {
    const own = composeWith(OWN);
    for (const svc of ['api', 'worker']) {
      const config = loadConfig(own.services[svc]!.environment!);
      expect(config.SLUICE_DEMO).toBe(false);
      expect(demoSecretsInUse(config)).toEqual([]);
    }
  });

  it('documents a demo key that really matches the configured hash, and the demo values are the code’s', () => {
    const [, hash] = demo.MERCHANTS!.split(':');
    expect(hashApiKey(demo.API_KEY_PEPPER!, DEMO_SECRETS.apiKey)).toBe(hash);
    expect(readFileSync(resolve(ROOT, '.env.demo'), 'utf8')).toContain(DEMO_SECRETS.apiKey);
    expect([demo.API_KEY_PEPPER, demo.ADMIN_PASSWORD, demo.PG_SECRET_KEY]).toEqual([DEMO_SECRETS.pepper, DEMO_SECRETS.adminPassword, DEMO_SECRETS.pgSecretKey]);
    expect(DEFAULT_SECRET_KEY).toBe(DEMO_SECRETS.pgSecretKey);
  });
});

describe('docker-compose.sentinel.yml', () => {
  const override = parse(readFileSync(resolve(ROOT, 'docker-compose.sentinel.yml'), 'utf8'), { merge: true }) as Compose & {
    services: Record<string, Service & { entrypoint?: string[] }>;
  };
  /** What `docker compose -f docker-compose.yml -f docker-compose.sentinel.yml` runs: maps merged, commands replaced. */
  const merged = (name: string): Service => {
    const base = compose.services[name] ?? {};
    const over = override.services[name] ?? {};
    return { ...base, ...over, environment: { ...base.environment, ...over.environment } };
  };

  it('points every app at the sentinels, waits for a replica before a 202, and the names agree', () => {
    const sentinels = Object.keys(override.services).filter((s) => s.startsWith('redis-sentinel-'));
    expect(sentinels).toHaveLength(3);
    for (const app of ['api', 'worker', 'drainer']) {
      const config = loadConfig(merged(app).environment!);
      const target = redisTargetOf(config);
      expect(target).toMatchObject({ kind: 'sentinel', name: 'sluice', sentinels: sentinels.map((host) => ({ host, port: 26379 })) });
      expect(config.REDIS_WAIT_REPLICAS).toBe(1);
    }
    // The sentinels watch that name, on the primary service, with a quorum of 2.
    expect(override.services['redis-sentinel-1']!.command!.join('\n')).toContain('sentinel monitor sluice redis 6379 2');
  });

  it('keeps the base file\'s durability on both data nodes, and refuses writes without a replica', () => {
    for (const node of ['redis', 'redis-replica']) {
      const cmd = merged(node).command!.join(' ');
      for (const flag of ['--appendonly yes', '--appendfsync always', '--maxmemory-policy noeviction', '--min-replicas-to-write 1', '--min-replicas-max-lag 10']) expect(cmd).toContain(flag);
    }
    expect(merged('redis-replica').command!.join(' ')).toContain('--replicaof redis 6379');
    expect(override.volumes).toHaveProperty('redis-replica-data');
  });

  it('starts a sentinel with its script as written (run here with a local primary in place of the service)', async () => {
    const primary = await startRedisServer();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'sluice-compose-sentinel-'));
    const script = override.services['redis-sentinel-1']!.command![0]!
      .replaceAll('/data', dir)
      .replace('port 26379', `port ${port}`)
      .replace('sluice redis 6379 2', `sluice 127.0.0.1 ${primary.port} 1`);
    const child = spawn('sh', ['-c', script], { stdio: 'ignore' });
    try {
      const s = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => 100 });
      s.on('error', () => undefined);
      await expect.poll(async () => (await s.call('SENTINEL', 'get-master-addr-by-name', 'sluice').catch(() => null)) as string[] | null, { timeout: 10_000 }).toEqual(['127.0.0.1', String(primary.port)]);
      s.disconnect();
    } finally {
      child.kill('SIGKILL');
      await primary.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
