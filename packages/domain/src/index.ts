export * from './status.ts';
export * from './errors.ts';
export * from './card-data.ts';
export * from './pg-outcome.ts';
export * from './decide.ts';
export * from './late-confirm.ts';
export type { BookChange, CallChange, PaymentChange, RunChange } from './book-changes.ts';
