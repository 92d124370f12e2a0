/**
 * The books in PostgreSQL: the system of record. Redis holds what is in flight; every change the
 * Lua scripts make is appended to a Redis stream, which the drainer (apps/drainer) writes here
 * with {@link BooksWriter}. The API reads with {@link BooksReader} what Redis no longer holds.
 */
/** The pool, the schema, and databases made and dropped (npm start, tests). */
export { booksPool, databaseName, dropDatabase, ensureDatabase, migrateBooks, MIGRATIONS_DIR } from './db.ts';
/** Writes drained changes idempotently. */
export { BooksWriter, monthOf, type ApplyResult } from './writer.ts';
/** Reads what Redis no longer holds. */
export { BooksReader, type BookedPayment, type ListPage, type ListQuery, type SummaryDay } from './reader.ts';
