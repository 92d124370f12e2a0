export * from './client.ts';
export * from './permits.ts';
export { ConnectionShare, type Lane } from './connection-share.ts';
export { Connections } from './connections.ts';
export { ReadTimeouts, type ReadTimeoutBounds, type ReadTimeoutView } from './read-timeouts.ts';
