/**
 * CPU time per process, to see where the machine's cores went during a run: the API, the worker
 * processes (a cluster primary's forks included), the simulator, Redis and the bench itself.
 * Linux only (`/proc`); elsewhere the figures are simply absent.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** Linux's USER_HZ; 100 on every mainstream kernel. */
const CLK_TCK = 100;

interface ProcStat {
  ppid: number;
  cpuSeconds: number;
}

function readStat(pid: number): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces; every field after its closing paren is plain.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return { ppid: Number(fields[1]), cpuSeconds: (utime + stime) / CLK_TCK };
  } catch {
    return null;
  }
}

/** The ids of the machine's processes (none where there is no `/proc`). */
function pids(): number[] {
  try {
    return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number);
  } catch {
    return [];
  }
}

/** CPU seconds of `pid` and of its living children (a cluster's forks). */
export function treeCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const own = readStat(pid);
  if (!own) return Number.NaN;
  let total = own.cpuSeconds;
  for (const p of pids()) {
    const s = readStat(p);
    if (s && s.ppid === pid) total += s.cpuSeconds;
  }
  return total;
}

/** CPU seconds of every PostgreSQL server process (neighbours' sessions included, as for Redis). */
export function postgresCpuSeconds(): number {
  let total = 0;
  for (const p of pids()) {
    let comm = '';
    try {
      comm = readFileSync(`/proc/${p}/comm`, 'utf8');
    } catch {
      continue;
    }
    if (comm.startsWith('postgres')) total += readStat(p)?.cpuSeconds ?? 0;
  }
  return total;
}

/** Redis's own CPU seconds (user + sys) from INFO cpu: the whole server, neighbours included. */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const user = /^used_cpu_user:([\d.]+)/m.exec(info)?.[1];
  const sys = /^used_cpu_sys:([\d.]+)/m.exec(info)?.[1];
  return user && sys ? Number(user) + Number(sys) : Number.NaN;
}

/** CPU seconds used by the bench process itself. */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * The whole machine's CPU from /proc/stat, in seconds summed over all cores: `machineBusy`
 * (everything but idle and iowait) and `machineTotal`. Their delta ratio is how busy the cores
 * were, neighbours included.
 */
function machineCpu(): { machineBusy: number; machineTotal: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { machineBusy: (total - idle) / CLK_TCK, machineTotal: total / CLK_TCK };
  } catch {
    return { machineBusy: Number.NaN, machineTotal: Number.NaN };
  }
}

/** CPU seconds per source (api, worker, simulator, redis, bench, machine). */
export type CpuSample = Record<string, number>;

/** Reads every named source at once. */
export async function sampleCpu(pids: Record<string, number | undefined>, redis: Redis): Promise<CpuSample> {
  const out: CpuSample = {};
  for (const [name, pid] of Object.entries(pids)) out[name] = treeCpuSeconds(pid);
  out.redis = await redisCpuSeconds(redis).catch(() => Number.NaN);
  out.bench = selfCpuSeconds();
  Object.assign(out, machineCpu());
  return out;
}

/** after − before, per source. */
export function cpuDelta(before: CpuSample, after: CpuSample): CpuSample {
  const out: CpuSample = {};
  for (const k of Object.keys(after)) out[k] = (after[k] ?? Number.NaN) - (before[k] ?? Number.NaN);
  return out;
}
