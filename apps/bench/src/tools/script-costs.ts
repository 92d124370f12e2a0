/**
 * Redis time per script while something else runs (docs/perf.md): turns SLOWLOG on for every
 * command, reads and resets it every half second for the given seconds, and prints the time and
 * calls per command, each script named (Sluice's from packages/store and the gate, BullMQ's from
 * its package). SLOWLOG also lists the commands a script runs, and its times are wall time inside
 * Redis (a busy box stretches them), so read the figures side by side, not as a sum.
 *
 *   npx tsx apps/bench/src/tools/script-costs.ts [seconds=30]   (beside `npm run bench -- …`)
 *
 * It puts SLOWLOG back to Redis's defaults (10 ms, 128 entries) when it ends.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import { lua } from '../../../../packages/store/src/lua/index.ts';
import { REDIS_URL } from '../harness/redis-tools.ts';

const sha1 = (text: string): string => createHash('sha1').update(text).digest('hex');

/** Script name by SHA1: Sluice's and BullMQ's. */
async function scriptNames(): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  const dir = new URL('../../../../packages/store/src/lua/', import.meta.url);
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.lua'))) names.set(sha1(lua(f.slice(0, -4))), f.slice(0, -4));
  names.set(sha1(readFileSync(new URL('../../../../packages/permit-gate/src/acquire.lua', import.meta.url), 'utf8')), 'gate acquire');
  const bullmq = join(dirname(createRequire(import.meta.url).resolve('bullmq')), 'scripts');
  for (const f of readdirSync(bullmq).filter((f) => f.endsWith('.js'))) {
    const m = (await import(join(bullmq, f))) as Record<string, { name?: string; content?: string }>;
    for (const v of Object.values(m)) if (typeof v?.content === 'string') names.set(sha1(v.content), `bullmq ${v.name}`);
  }
  return names;
}

const seconds = Number(process.argv[2] ?? 30);
const names = await scriptNames();
const redis = new Redis(REDIS_URL);
const totals = new Map<string, { calls: number; us: number }>();
try {
  await redis.config('SET', 'slowlog-log-slower-than', '0');
  await redis.config('SET', 'slowlog-max-len', '100000');
  await redis.slowlog('RESET');
  const until = Date.now() + seconds * 1_000;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 500));
    const entries = (await redis.slowlog('GET', 100_000)) as [number, number, number, string[]][];
    await redis.slowlog('RESET');
    for (const [, , us, args] of entries) {
      let command = String(args[0]).toLowerCase();
      if (command === 'evalsha' || command === 'eval') command = names.get(command === 'eval' ? sha1(String(args[1])) : String(args[1])) ?? `${command} ${String(args[1]).slice(0, 8)}`;
      if (command === 'slowlog' || command === 'config') continue;
      const t = totals.get(command) ?? { calls: 0, us: 0 };
      t.calls += 1;
      t.us += us;
      totals.set(command, t);
    }
  }
} finally {
  await redis.config('SET', 'slowlog-log-slower-than', '10000');
  await redis.config('SET', 'slowlog-max-len', '128');
  redis.disconnect();
}
console.log('command'.padEnd(36), 'calls'.padStart(9), 'µs total'.padStart(11), 'µs / call'.padStart(10));
for (const [command, t] of [...totals].sort((a, b) => b[1].us - a[1].us).slice(0, 30)) {
  console.log(command.padEnd(36), String(t.calls).padStart(9), String(t.us).padStart(11), (t.us / t.calls).toFixed(1).padStart(10));
}
