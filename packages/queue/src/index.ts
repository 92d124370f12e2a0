export * from './catalog.ts';
export { enqueueConfirms, enqueueConfirmsOf, LIVE_JOB_STATES, reviveJob } from './enqueuer.ts';
