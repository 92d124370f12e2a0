export * from './gate.ts';
export * from './margin.ts';
export { permitGateOf } from './from-config.ts';
