/**
 * The demo's secrets. They are published (the README, docker-compose's `.env.demo`, `npm start`),
 * so a process that runs with any of them is open to anyone who read the README. The API and the
 * worker refuse to start with one in force unless SLUICE_DEMO says this is a demo: fail closed,
 * whatever NODE_ENV says or does not say.
 */
import { hashApiKey } from './api-keys.ts';

/** The demo's published values. `npm start` and `.env.demo` use these and set SLUICE_DEMO=1. */
export const DEMO_SECRETS = {
  /** The demo merchant's API key. */
  apiKey: 'sk_demo_sluice_0123456789abcdef',
  pepper: 'demo-pepper-change-me-in-production',
  adminPassword: 'sluice-admin',
  /** The PG simulator's secret key. */
  pgSecretKey: 'test_sk_sluice_demo',
  /** The key webhook endpoint secrets are sealed with. */
  webhookKey: 'ZGVtby13ZWJob29rLWtleS1jaGFuZ2UtbWUtMDAwMDA=',
} as const;

/** What {@link demoSecretsInUse} looks at. */
export interface SecretSettings {
  API_KEY_PEPPER?: string | undefined;
  MERCHANTS: readonly { id: string; keyHash: string }[];
  ADMIN_PASSWORD?: string | undefined;
  PG_SECRET_KEY?: string | undefined;
  WEBHOOK_ENCRYPTION_KEY?: string | undefined;
}

/** The variables that hold a demo secret (the demo merchant's key counts under MERCHANTS). */
export function demoSecretsInUse(c: SecretSettings): string[] {
  const found: string[] = [];
  if (c.API_KEY_PEPPER === DEMO_SECRETS.pepper) found.push('API_KEY_PEPPER');
  if (c.API_KEY_PEPPER !== undefined) {
    const demoHash = hashApiKey(c.API_KEY_PEPPER, DEMO_SECRETS.apiKey);
    if (c.MERCHANTS.some((m) => m.keyHash === demoHash)) found.push('MERCHANTS (the demo API key)');
  }
  if (c.ADMIN_PASSWORD === DEMO_SECRETS.adminPassword) found.push('ADMIN_PASSWORD');
  if (c.PG_SECRET_KEY === DEMO_SECRETS.pgSecretKey) found.push('PG_SECRET_KEY');
  if (c.WEBHOOK_ENCRYPTION_KEY === DEMO_SECRETS.webhookKey) found.push('WEBHOOK_ENCRYPTION_KEY');
  return found;
}

/** Throws one line naming the demo secrets in force, unless SLUICE_DEMO is set. */
export function refuseDemoSecrets(c: SecretSettings & { SLUICE_DEMO: boolean }): void {
  if (c.SLUICE_DEMO) return;
  const found = demoSecretsInUse(c);
  if (found.length === 0) return;
  throw new Error(
    `Refusing to start: ${found.join(', ')} hold${found.length === 1 ? 's' : ''} the demo's published secret${found.length === 1 ? '' : 's'}. Set your own, or SLUICE_DEMO=1 to run a demo.`,
  );
}
