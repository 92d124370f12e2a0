/**
 * Starting the real processes for system tests: the simulator, the API and workers, each a
 * `node --import tsx` child, with the environment given. Every child is killed when the test
 * process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

/** The repository's root. */
export const ROOT = resolve(import.meta.dirname, '../../..');
const alive = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of alive) c.kill('SIGKILL');
});

/** A started child process: its output, a wait for a line, and how to stop it. */
export interface Proc {
  child: ChildProcess;
  output(): string;
  /** Resolves with the first line matching `re` (or rejects after `timeoutMs`). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts an entry file with `node --import tsx` (and `nodeArgs`, such as `--cpu-prof`) and the environment given. */
export function startProcess(entry: string, env: Record<string, string>, nodeArgs: string[] = []): Proc {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', resolve(ROOT, entry)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  alive.add(child);
  child.on('exit', () => alive.delete(child));
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return {
    child,
    output: () => out,
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((res, rej) => {
        const check = () => {
          const m = out.match(re);
          if (m) {
            listeners.delete(check);
            clearTimeout(timer);
            res(m);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          rej(new Error(`${entry}: no ${re} within ${timeoutMs} ms; output:\n${out.slice(-3000)}`));
        }, timeoutMs);
        listeners.add(check);
        child.once('exit', (code) => {
          if (listeners.has(check)) {
            listeners.delete(check);
            clearTimeout(timer);
            rej(new Error(`${entry} exited (${code}) before ${re}; output:\n${out.slice(-3000)}`));
          }
        });
        check();
      });
    },
    stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
      return new Promise((res) => {
        child.once('exit', (code) => res(code));
        child.kill(signal);
      });
    },
  };
}

/** Starts the PG simulator as its own process on a free port; returns its URL. */
export async function startSimulatorProcess(env: Record<string, string> = {}): Promise<{ proc: Proc; url: string }> {
  const proc = startProcess('apps/pg-simulator/src/main.ts', { SIM_PORT: '0', ...env });
  const m = await proc.waitFor(/listening on (http:\/\/\S+)/);
  return { proc, url: m[1]! };
}

/** GETs (or sends) and parses JSON; throws on a status other than 2xx. */
export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}
