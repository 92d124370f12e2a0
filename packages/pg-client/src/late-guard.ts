/**
 * The last look before a request goes onto the wire. pg-client checks its permit before it hands
 * a request to undici, but undici may write it later: a busy event loop, a thread that is not
 * scheduled, a connection still opening. This undici interceptor asks once more at the moment of
 * writing (undici calls the handler's `onConnect` synchronously, right before it builds and
 * writes the request's headers). A request found too late then is not written at all: it fails
 * with {@link SendTooLate}, the connection stays open for the next one, and the caller takes a
 * new slot.
 */
import type { Dispatcher } from 'undici';

/** The request was not written: it would have been later than its permit's margin covers. */
export class SendTooLate extends Error {
  constructor() {
    super('not sent: later than the permit allows');
    this.name = 'SendTooLate';
  }
}

/** Where a request carries its check (on the options undici passes through to the interceptor). */
export const LATE_CHECK = Symbol('sluice.lateCheck');

/** Dispatch options that carry the write-time check. */
export type LateChecked = Dispatcher.DispatchOptions & { [LATE_CHECK]?: () => boolean };

type AnyHandler = Dispatcher.DispatchHandler & Record<string | symbol, unknown>;

/**
 * Wraps a handler so that its start callback runs the check first: `onRequestStart` (the handler
 * API undici 7 hands interceptors) or `onConnect` (the older one). undici calls it inside a
 * try/catch right before writing; throwing there errors the request without writing it and
 * without destroying the socket (client-h1 `writeH1`), whereas the abort it offers would destroy
 * the socket, so it is not used. Every other callback is the inner handler's own.
 */
function guarded(inner: AnyHandler, tooLate: () => boolean): Dispatcher.DispatchHandler {
  return new Proxy(inner, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (prop === 'onRequestStart' || prop === 'onConnect') {
        return (...args: unknown[]) => {
          if (tooLate()) throw new SendTooLate();
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
}

/** The undici interceptor that runs each request's write-time check. */
export const lateGuard: Dispatcher.DispatcherComposeInterceptor = (dispatch) => (opts, handler) => {
  const tooLate = (opts as LateChecked)[LATE_CHECK];
  return dispatch(opts, tooLate ? guarded(handler as AnyHandler, tooLate) : handler);
};
