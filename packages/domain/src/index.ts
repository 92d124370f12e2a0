export * from './status.ts';
export * from './errors.ts';
export * from './card-data.ts';
export * from './pg-outcome.ts';
export * from './decide.ts';
export * from './late-confirm.ts';
export * from './refunds.ts';
export * from './webhook-events.ts';
/** The books' changes: what the Lua scripts append to the books stream and the drainer writes. */
export type { BookChange, CallChange, PaymentChange, RunChange } from './book-changes.ts';
/** Lone surrogates: found (intake refuses them) and replaced (what UTF-8 would make of them). */
export { hasLoneSurrogate, wellFormed } from './text.ts';
