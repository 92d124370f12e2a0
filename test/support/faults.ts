/**
 * The standard mixed PG faults, as simulator settings: 10% answers after the read timeout
 * (charge committed), 3% drops after commit, 3% ambiguous 500s and 2% 502s, half of each committed.
 * One definition for the mixed-fault test and the chaos suite.
 */
export const MIXED_FAULTS = {
  SIM_LATE_RATE: '0.10',
  SIM_LATE_MS: '2500',
  SIM_DROP_RATE: '0.03',
  SIM_AMBIGUOUS_COMMIT_RATE: '0.015',
  SIM_AMBIGUOUS_NO_COMMIT_RATE: '0.015',
  SIM_PROVIDER_ERROR_COMMIT_RATE: '0.01',
  SIM_PROVIDER_ERROR_NO_COMMIT_RATE: '0.01',
} as const;
