/**
 * The API and the worker refuse to start while a demo secret is in force, unless SLUICE_DEMO says
 * this is a demo: exit 1 with one line that names the variables. Fail closed: NODE_ENV, set or
 * not, changes nothing.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_SECRETS, hashApiKey } from '@sluice/config';
import { ROOT } from '@sluice/test-support';

const DEMO_ENV = {
  REDIS_URL: 'redis://127.0.0.1:1',
  PG_BASE_URL: 'http://127.0.0.1:1',
  PG_SECRET_KEY: DEMO_SECRETS.pgSecretKey,
  API_KEY_PEPPER: DEMO_SECRETS.pepper,
  MERCHANTS: `demo:${hashApiKey(DEMO_SECRETS.pepper, DEMO_SECRETS.apiKey)}`,
  ADMIN_USER: 'admin',
  ADMIN_PASSWORD: DEMO_SECRETS.adminPassword,
};

/** Runs an entry point to its exit (it must exit on its own) with only `env` of Sluice's variables. */
function run(entry: string, env: Record<string, string>): { status: number | null; stderr: string } {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SLUICE_|NODE_ENV$|REDIS_|PG_|API_KEY|MERCHANTS|ADMIN_)/.test(k)));
  const r = spawnSync(process.execPath, ['--import', 'tsx', resolve(ROOT, entry)], { cwd: ROOT, env: { ...base, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stderr: r.stderr };
}

describe('demo secrets', () => {
  it.each(['apps/api/src/main.ts', 'apps/worker/src/main.ts'])('%s exits 1 with one line naming them, whatever NODE_ENV says', (entry) => {
    for (const nodeEnv of [undefined, 'development', 'production']) {
      const r = run(entry, { ...DEMO_ENV, ...(nodeEnv ? { NODE_ENV: nodeEnv } : {}) });
      expect(r.status, `NODE_ENV=${nodeEnv}: ${r.stderr}`).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^Refusing to start: .*PG_SECRET_KEY.* SLUICE_DEMO=1/);
    }
    // One demo secret is enough.
    const own = { ...DEMO_ENV, API_KEY_PEPPER: 'own-pepper-0123456789abcdef', MERCHANTS: `shop:${hashApiKey('own-pepper-0123456789abcdef', 'k')}`, PG_SECRET_KEY: 'own-secret' };
    const r = run(entry, own);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^Refusing to start: ADMIN_PASSWORD holds the demo's published secret\./);
  }, 60_000);
});
