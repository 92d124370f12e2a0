import { describe, expect, it } from 'vitest';
import { canMove, isFinalStatus, phasesInto, statusOfPhase } from './status.ts';
import { containsPan, luhnValid } from './card-data.ts';

describe('phases', () => {
  it('never goes back to queued, and nothing leaves final', () => {
    for (const p of ['confirming', 'inquiring', 'canceling', 'final'] as const) expect(canMove(p, 'queued')).toBe(false);
    for (const p of ['queued', 'confirming', 'inquiring', 'canceling'] as const) expect(canMove('final', p)).toBe(false);
  });
  it('never confirms once canceling', () => {
    expect(canMove('canceling', 'confirming')).toBe(false);
    expect(phasesInto('confirming')).toEqual(['queued', 'confirming', 'inquiring']);
  });
  it('shows QUEUED only before the first send', () => {
    expect(statusOfPhase('queued')).toBe('QUEUED');
    expect(statusOfPhase('confirming')).toBe('PROCESSING');
    expect(isFinalStatus('APPROVED')).toBe(true);
    expect(isFinalStatus('PROCESSING')).toBe(false);
  });
});

describe('card data', () => {
  it.each(['4111 1111 1111 1111', '4242-4242-4242-4242', '5555555555554444', 'card 378282246310005 here', 'ref 12 4111 1111 1111 1111'])('finds the PAN in %j', (s) => {
    expect(containsPan(s)).toBe(true);
  });
  it.each(['4111 1111 1111 1112', 'order 12345', '2026-11-23', '1234567890123', ''])('finds none in %j', (s) => {
    expect(containsPan(s)).toBe(false);
  });
  it('checks Luhn', () => {
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('79927398710')).toBe(false);
  });
});
