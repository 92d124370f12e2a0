export * from './client.ts';
export * from './permits.ts';
export { ConnectionShare, type Lane } from './connection-share.ts';
export { Connections } from './connections.ts';
export { CALL_HEADER } from './send-tracker.ts';
export { ReadTimeouts, type ReadTimeoutBounds, type ReadTimeoutView } from './read-timeouts.ts';
