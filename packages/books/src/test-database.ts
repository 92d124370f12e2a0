/** For tests: a fresh, migrated database on the local PostgreSQL, dropped after the file's tests. */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { booksPool, dropDatabase, ensureDatabase, migrateBooks } from './db.ts';

/** The server tests use (trust auth). */
export const TEST_POSTGRES = process.env.TEST_DATABASE_SERVER ?? 'postgres://postgres@127.0.0.1:5432';

/** A migrated database of its own and a pool on it; the fields are set once `beforeAll` ran. */
export interface TestDatabase {
  url: string;
  pool: pg.Pool;
}

/** Registers hooks that create, migrate and finally drop a database for this test file. */
export function useTestDatabase(): TestDatabase {
  const ctx = { url: `${TEST_POSTGRES}/sluice_test_${randomUUID().replaceAll('-', '').slice(0, 16)}` } as TestDatabase;
  beforeAll(async () => {
    await ensureDatabase(ctx.url);
    await migrateBooks(ctx.url);
    ctx.pool = booksPool(ctx.url);
  });
  afterAll(async () => {
    await ctx.pool?.end();
    await dropDatabase(ctx.url);
  });
  return ctx;
}
