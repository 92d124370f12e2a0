/**
 * `npm start`: runs the whole gateway on this machine: two PG simulators (two providers with
 * different limits, 500/s and 200/s, unless PG_BASE_URL or PROVIDERS names the PGs), the API, the
 * worker pool and the drainer, against the Redis at REDIS_URL (default redis://127.0.0.1:6379) and the books
 * at DATABASE_URL. If nothing answers at REDIS_URL and `redis-server` is installed, it starts a
 * private one (data under .data/redis, AOF on); without DATABASE_URL it uses a local PostgreSQL
 * that answers, or else an embedded one (PGlite, data under .data/pglite). Prints the URLs, the
 * demo merchant's key and a curl to try.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { redisAnswers } from '@sluice/store';
import { DEMO_SECRETS, hashApiKey, WORKER_NODE_FLAGS } from '@sluice/config';
import { ensureDatabase } from '@sluice/books';

const root = resolve(import.meta.dirname, '..');
const env = { ...process.env };
const REDIS_URL = (env.REDIS_URL ??= 'redis://127.0.0.1:6379');
const SIM_PORT = Number(env.SIM_PORT ?? 4010);
const PORT = Number(env.PORT ?? 3000);

// The demo: one merchant, one simulator account, admin pages on, with the demo's published
// secrets (which the API and the worker accept only with SLUICE_DEMO). Override any by env.
const DEMO_KEY = DEMO_SECRETS.apiKey;
env.SLUICE_DEMO ??= '1';
env.API_KEY_PEPPER ??= DEMO_SECRETS.pepper;
env.MERCHANTS ??= `demo:${hashApiKey(env.API_KEY_PEPPER, DEMO_KEY)}`;
env.ADMIN_USER ??= 'admin';
env.ADMIN_PASSWORD ??= DEMO_SECRETS.adminPassword;
env.SIM_SECRET_KEY ??= DEMO_SECRETS.pgSecretKey;
env.PG_SECRET_KEY ??= env.SIM_SECRET_KEY;
// Webhooks on: endpoint secrets sealed with the demo's key, and receivers on this machine allowed.
env.WEBHOOK_ENCRYPTION_KEY ??= DEMO_SECRETS.webhookKey;
env.WEBHOOK_ALLOW_PRIVATE ??= 'true';
// Two simulated PGs (이중화): pg-a at 500/s and pg-b at 200/s, each with an admin port that stays
// up while its PG refuses or hangs on command. A user who names a PG (PG_BASE_URL, PROVIDERS) gets
// exactly that, and the simulators run beside it anyway.
const SIMS = [
  { id: 'pg-a', port: SIM_PORT, adminPort: SIM_PORT + 100, rateLimit: 500 },
  { id: 'pg-b', port: SIM_PORT + 1, adminPort: SIM_PORT + 101, rateLimit: 200 },
] as const;
if (!env.PG_BASE_URL && !env.PROVIDERS && !env.PROVIDERS_FILE) {
  env.PROVIDERS = JSON.stringify(SIMS.map((s) => ({ id: s.id, baseUrl: `http://127.0.0.1:${s.port}`, rateLimit: s.rateLimit })));
}
env.PORT = String(PORT);

const children: ChildProcess[] = [];

async function ensureRedis(): Promise<void> {
  if (await redisAnswers(REDIS_URL)) return;
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  if (which.status !== 0) {
    console.error(`Nothing answers at ${REDIS_URL}, and redis-server is not installed.
Install Redis 7 (Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis),
or point REDIS_URL at a running Redis, then run npm start again.`);
    process.exit(1);
  }
  const url = new URL(REDIS_URL);
  const dir = resolve(root, '.data/redis');
  mkdirSync(dir, { recursive: true });
  console.log(`No Redis at ${REDIS_URL}: starting a private redis-server (data in ${dir}, AOF on)`);
  const child = spawn('redis-server', [
    '--port', url.port || '6379', '--bind', url.hostname || '127.0.0.1', '--dir', dir,
    '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction', '--save', '',
  ], { stdio: 'ignore' });
  children.push(child);
  for (let i = 0; i < 50 && !(await redisAnswers(REDIS_URL)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await redisAnswers(REDIS_URL))) {
    console.error('redis-server did not come up');
    process.exit(1);
  }
}

function run(name: string, entry: string, extra: Record<string, string> = {}, nodeFlags: readonly string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', resolve(root, entry)], { env: { ...env, ...extra }, stdio: ['ignore', 'inherit', 'inherit'] });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited (${code ?? signal}); stopping the stack`);
      void stop(1);
    }
  });
  children.push(child);
  return child;
}

/** Closed last, after every process that writes to it: the embedded PostgreSQL, if started. */
let embedded: { stop(): Promise<void> } | null = null;
/** Where the books are, for the banner. */
let booksAt = '';

