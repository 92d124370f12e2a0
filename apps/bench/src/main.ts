/**
 * `npm run bench`: starts the PG simulator once, then for each scenario a fresh Sluice stack
 * (API and worker as child processes, under a Redis prefix of its own that is deleted
 * afterwards), drives load, collects the evidence, and writes BENCHMARKS.md.
 *
 * Exit code: 0 when every scenario ran, whether or not its targets were met (a missed target is
 * a finding, reported in the file); 1 when a scenario could not run; 2 on bad flags or no Redis.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, platform, release } from 'node:os';
import { resolve } from 'node:path';
import { parseBenchArgs, USAGE, wants, type BenchOptions } from './args.ts';
import { benchRoot, type BenchContext } from './harness/context.ts';
import { runCrash, runSlow, SLOW_VARIANTS } from './profiles/degraded.ts';
import { runFaults } from './profiles/faults.ts';
import { runIntake } from './profiles/intake.ts';
import { runLatencyBound } from './profiles/latency-bound.ts';
import { runMemory } from './profiles/memory.ts';
import { runBooks } from './profiles/books.ts';
import { runFair } from './profiles/fair.ts';
import { runProviders } from './profiles/providers.ts';
import { runRefunds } from './profiles/refunds.ts';
import { runWebhooks } from './profiles/webhooks.ts';
import { runRedisHa } from './profiles/redis-ha.ts';
import { runRedisCluster } from './profiles/redis-cluster.ts';
import { CONFIGS, runOverload } from './profiles/overload.ts';
import { runNaive } from './profiles/cpu.ts';
import { Progress } from './harness/progress.ts';
import { connect, deleteMatching, redisVersion } from './harness/redis-tools.ts';
import { renderReport } from './report/report.ts';
import type { BenchResults } from './analysis/results.ts';
import { ROOT } from '@sluice/test-support';
import { activeStacks, profileInto, startBenchSimulator, stopProc } from './harness/stack.ts';

const argv = process.argv.slice(2);
let opts: BenchOptions;
try {
  opts = parseBenchArgs(argv);
} catch (err) {
  console.error(`${err instanceof Error ? err.message : String(err)}\nusage: ${USAGE}`);
  process.exit(2);
}
if (opts.cpuProf) profileInto(opts.cpuProf);
const command = `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`;
console.log(`$ ${command}`);

const redis = connect();
redis.on('error', () => undefined);
let version: string;
try {
  version = await redisVersion(redis);
} catch (err) {
  console.error(`cannot reach Redis (${err instanceof Error ? err.message : String(err)}); set REDIS_URL`);
  process.exit(2);
}

const started = Date.now();
const root = benchRoot();
let runs = 0;
const progress = new Progress();
progress.start();
progress.phase('starting the PG simulator');
const sim = await startBenchSimulator(opts.simNice);
const simNice = sim.nice;
const ctx: BenchContext = { opts, sim: sim.client, redis, progress, root, newPrefix: () => `${root}-${++runs}`, simPid: sim.proc.child.pid };

/** Whatever happens, the run's keys go (the children are killed by the helpers on exit). */
async function cleanup(): Promise<void> {
  // The stack first: a live worker or API would write keys again after they were deleted.
  for (const stack of activeStacks) await stack.stop(3_000).catch(() => undefined);
  await stopProc(sim.proc, 5_000).catch(() => undefined);
  await deleteMatching(redis, `${root}-*`).catch(() => undefined);
}
process.once('SIGINT', () => {
  progress.stop();
  console.error('\ninterrupted: cleaning up');
  void cleanup().finally(() => process.exit(130));
});

