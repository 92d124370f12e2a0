export * from './catalog.ts';
export { enqueueConfirms } from './enqueuer.ts';
