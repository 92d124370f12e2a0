/**
 * `npm run chaos`: the full fault suite, on one Redis, then on a Sentinel group, then on a Redis
 * Cluster. Writes
 * RELIABILITY.md with the figures and the command. `npm run chaos -- --short` runs the shortened
 * version that `npm test` also runs.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { ROOT } from '@sluice/test-support';
import { FULL, runChaos, SHORT, type ScenarioResult } from './scenarios.ts';

const short = process.argv.includes('--short');
const started = Date.now();
const options = short ? SHORT : FULL;
const single = await runChaos({ ...options, log: (l) => console.log(l) });
const sentinel = await runChaos({ ...options, redis: 'sentinel', log: (l) => console.log(`[sentinel] ${l}`) });
const cluster = await runChaos({ ...options, redis: 'cluster', log: (l) => console.log(`[cluster] ${l}`) });
const ok = [...single, ...sentinel, ...cluster].every((r) => r.lost === 0 && r.notFinal === 0 && r.doubleCharges === 0 && r.mismatches === 0 && r.maxInWindow <= 500 && r.status429 === 0);

const rows = (results: ScenarioResult[]) =>
  results.map(
    (r) => `| ${r.name} | ${r.acknowledged} | ${r.lost + r.notFinal} | ${r.doubleCharges} | ${r.mismatches} | ${r.maxInWindow} | ${r.status429} | ${r.repaired} | ${(r.drainMs / 1000).toFixed(1)} s |`,
  ).join('\n');
const notes = (results: ScenarioResult[]) => results.map((r) => `- **${r.name}**: ${JSON.stringify({ byStatus: r.byStatus, ...r.notes })}`).join('\n');
const HEADER = `| scenario | acknowledged | lost or not final | double charges | mismatches | max in a rolling second at the PG | 429s | reconciliation repairs | time to drain |
|---|---|---|---|---|---|---|---|---|`;
const md = `# Reliability

The fault suite (\`test/chaos\`) starts the real processes — the API, two workers, the PG
simulator and a private \`redis-server\` with AOF (\`appendfsync always\`) in a temp directory —
and offers steady load (${options.rate} payments/s) while the simulator injects the
standard mixed PG faults (test/support/faults.ts) throughout (10% answers after the read timeout, 3% drops after
commit, 3% ambiguous 500s and 2% 502s, half of them committed). Merchants retry with the same
Idempotency-Key until they get a 202. After each scenario it drains the backlog, runs
reconciliation, and checks every 202 against Sluice's records and the simulator's ledger.

Command: \`npm run chaos${short ? ' -- --short' : ''}\` — run ${new Date(started).toISOString()}, ${cpus().length} cores, Node ${process.version},
${((Date.now() - started) / 1000).toFixed(0)} s in all. Result: **${ok ? 'every money rule held' : 'A RULE WAS BROKEN'}**.

## One Redis

${HEADER}
${rows(single)}

${notes(single)}

## On Sentinel

The same scenarios on a Sentinel group of the suite's own: 1 primary and 2 replicas (each with the
AOF above and \`min-replicas-to-write 1\`) and 3 sentinels (down after 1 s); every process follows
the sentinels (\`REDIS_SENTINELS\`) and waits for both replicas (\`REDIS_WAIT_REPLICAS=2\`: the sentinels
may promote either). The Redis kill is a kill -9 of the primary: the sentinels promote a replica, and
the old primary comes back as a replica of it.

${HEADER}
${rows(sentinel)}

${notes(sentinel)}

## On Redis Cluster

The same scenarios on a Redis Cluster of the suite's own: 3 primaries with a replica each (the AOF
and \`min-replicas-to-write 1\` above; \`cluster-node-timeout\` 2 s); every process runs on the
cluster (\`REDIS_CLUSTER_NODES\`, a hash-tagged prefix) and waits for a replica at the primary of
the payments' slot (\`REDIS_WAIT_REPLICAS=1\`). The Redis kill is a kill -9 of that primary: the
cluster promotes its replica, and the old primary comes back as a replica of it.

${HEADER}
${rows(cluster)}

${notes(cluster)}

A shortened version (scenarios 1, 3 and 4 on one Redis, 1 and 3 on Sentinel and on Cluster) runs
in \`npm test\` (test/chaos.test.ts).
`;
writeFileSync(resolve(ROOT, 'RELIABILITY.md'), md);
console.log(md);
process.exit(ok ? 0 : 1);
