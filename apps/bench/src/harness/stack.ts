/**
 * The system under test, as child processes: the API and the worker pool, each started with
 * `node --import tsx` through the system tests' helpers, against the local Redis under a prefix
 * of the run's own. The PG simulator is started once per bench run (see `main.ts`) and shared.
 */
import { mkdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { resolve } from 'node:path';
import { hashApiKey, WORKER_NODE_FLAGS } from '@sluice/config';
import { freePort, startProcess, startSimulatorProcess, type Proc } from '@sluice/test-support';
import { REDIS_URL } from './redis-tools.ts';
import { SimClient } from './sim-client.ts';

/** The bench's merchant: its key goes in `Authorization: Bearer`, its HMAC in MERCHANTS. */
export const BENCH_API_KEY = 'sk_bench_sluice_0123456789abcdef';
const PEPPER = 'bench-pepper-0123456789abcdef';
/** A merchant of the bench: its id and API key (the bench's own merchant is `bench`). */
export function benchMerchant(id: string): { id: string; apiKey: string } {
  return { id, apiKey: id === 'bench' ? BENCH_API_KEY : `sk_bench_${id}_0123456789abcdef` };
}

/** `MERCHANTS` for these merchants. */
export function merchantsEnv(merchants: readonly { id: string; apiKey: string }[]): string {
  return merchants.map((m) => `${m.id}:${hashApiKey(PEPPER, m.apiKey)}`).join(',');
}

/** The simulator's secret key, which the bench's stacks use. */
export const PG_SECRET_KEY = 'test_sk_sluice_demo';

export { freePort };

/**
 * Starts a PG simulator with its `/__sim/*` on an admin port of its own (so the bench's traffic
 * never takes one of the PG's connections) at scheduling priority `nice` (`--sim-nice`): it
 * stands in for a PG on a machine of its own. Every simulator of a run gets the same priority,
 * or the one left at 0 is starved by the rest and reads arrivals in bursts. `nice` in the result
 * is the priority in effect, which is not the one asked for if setting it failed.
 */
export async function startBenchSimulator(nice: number, env: Record<string, string> = {}): Promise<{ proc: Proc; client: SimClient; nice: number }> {
  const adminPort = await freePort();
  const { proc, url } = await startSimulatorProcess({ SIM_ADMIN_PORT: String(adminPort), ...env });
  const pid = proc.child.pid!;
  try {
    setPriority(pid, nice);
  } catch (err) {
    console.error(`cannot set the simulator's priority to ${nice}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { proc, client: new SimClient(`http://127.0.0.1:${adminPort}`, url), nice: getPriority(pid) };
}

/** Resolves once `re` has matched `times` lines of the process's output. */
async function waitForCount(proc: Proc, name: string, re: RegExp, times: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const global = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g');
  while ((proc.output().match(global)?.length ?? 0) < times) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${name} exited (${proc.child.exitCode ?? proc.child.signalCode}) before it was ready:\n${proc.output().slice(-3000)}`);
    }
    if (Date.now() > deadline) throw new Error(`${name} not ready within ${timeoutMs} ms:\n${proc.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM, then SIGKILL if the process has not gone after `graceMs`. */
export async function stopProc(proc: Proc, graceMs = 20_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      proc.child.kill('SIGKILL');
      resolve();
    }, graceMs);
  });
  await Promise.race([proc.stop('SIGTERM').then(() => undefined), killed]);
  clearTimeout(timer);
  if (proc.child.exitCode === null && proc.child.signalCode === null) await proc.stop('SIGKILL');
}

/** Node flags of every API and worker started from now on (`--cpu-prof DIR`). */
let nodeArgs: string[] = [];

/**
 * `npm run bench -- --cpu-prof DIR`: the API and worker processes write V8 CPU profiles into
 * `dir` when they exit (forks and the sender thread each a file of their own; docs/perf.md).
 */
export function profileInto(dir: string): void {
  mkdirSync(dir, { recursive: true });
  nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${resolve(dir)}`];
}

/** Stacks with a process running, so that an interrupted bench can stop them before it deletes their keys. */
export const activeStacks = new Set<Stack>();

/** The API and the worker of one run, under one Redis prefix. */
export class Stack {
  api: Proc | null = null;
  apiUrl = '';
  worker: Proc | null = null;
  drainer: Proc | null = null;
  /** Processes stopped before the stack (a drainer stopped between rounds), kept for {@link problems}. */
  private readonly stopped: ['api' | 'worker' | 'drainer', Proc][] = [];
  private readonly env: Record<string, string>;

  constructor(
    readonly prefix: string,
    simUrl: string,
    extraEnv: Record<string, string> = {},
  ) {
    this.env = {
      REDIS_URL,
      REDIS_PREFIX: prefix,
      PG_BASE_URL: simUrl,
      PG_SECRET_KEY,
      API_KEY_PEPPER: PEPPER,
      MERCHANTS: merchantsEnv([benchMerchant('bench')]),
      // The simulator's secret is the demo's: this is a demo as far as secrets go.
      SLUICE_DEMO: '1',
      // Only start-up, shutdown and alerts are logged at info; nothing per request.
      LOG_LEVEL: 'info',
      ...extraEnv,
    };
  }

  /** Starts the API on a free port and waits until it listens. */
  async startApi(env: Record<string, string> = {}): Promise<string> {
    const port = await freePort();
    activeStacks.add(this);
    this.api = startProcess('apps/api/src/main.ts', { ...this.env, ...env, PORT: String(port), HOST: '127.0.0.1' }, nodeArgs);
    await waitForCount(this.api, 'api', /sluice api listening/, 1);
    this.apiUrl = `http://127.0.0.1:${port}`;
    return this.apiUrl;
  }

  /** Starts the worker with WORKER_PROCESSES=`processes` and waits for every process to start. */
  async startWorker(processes: number, env: Record<string, string> = {}): Promise<void> {
    activeStacks.add(this);
    this.worker = startProcess('apps/worker/src/main.ts', { ...this.env, ...env, WORKER_PROCESSES: String(processes) }, [...WORKER_NODE_FLAGS, ...nodeArgs]);
    await waitForCount(this.worker, 'worker', /worker started/, processes);
  }

  /** Starts a drainer (the stack's env must carry DATABASE_URL) and waits until it drains. */
  async startDrainer(env: Record<string, string> = {}): Promise<void> {
    activeStacks.add(this);
    this.drainer = startProcess('apps/drainer/src/main.ts', { ...this.env, ...env });
    await waitForCount(this.drainer, 'drainer', /drainer started/, 1);
  }

  /** Stops the drainer only; its output stays with the stack's problems. */
  async stopDrainer(graceMs = 20_000): Promise<void> {
    if (this.drainer) {
      await stopProc(this.drainer, graceMs);
      this.stopped.push(['drainer', this.drainer]);
    }
    this.drainer = null;
  }

  /** Stops the worker only (SIGTERM, then SIGKILL after the grace). */
  async stopWorker(graceMs = 20_000): Promise<void> {
    if (this.worker) await stopProc(this.worker, graceMs);
    this.worker = null;
  }

  /** Stops the API first (it may still flush confirm jobs), then the worker, then the drainer. */
  async stop(graceMs = 20_000): Promise<void> {
    if (this.api) await stopProc(this.api, graceMs);
    if (this.worker) await stopProc(this.worker, graceMs);
    if (this.drainer) await stopProc(this.drainer, graceMs);
    activeStacks.delete(this);
  }

  /**
   * Log lines of either process at error level or above, and anything that is not a JSON log
   * line (a stack trace, a crash), for the report's notes. Warnings (e.g. in-doubt alerts,
   * expected under faults) are only counted.
   */
  problems(): { errors: string[]; warnings: number } {
    const errors: string[] = [];
    let warnings = 0;
    for (const [name, p] of [['api', this.api], ['worker', this.worker], ['drainer', this.drainer], ...this.stopped] as const) {
      if (!p) continue;
      for (const line of p.output().split('\n')) {
        if (line.trim() === '') continue;
        if (/^\{.*"level":40/.test(line)) warnings++;
        else if (/"level":(50|60)/.test(line) || !line.startsWith('{')) errors.push(`${name}: ${line.slice(0, 300)}`);
      }
    }
    return { errors, warnings };
  }
}
