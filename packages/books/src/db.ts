/**
 * The books' connection pool and schema. Every connection runs in UTC, so that a month's
 * partition and a day of the daily summary are the same span for every process.
 */
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runner } from 'node-pg-migrate';

/** The migrations, applied in order by node-pg-migrate (`pgmigrations` records what ran). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

/** A pool on `databaseUrl`, in UTC. */
export function booksPool(databaseUrl: string, max = 4): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max, options: '-c TimeZone=UTC', connectionTimeoutMillis: 5_000 });
  // An idle client's error (the database restarted) must not kill the process: the next query fails and is retried.
  pool.on('error', () => undefined);
  return pool;
}

/** Applies every migration not yet applied. Safe to run from several processes at once (node-pg-migrate locks). */
export async function migrateBooks(databaseUrl: string): Promise<string[]> {
  const ran = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    log: () => undefined,
  });
  return ran.map((m) => m.name);
}

/** `url` with its database name replaced. */
function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** The database name of a URL. */
export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

/**
 * Creates the database named in `databaseUrl` when it does not exist (connecting to the server's
 * `postgres` database to do it). Returns whether it created it. For `npm start` on a local
 * server, and for tests (a database per run).
 */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const name = databaseName(databaseUrl);
  const admin = new pg.Client({ connectionString: withDatabase(databaseUrl, 'postgres'), connectionTimeoutMillis: 3_000 });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount) return false;
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    return true;
  } finally {
    await admin.end();
  }
}

/** Drops the database named in `databaseUrl` (tests clean up with it). */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: withDatabase(databaseUrl, 'postgres'), connectionTimeoutMillis: 3_000 });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(databaseName(databaseUrl))} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
