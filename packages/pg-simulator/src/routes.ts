/**
 * Maps a method and path to a PG endpoint without regexes or URL objects: this runs for every
 * request on the bench's hot path.
 */
import { decodeSegment } from './http-io.ts';

/** A matched PG endpoint; `param` is the decoded paymentKey or orderId where the path has one. */
export type Route =
  | { kind: 'confirm'; endpoint: 0 }
  | { kind: 'inquire'; endpoint: 1; param: string }
  | { kind: 'inquireByOrder'; endpoint: 2; param: string }
  | { kind: 'cancel'; endpoint: 3; param: string }
  | { kind: 'transactions'; endpoint: 4 }
  | { kind: 'unknown'; endpoint: 5 };

const PAYMENTS_PREFIX = '/v1/payments/';
const UNKNOWN: Route = { kind: 'unknown', endpoint: 5 };
const CONFIRM: Route = { kind: 'confirm', endpoint: 0 };
const TRANSACTIONS: Route = { kind: 'transactions', endpoint: 4 };

/** Matches one of the five PG endpoints of the contract, or `unknown`. */
export function matchRoute(method: string, path: string): Route {
  if (path === '/v1/transactions') return method === 'GET' ? TRANSACTIONS : UNKNOWN;
  if (!path.startsWith(PAYMENTS_PREFIX)) return UNKNOWN;
  const rest = path.slice(PAYMENTS_PREFIX.length);
  if (rest === 'confirm' && method === 'POST') return CONFIRM;
  const slash = rest.indexOf('/');
  if (slash < 0) {
    if (method !== 'GET' || rest === '') return UNKNOWN;
    const param = decodeSegment(rest);
    return param === null ? UNKNOWN : { kind: 'inquire', endpoint: 1, param };
  }
  const head = rest.slice(0, slash);
  const tail = rest.slice(slash + 1);
  if (tail.includes('/') || tail === '') return UNKNOWN;
  if (head === 'orders' && method === 'GET') {
    const param = decodeSegment(tail);
    return param === null ? UNKNOWN : { kind: 'inquireByOrder', endpoint: 2, param };
  }
  if (tail === 'cancel' && method === 'POST' && head !== '') {
    const param = decodeSegment(head);
    return param === null ? UNKNOWN : { kind: 'cancel', endpoint: 3, param };
  }
  return UNKNOWN;
}
