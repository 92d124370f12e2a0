/** Error codes Sluice itself answers with (merchant API) or raises internally. */
export const ERROR_CODES = [
  'INVALID_REQUEST',
  'UNAUTHORIZED',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'REQUEST_TIMEOUT',
  'HEADERS_TOO_LARGE',
  'TOO_MANY_ATTEMPTS',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'IDEMPOTENCY_KEY_REUSED',
  'DUPLICATE_PAYMENT_KEY',
  'DUPLICATE_ORDER_ID',
  'CARD_DATA_NOT_ALLOWED',
  'BACKLOG_FULL',
  'MERCHANT_BACKLOG_FULL',
  'REPLICA_UNCONFIRMED',
  'NOT_CANCELABLE',
  'NOT_CANCELABLE_YET',
  'CANCEL_AMOUNT_EXCEEDS_BALANCE',
  'WEBHOOKS_UNAVAILABLE',
  'ENDPOINT_LIMIT_REACHED',
  'TOO_MANY_WAITERS',
  'NOT_READY',
  'CONFIG_INVALID',
  'REDIS_UNAVAILABLE',
  'BOOKS_UNAVAILABLE',
  'INTERNAL',
] as const;
/** A code Sluice's errors carry. */
export type ErrorCode = (typeof ERROR_CODES)[number];

const BRAND = Symbol.for('sluice.error');

/**
 * The one typed error. `retryable` tells a caller whether the same request may succeed later;
 * `httpStatus` is what the API answers with. Use {@link isSluiceError} rather than `instanceof`,
 * which breaks when a package is installed twice.
 */
export class SluiceError extends Error {
  readonly [BRAND] = true;
  override readonly name = 'SluiceError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly httpStatus: number = 500,
    readonly retryable = false,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The documented error body: `{ code, message, details? }`. */
  toBody(): { code: ErrorCode; message: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** Whether a value is a SluiceError (a brand check, safe across duplicated packages). */
export function isSluiceError(e: unknown): e is SluiceError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}
