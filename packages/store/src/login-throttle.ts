/**
 * Failed operator logins, counted in Redis so that every API process sees the same counts: per
 * client address (one guesser) and per user name (many addresses guessing one account). Past
 * `maxFailures` in a window, either one refuses further tries until its window ends; the
 * operator pages answer those with 429 and Retry-After (merchant routes never do).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';

/** How many failures a window allows, and how long a window lasts. */
export interface LoginThrottleOptions {
  maxFailures: number;
  windowMs: number;
}

/** Failed logins per address and per user name, shared by every API process through Redis. */
export class LoginThrottle {
  /** `redis` gives the connection to use (the operator pages' own, not the intake's). */
  constructor(
    private readonly redis: () => Promise<Redis>,
    private readonly keys: Keys,
    private readonly opts: LoginThrottleOptions,
  ) {}

  /** The counter keys of a try: its address, and its user name (hashed: any length, any bytes). */
  private keysOf(address: string, user: string): [string, string] {
    const userHash = createHash('sha256').update(user, 'utf8').digest('hex').slice(0, 32);
    return [this.keys.loginFailures(`addr:${address}`), this.keys.loginFailures(`user:${userHash}`)];
  }

  /** 0 while a try is allowed; otherwise the milliseconds until it is. */
  async retryAfterMs(address: string, user: string): Promise<number> {
    const [a, u] = this.keysOf(address, user);
    const rows = (await (await this.redis()).multi().get(a).pttl(a).get(u).pttl(u).exec()) ?? [];
    const [countA, ttlA, countU, ttlU] = rows.map(([err, v]) => {
      if (err) throw err;
      return Number(v ?? 0);
    });
    let wait = 0;
    if (countA! >= this.opts.maxFailures) wait = Math.max(wait, ttlA!);
    if (countU! >= this.opts.maxFailures) wait = Math.max(wait, ttlU!);
    return wait > 0 ? wait : 0;
  }

  /** Counts a failed try against its address and its user name; a window starts at its first failure. */
  async recordFailure(address: string, user: string): Promise<void> {
    const [a, u] = this.keysOf(address, user);
    const w = this.opts.windowMs;
    await (await this.redis()).multi().incr(a).pexpire(a, w, 'NX').incr(u).pexpire(u, w, 'NX').exec();
  }
}
