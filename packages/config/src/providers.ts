/**
 * Several PGs (이중화): the providers a deployment holds accounts at, each with its own base URL,
 * secret, limits and timeouts, and a routing weight for new checkouts.
 *
 * Without PROVIDERS (or PROVIDERS_FILE) the PG_* variables are the one provider, named
 * PG_PROVIDER ("default"): nothing changes for a user with one PG. With them, each entry is a
 * provider, and the PG_* variables are the defaults for what an entry leaves out.
 *
 * Each provider is handed around as a whole `Config` whose PG_* fields are its own
 * ({@link providersOf}): the gate, the PG client, the breaker, the timeouts and reconciliation
 * are built from a Config, so each provider gets its own of every one of them without a second
 * code path.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** A provider id: lower-case letters, digits, `_` and `-`, at most 32; it goes into Redis keys and queue names. */
export const PROVIDER_ID = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** The provider id of the PG_* variables when PROVIDERS is not set. */
export const DEFAULT_PROVIDER = 'default';

const baseUrl = z
  .url({ protocol: /^https?$/ })
  .refine((u) => !/[?#]/.test(u) && !/^[a-z]+:\/\/[^/]*@/i.test(u), 'a base URL without credentials, query or fragment (a path is fine: http://pg.example/api)');

const positive = () => z.number().int().min(1);

/** One entry of PROVIDERS: only `id` is required; the rest default to the PG_* variables. */
export const ProviderEntrySchema = z.strictObject({
  id: z.string().regex(PROVIDER_ID, 'lower-case letters, digits, _ and -, at most 32, starting with a letter or digit'),
  baseUrl: baseUrl.optional(),
  secretKey: z.string().min(1).optional(),
  /** Requests per window at this PG. */
  rateLimit: positive().optional(),
  rateWindowMs: positive().optional(),
  /** This PG's cap on concurrent connections, shared by every worker process. */
  connections: positive().optional(),
  keepAliveTimeoutMs: positive().optional(),
  connectTimeoutMs: positive().optional(),
  headersTimeoutMs: positive().optional(),
  headersTimeoutMinMs: positive().optional(),
  bodyTimeoutMs: positive().optional(),
  /** Share of new checkouts GET /v1/providers recommends it for, among those available (0: never recommended). */
  weight: z.number().int().min(0).max(1_000).default(1),
});

/** One entry of PROVIDERS, parsed. */
export type ProviderEntry = z.infer<typeof ProviderEntrySchema>;

/** The list: at least one, ids unique. */
export const ProviderListSchema = z
  .array(ProviderEntrySchema)
  .min(1)
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((p, i) => {
      if (seen.has(p.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `"${p.id}" is listed twice` });
      seen.add(p.id);
    });
  });

/**
 * PROVIDERS (a JSON array) or PROVIDERS_FILE (a file holding one), parsed; null when neither is
 * set. Throws a readable message naming the entry and field at fault.
 */
export function readProviderList(env: { PROVIDERS?: string; PROVIDERS_FILE?: string }): ProviderEntry[] | null {
  if (env.PROVIDERS && env.PROVIDERS_FILE) throw new Error('set PROVIDERS or PROVIDERS_FILE, not both');
  let text: string;
  let from: string;
  if (env.PROVIDERS) {
    text = env.PROVIDERS;
    from = 'PROVIDERS';
  } else if (env.PROVIDERS_FILE) {
    from = `PROVIDERS_FILE (${env.PROVIDERS_FILE})`;
    try {
      text = readFileSync(env.PROVIDERS_FILE, 'utf8');
    } catch (err) {
      throw new Error(`${from}: cannot be read: ${err instanceof Error ? err.message : String(err)}`);
    }
  } else {
    return null;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${from}: not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = ProviderListSchema.safeParse(json);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${from}[${i.path.join('.')}]: ${i.message}`);
    throw new Error(lines.join('\n  '));
  }
  return parsed.data;
}
