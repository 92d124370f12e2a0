export * from './signature.ts';
export * from './secret-box.ts';
export * from './address-policy.ts';
export * from './schedule.ts';
