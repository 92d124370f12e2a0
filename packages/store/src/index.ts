export * from './keys.ts';
export * from './record.ts';
export * from './redis.ts';
export * from './payments.ts';
export * from './transitions.ts';
export * from './redis-safety.ts';
export * from './pg-client-figures.ts';
export * from './breaker.ts';
