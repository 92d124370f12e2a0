/**
 * `npm run chaos`: the full fault suite. Writes RELIABILITY.md with the figures and the command.
 * `npm run chaos -- --short` runs the shortened version that `npm test` also runs.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { ROOT } from '@sluice/test-support';
import { FULL, runChaos, SHORT } from './scenarios.ts';

const short = process.argv.includes('--short');
const started = Date.now();
const results = await runChaos({ ...(short ? SHORT : FULL), log: (l) => console.log(l) });
const ok = results.every((r) => r.lost === 0 && r.notFinal === 0 && r.doubleCharges === 0 && r.mismatches === 0 && r.maxInWindow <= 500 && r.status429 === 0);

const rows = results.map(
  (r) => `| ${r.name} | ${r.acknowledged} | ${r.lost + r.notFinal} | ${r.doubleCharges} | ${r.mismatches} | ${r.maxInWindow} | ${r.status429} | ${r.repaired} | ${(r.drainMs / 1000).toFixed(1)} s |`,
);
const notes = results.map((r) => `- **${r.name}**: ${JSON.stringify({ byStatus: r.byStatus, ...r.notes })}`);
const md = `# Reliability

The fault suite (\`test/chaos\`) starts the real processes — the API, two workers, the PG
simulator and a private \`redis-server\` with AOF (\`appendfsync always\`) in a temp directory —
and offers steady load (${(short ? SHORT : FULL).rate} payments/s) while the simulator injects the
standard mixed PG faults (test/support/faults.ts) throughout (10% answers after the read timeout, 3% drops after
commit, 3% ambiguous 500s and 2% 502s, half of them committed). Merchants retry with the same
Idempotency-Key until they get a 202. After each scenario it drains the backlog, runs
reconciliation, and checks every 202 against Sluice's records and the simulator's ledger.

Command: \`npm run chaos${short ? ' -- --short' : ''}\` — run ${new Date(started).toISOString()}, ${cpus().length} cores, Node ${process.version},
${((Date.now() - started) / 1000).toFixed(0)} s in all. Result: **${ok ? 'every money rule held' : 'A RULE WAS BROKEN'}**.

| scenario | acknowledged | lost or not final | double charges | mismatches | max in a rolling second at the PG | 429s | reconciliation repairs | time to drain |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

${notes.join('\n')}

A shortened version (scenarios 1, 3 and 4) runs in \`npm test\` (test/chaos.test.ts).
`;
writeFileSync(resolve(ROOT, 'RELIABILITY.md'), md);
console.log(md);
process.exit(ok ? 0 : 1);
