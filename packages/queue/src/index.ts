export * from './catalog.ts';
export { enqueueConfirms, LIVE_JOB_STATES, reviveJob } from './enqueuer.ts';
