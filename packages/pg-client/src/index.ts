export * from './client.ts';
export * from './permits.ts';
export { Semaphore } from './semaphore.ts';
