/**
 * Lone UTF-16 surrogates: halves of a pair with no other half. JavaScript strings (and JSON's
 * `\ud800` escapes) can hold them; UTF-8 cannot, so Redis, PostgreSQL and the PG would each see
 * U+FFFD instead, a string nobody sent.
 */

/** A lone surrogate (in `u` mode a class of surrogates matches only unpaired ones). */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const LONE_SURROGATES = /[\uD800-\uDFFF]/gu;

/** Whether `s` holds a lone surrogate (intake refuses such strings). */
export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}

/** `s` as UTF-8 would carry it: each lone surrogate becomes U+FFFD. */
export function wellFormed(s: string): string {
  return hasLoneSurrogate(s) ? s.replace(LONE_SURROGATES, '\uFFFD') : s;
}
