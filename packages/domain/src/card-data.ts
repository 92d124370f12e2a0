/**
 * Card data must never enter Sluice: only the PG's `paymentKey` token is stored. Free-text
 * fields are checked for anything that looks like a PAN: a Luhn-valid run of 13–19 digits,
 * with spaces or dashes allowed between digit groups.
 */
const DIGIT_RUN = /\d+(?:[ -]\d+)*/g;

/** Whether a digit string passes the Luhn check (what card numbers do). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/**
 * True when `text` holds a Luhn-valid PAN: 13–19 digits made of whole digit groups
 * ("4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111"), also when other groups
 * stand beside it ("ref 12 4111 1111 1111 1111").
 */
export function containsPan(text: string): boolean {
  for (const m of text.matchAll(DIGIT_RUN)) {
    const groups = m[0].split(/[ -]/);
    for (let a = 0; a < groups.length; a++) {
      let digits = '';
      for (let b = a; b < groups.length && digits.length < 19; b++) {
        digits += groups[b];
        if (digits.length >= 13 && digits.length <= 19 && luhnValid(digits)) return true;
      }
    }
  }
  return false;
}
