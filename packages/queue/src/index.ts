export * from './catalog.ts';
export { enqueueConfirms, enqueueConfirmsOf } from './enqueuer.ts';
