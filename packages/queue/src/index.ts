export * from './catalog.ts';
export { ConfirmEnqueuer, ENQUEUE_LINGER_MS, ENQUEUE_MAX_BATCH } from './enqueuer.ts';
