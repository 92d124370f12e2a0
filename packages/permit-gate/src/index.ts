export * from './gate.ts';
export * from './margin.ts';
