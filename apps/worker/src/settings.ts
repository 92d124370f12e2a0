/**
 * The worker's settings derived from the parsed config, shared by the main thread and the
 * sender thread.
 */
import type { Config } from '@sluice/config';
import type { ResolutionPolicy } from '@sluice/domain';
import type { BreakerSettings } from '@sluice/store';

export function policyOf(c: Config): ResolutionPolicy {
  return {
    cancelAfterMs: c.RESOLVE_CANCEL_AFTER_MS,
    maxReconfirms: c.RESOLVE_MAX_RECONFIRMS,
    firstInquiryDelayMs: c.RESOLVE_FIRST_INQUIRY_DELAY_MS,
    inquiryGrowth: c.RESOLVE_INQUIRY_GROWTH,
    backoffBaseMs: c.RETRY_BACKOFF_BASE_MS,
    backoffMaxMs: c.RETRY_BACKOFF_MAX_MS,
    lateConfirmHorizonMs: c.LATE_CONFIRM_HORIZON_MS,
  };
}

export function breakerOf(c: Config): BreakerSettings {
  return {
    consecutiveFailures: c.BREAKER_CONSECUTIVE_FAILURES,
    failureRate: c.BREAKER_FAILURE_RATE,
    minCalls: c.BREAKER_MIN_CALLS,
    windowMs: c.BREAKER_WINDOW_MS,
    openMs: c.BREAKER_OPEN_MS,
    probeIntervalMs: c.BREAKER_PROBE_INTERVAL_MS,
    closeAfter: c.BREAKER_CLOSE_AFTER,
  };
}