/**
 * The books: DATABASE_URL if set; else a local PostgreSQL that answers (its `sluice` database,
 * made if missing); else an embedded PostgreSQL (PGlite, data in .data/pglite) served on a local
 * port, so that a fresh machine needs only Node and Redis.
 */
async function ensureBooks(): Promise<void> {
  if (env.DATABASE_URL) {
    booksAt = env.DATABASE_URL.replace(/:[^:@/]*@/, ':***@');
    return;
  }
  const local = 'postgres://postgres@127.0.0.1:5432/sluice';
  try {
    await ensureDatabase(local);
    env.DATABASE_URL = local;
    booksAt = `${local} (the local PostgreSQL)`;
    console.log(`Books: the local PostgreSQL, database sluice`);
    return;
  } catch {
    /* none answers: embedded */
  }
  const dir = resolve(root, '.data/pglite');
  mkdirSync(dir, { recursive: true });
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create(dir);
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 32 });
  await server.start();
  const port = (server as unknown as { server: { address(): { port: number } } }).server.address().port;
  env.DATABASE_URL = `postgres://postgres@127.0.0.1:${port}/postgres`;
  embedded = { stop: async () => { await server.stop(); await db.close(); } };
  booksAt = `embedded PostgreSQL (PGlite), data in ${dir}`;
  console.log(`Books: no PostgreSQL at 127.0.0.1:5432, so an embedded one (PGlite), data in ${dir}`);
}

let stopping = false;
async function stop(code = 0): Promise<void> {
  if (stopping) {
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  }
  stopping = true;
  for (const c of [...children].reverse()) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r)))));
  await embedded?.stop().catch(() => undefined);
  process.exit(code);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());

await ensureRedis();
await ensureBooks();
for (const s of SIMS) {
  run(`pg-simulator ${s.id}`, 'apps/pg-simulator/src/main.ts', {
    SIM_PORT: String(s.port), SIM_ADMIN_PORT: String(s.adminPort), SIM_RATE_LIMIT: String(s.rateLimit),
  });
}
run('drainer', 'apps/drainer/src/main.ts');
run('worker', 'apps/worker/src/main.ts', {}, WORKER_NODE_FLAGS);
run('api', 'apps/api/src/main.ts');

const base = `http://127.0.0.1:${PORT}`;
let up = false;
for (let i = 0; i < 100 && !up && !stopping; i++) {
  try {
    up = (await fetch(`${base}/healthz`)).ok;
  } catch {
    /* not up yet */
  }
  if (!up) await new Promise((r) => setTimeout(r, 200));
}
if (!up) {
  // A process that exited has already set the stop under way; it ends this process.
  if (stopping) await new Promise<never>(() => {});
  console.error(`The API did not answer ${base}/healthz within 20 s; stopping the stack (its log is above).`);
  await stop(1);
}
console.log(`
Sluice is running.
  API           ${base}
  bull-board    ${base}/admin/queues   (${env.ADMIN_USER} / ${env.ADMIN_PASSWORD})
  dashboard     ${base}/dashboard
  PGs           ${env.PROVIDERS ? SIMS.map((s) => `${s.id} http://127.0.0.1:${s.port} (${s.rateLimit}/s)`).join(', ') : env.PG_BASE_URL}
  books         ${booksAt}
  demo API key  ${DEMO_KEY}

Try:
  curl -s ${base}/v1/providers -H 'Authorization: Bearer ${DEMO_KEY}'      # which PG to use
  curl -s -X POST ${base}/v1/payments \\
    -H 'Authorization: Bearer ${DEMO_KEY}' -H 'Idempotency-Key: demo-1' \\
    -H 'Content-Type: application/json' \\
    -d '{"paymentKey":"pk_demo_1","orderId":"order-demo-1","amount":15000${env.PROVIDERS ? ',"provider":"pg-b"' : ''}}'
  curl -s ${base}/v1/payments/<id from the answer> -H 'Authorization: Bearer ${DEMO_KEY}'
${env.PROVIDERS ? `
  pg-b refusing for 30 s, then hanging (its admin port stays up):
  curl -s -X POST http://127.0.0.1:${SIMS[1].adminPort}/__sim/config -d '{"outage":"refuse","outageMs":30000}'
  curl -s -X POST http://127.0.0.1:${SIMS[1].adminPort}/__sim/config -d '{"outage":"hang","outageMs":30000}'
` : ''}
Ctrl-C stops everything.
`);
