export * from './gate.ts';
export * from './margin.ts';
export { gatePrefixOf, permitGateOf } from './from-config.ts';
