/**
 * The simulator's `/__sim/*` controls, as the bench uses them: reset and knobs between runs, live
 * stats for the progress line, and the arrival log and ledger as the evidence of a run.
 */
import { DEFAULT_KNOBS, type SimulatorKnobs, type SimulatorStats } from '@sluice/pg-simulator';

/** One PG request as the simulator saw it: arrival time (ms epoch, fractional), endpoint, status (-1 = never answered). */
export interface Arrival {
  t: number;
  endpoint: string;
  status: number;
}

/** The simulator's ledger as the bench reads it. */
export interface LedgerView {
  payments: Record<string, { status: string; chargeCount: number; refunded?: boolean; refundedAmount?: number; cancelCount?: number; amount?: number | null; approvedAt?: string | null; firstConfirmAt?: number | null; confirmArrivals?: number }>;
}

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  const text = await res.text();
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

/** The simulator's /__sim/* controls: reset, knobs, stats, arrivals, ledger. */
export class SimClient {
  /**
   * @param url where `/__sim/*` is served (the admin port, whose connections do not count as PG connections)
   * @param pgUrl the PG API, for the worker's PG_BASE_URL
   */
  constructor(
    readonly url: string,
    readonly pgUrl: string,
  ) {}

  /**
   * Forgets ledger, arrivals and counters, reseeds, and sets every knob: the defaults with
   * `overrides` on top, so that no knob leaks from the previous scenario.
   */
  async fresh(overrides: Partial<SimulatorKnobs> = {}): Promise<SimulatorKnobs> {
    await json(`${this.url}/__sim/reset`, { method: 'POST' });
    return json<SimulatorKnobs>(`${this.url}/__sim/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...DEFAULT_KNOBS, ...overrides }),
    });
  }

  /** Changes some knobs, leaving the others as they are (an outage, say). */
  configure(patch: Partial<SimulatorKnobs>): Promise<SimulatorKnobs> {
    return json<SimulatorKnobs>(`${this.url}/__sim/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(patch) });
  }

  stats(): Promise<SimulatorStats> {
    return json<SimulatorStats>(`${this.url}/__sim/stats`);
  }

  async arrivals(since = 0): Promise<Arrival[]> {
    const body = await json<{ arrivals: [number, string, number][] }>(`${this.url}/__sim/arrivals?since=${since}`);
    return body.arrivals.map(([t, endpoint, status]) => ({ t, endpoint, status }));
  }

  ledger(): Promise<LedgerView> {
    return json<LedgerView>(`${this.url}/__sim/ledger`);
  }
}

/**
 * Mean of the simulator's lognormal approval latency: median · e^(σ²/2), σ = ln(p99/median)/z99,
 * the same shape `Rng.lognormalMs` draws from.
 */
export function lognormalMeanMs(medianMs: number, p99Ms: number): number {
  const sigma = p99Ms > medianMs ? Math.log(p99Ms / medianMs) / 2.3263478740408408 : 0;
  return medianMs * Math.exp((sigma * sigma) / 2);
}