const results: BenchResults = {
  machine: {
    cores: cpus().length,
    loadStart: loadavg()[0] ?? Number.NaN,
    loadEnd: Number.NaN,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    redis: version,
    platform: `${platform()} ${release()} ${arch()}`,
    date: new Date().toISOString(),
    commit: gitState(),
  },
  command,
  settings: { rate: opts.rate, seconds: opts.seconds, runs: opts.runs, quick: opts.quick, simNice },
  overload: [],
  naive: null,
  latency: [],
  intake: null,
  faults: null,
  memory: null,
  books: null,
  fair: null,
  providers: null,
  refunds: null,
  webhooks: null,
  redis: null,
  cluster: null,
  slow: [],
  crash: [],
  failures: [],
  elapsedSeconds: 0,
};

/** `abc1234 (+3 changed paths)`: read-only git, so the report says what code it measured. */
function gitState(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean).length;
    return dirty === 0 ? head : `${head} (+${dirty} uncommitted paths)`;
  } catch {
    return 'unknown';
  }
}

/** Runs one scenario; a failure is recorded and the bench goes on to the next. */
async function attempt<T>(name: string, fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    results.failures.push(`${name}: ${message.split('\n').slice(0, 6).join(' ⏎ ')}`);
    progress.note(`${name} FAILED: ${message}`);
    return null;
  }
}

if (wants(opts, 'overload')) {
  for (const key of opts.configs) {
    for (let i = 1; i <= (key === 'gate1' ? opts.runs : 1); i++) {
      const r = await attempt(`overload ${key} #${i}`, () => runOverload(ctx, CONFIGS[key], i));
      if (r) results.overload.push(r);
    }
  }
  if (opts.configs.includes('gate1')) {
    const r = await attempt('latency-bound', () => runLatencyBound(ctx));
    if (r) results.latency.push(r);
  }
}
if (wants(opts, 'cpu')) {
  // Sluice's side of the CPU section is the overload's gate runs (one worker process); run alone
  // (`--only cpu`), it runs one of its own first. Then the naive gateway, under the same load.
  if (!results.overload.some((o) => o.config.key === 'gate1')) {
    const r = await attempt('cpu: overload gate1', () => runOverload(ctx, CONFIGS.gate1, 1));
    if (r) results.overload.push(r);
  }
  results.naive = await attempt('cpu: naive gateway', () => runNaive(ctx));
}
if (wants(opts, 'intake')) results.intake = await attempt('intake', () => runIntake(ctx));
if (wants(opts, 'faults')) results.faults = await attempt('faults', () => runFaults(ctx));
if (wants(opts, 'memory')) results.memory = await attempt('memory', () => runMemory(ctx));
if (wants(opts, 'books')) results.books = await attempt('books', () => runBooks(ctx));
if (wants(opts, 'fair')) results.fair = await attempt('fair', () => runFair(ctx));
if (wants(opts, 'providers')) results.providers = await attempt('providers', () => runProviders(ctx));
if (wants(opts, 'refunds')) results.refunds = await attempt('refunds', () => runRefunds(ctx));
if (wants(opts, 'webhooks')) results.webhooks = await attempt('webhooks', () => runWebhooks(ctx));
if (wants(opts, 'redis')) results.redis = await attempt('redis', () => runRedisHa(ctx));
if (wants(opts, 'cluster')) results.cluster = await attempt('cluster', () => runRedisCluster(ctx));
if (wants(opts, 'slow')) {
  for (const variant of SLOW_VARIANTS) {
    const r = await attempt(`slow (${variant.label})`, () => runSlow(ctx, variant));
    if (r) results.slow.push(r);
  }
}
if (wants(opts, 'crash')) {
  for (const supervised of [true, false]) {
    const r = await attempt(`crash (${supervised ? 'supervised' : 'single'})`, () => runCrash(ctx, supervised));
    if (r) results.crash.push(r);
  }
}

progress.phase('cleaning up');
await cleanup();
progress.stop();
results.elapsedSeconds = (Date.now() - started) / 1_000;
results.machine.loadEnd = loadavg()[0] ?? Number.NaN;

const report = renderReport(results);
const out = resolve(ROOT, opts.out);
writeFileSync(out, report);
console.log(report);
console.log(`\nwritten to ${out}`);
redis.disconnect();
process.exit(results.failures.length > 0 ? 1 : 0);
