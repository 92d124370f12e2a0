/**
 * The worker's resolution policy derived from the parsed config, shared by the main thread and
 * the sender thread. (The breaker's settings are the store's `breakerSettingsOf`.)
 */
import type { Config } from '@sluice/config';
import type { ResolutionPolicy } from '@sluice/domain';

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
