/**
 * The report's intake, faults and memory sections (overload lives in `report.ts`, with the
 * table helper).
 */
import { invariantLine } from '../analysis/outcomes.ts';
import { table } from './markdown.ts';
import { cpuFigures, sluiceCpu, type BenchResults, type CpuFigures } from '../analysis/results.ts';
import { CPU_BEFORE } from './cpu-before.ts';
import { bytes, count, max, mean, ms, percentile, ratio, secs } from '../analysis/stats.ts';
import type { DrivenResult } from '../profiles/intake.ts';
import type { MemoryReading } from '../profiles/memory.ts';

function statusList(m: Map<string, number>): string {
  return [...m].map(([k, v]) => `${count(v)} × ${k}`).join(', ') || 'none';
}

/** The report's intake section. */
export function intakeSection(r: BenchResults): string {
  const i = r.intake;
  if (!i) return '';
  const perReq = (cpuS: number, c: DrivenResult) => (Number.isFinite(cpuS) ? `${((cpuS * 1e6) / Math.max(1, c.requests)).toFixed(0)} µs` : 'n/a');
  const share = (cpuS: number, c: DrivenResult) => (Number.isFinite(cpuS) ? `${Math.round((100 * cpuS) / c.cpu.wallSeconds)} %` : 'n/a');
  const row = (name: string, c: DrivenResult): string[] => [
    name,
    count(c.rps),
    ms(percentile(c.latency, 50)),
    ms(percentile(c.latency, 99)),
    statusList(c.status),
    `${perReq(c.cpu.server, c)} (${share(c.cpu.server, c)})`,
    `${perReq(c.cpu.redis, c)} (${share(c.cpu.redis, c)})`,
    `${perReq(c.cpu.bench, c)} (${share(c.cpu.bench, c)})`,
  ];
  const rows: string[][] = [];
  i.noop.forEach((n, k) => {
    const s = i.sluice[k];
    rows.push(row(`${k + 1}: no-op Express JSON route`, n));
    if (s) rows.push(row(`${k + 1}: Sluice \`POST /v1/payments\``, s), ['', `**ratio ${ratio(i.ratios[k] ?? Number.NaN)}**`, '', '', '', '', '', '']);
  });
  return [
    '## 2. Intake',
    '',
    `Closed loop, ${i.connections} connections from one undici Pool; per server ${i.warmupS} s warm-up then ${i.seconds} s measured; ` +
      `${i.noop.length} round(s), each driving the no-op server and then Sluice with the same requests (\`POST /v1/payments\`, Bearer key, ` +
      'unique Idempotency-Key, JSON body). The no-op server is Express 5 with its defaults, `express.json()` and ' +
      '`res.status(202).json({ok:true})`, in its own process; the Sluice API runs alone (no worker), with a backlog ceiling far above ' +
      'what the run fills.',
    '',
    table(['round: server', 'req/s', 'p50', 'p99', 'answers', 'server CPU / request (share of a core)', 'Redis CPU / request', 'load generator CPU / request'], rows),
    '',
    `Ratio Sluice ÷ no-op, median of the rounds: **${ratio(i.ratio)}** (target ≥ 0.8). CPU per request is process CPU time over the ` +
      'measured window ÷ requests answered in it (Redis: the whole server, so neighbours on a shared Redis add to it). With 2 cores the ' +
      'server, Redis and the load generator compete for the same CPU: what Redis and the generator use is not available to the server.',
  ].join('\n');
}

/** The report's faults section. */
export function faultsSection(r: BenchResults): string {
  const f = r.faults;
  if (!f) return '';
  const o = f.outcomes;
  const id = o.inDoubt;
  const knobs = Object.entries(f.knobs)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const states = Object.entries(o.byStatus)
    .sort()
    .map(([k, v]) => `${k} ${count(v)}`)
    .join(', ');
  const p95 = (a: Float64Array) => secs(percentile(a, 95) / 1_000);
  return [
    '## 3. Faults',
    '',
    `${count(f.intake.offered)} payments offered open-loop at ${f.rate}/s, 1 in 50 declined by marker, gate on, 1 worker process; ` +
      `simulator at default latency with knobs: ${knobs} ` +
      "(PG_HEADERS_TIMEOUT_MS 5000, the read timeout's upper bound, so every late answer is a read timeout). In doubt = the payment record has `inDoubtAt`.",
    '',
    table(
      ['', 'value'],
      [
        ['accepted', `${count(f.intake.accepted)} of ${count(f.intake.offered)}`],
        ['in doubt', `${count(id.count)} (${((100 * id.count) / Math.max(1, f.intake.accepted)).toFixed(1)} %)`],
        ['PG calls per in-doubt payment: mean / p50 / p95 / max', `${mean(id.pgCalls).toFixed(2)} / ${percentile(id.pgCalls, 50)} / ${percentile(id.pgCalls, 95)} / ${max(id.pgCalls)}`],
        ['PG calls after the first confirm, per in-doubt payment: mean / p95 / max', `${mean(id.afterFirst).toFixed(2)} / ${percentile(id.afterFirst, 95)} / ${max(id.afterFirst)}`],
        ['PG calls per payment, all payments (mean)', mean(o.pgCalls).toFixed(3)],
        ['**p95 intake → final**, all payments', `**${p95(o.toFinal)}**`],
        ['p95 intake → final, in-doubt payments', p95(id.toFinal)],
        ['max intake → final', secs(max(o.toFinal) / 1_000)],
        ['final states', states],
        ['**invariants vs PG ledger**', `**${invariantLine(o.invariants)}**${f.drained ? '' : ' (NOT DRAINED)'}`],
        ['PG requests / max in rolling 1,000 ms / 429 / 503', `${count(f.pg.requests)} / ${f.pg.maxInWindow} / ${f.pg.status429} / ${f.pg.status503}`],
        ['PG requests by endpoint', Object.entries(f.pg.byEndpoint).map(([k, v]) => `${k} ${count(v)}`).join(', ')],
      ],
    ),
  ].join('\n');
}

function kindRows(reading: MemoryReading, n: number): string[][] {
  return [...reading.byKind]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .map(([kind, e]) => [kind, count(e.keys), bytes(e.bytes / n)]);
}

/** The report's memory section. */
export function memorySection(r: BenchResults): string {
  const m = r.memory;
  if (!m) return '';
  const n = Math.max(1, m.created);
  return [
    '## 4. Redis memory per payment',
    '',
    `${count(m.created)} payments created through the API with no worker running, then taken to a final state by one worker` +
      `${m.drained ? '' : ' (NOT DRAINED in time)'}. "Own keys" is MEMORY USAGE summed over the run's prefix (exact, and immune to other users of ` +
      'this Redis); `used_memory` Δ is the whole server against the reading before the first payment (includes allocator overhead and any neighbour).',
    '',
    table(
      ['state', 'own keys', 'bytes / payment (own keys)', 'used_memory Δ / payment'],
      [
        ['queued (intake only)', count(m.queued.keys), `**${bytes(m.queued.keysBytes / n)}**`, bytes(m.queued.usedMemoryDelta / n)],
        ['final (after the worker)', count(m.final.keys), `**${bytes(m.final.keysBytes / n)}**`, bytes(m.final.usedMemoryDelta / n)],
      ],
    ),
    '',
    'By kind of key, queued:',
    '',
    table(['kind', 'keys', 'bytes / payment'], kindRows(m.queued, n)),
    '',
    'By kind of key, final (completed BullMQ jobs are kept up to `removeOnComplete: {age: 300 s, count: 2000}`; payment data until the books hold it and the hot window passed; this scenario runs no drainer):',
    '',
    table(['kind', 'keys', 'bytes / payment'], kindRows(m.final, n)),
  ].join('\n');
}

/** The report's books section. */
export function booksSection(r: BenchResults): string {
  const b = r.books;
  if (!b) return '';
  const m = b.memory;
  return [
    '## 7. The books (PostgreSQL) and what Redis keeps',
    '',
    'One API, then a worker and a drainer, on a database of its own on the local PostgreSQL. Intake: closed loop, 32 connections, 4 s ' +
      'after 1 s of warm-up, three rounds without a drainer and three with one, alternating (the Lua scripts append to the books stream either way). Memory: ' +
      `MEMORY USAGE over the run's keys per payment (${count(m.payments)} payments), with the hot window at its floor here (62 s: ` +
      'RECONCILE_LOOKBACK_MS 60 s + 2 × 1 s) and the idempotency window at 420 s. Keys carry a 16-character prefix (the default `sluice` is 6). ' +
      'Past the windows, a payment\'s own keys are counted per payment; what else is left is a fixed residue, the same for any volume.',
    '',
    table(
      ['figure', 'value'],
      [
        ['intake without / with the drainer (medians)', `${b.intake.withoutDrainer.rps.toFixed(0)} / ${b.intake.withDrainer.rps.toFixed(0)} req/s; p99 ${b.intake.withoutDrainer.p99Ms.toFixed(1)} / ${b.intake.withDrainer.p99Ms.toFixed(1)} ms`],
        ['CPU per payment: API without / with the drainer; the drainer; PostgreSQL', (({ apiOff, apiOn, drainer, postgres }) => `${apiOff.toFixed(0)} / ${apiOn.toFixed(0)} µs; ${drainer.toFixed(0)} µs; ${postgres.toFixed(0)} µs`)(b.intake.cpuUsPerPayment)],
        ['intake rounds, in order (off, on, …)', b.intake.rounds.off.map((o, i) => `${o.rps.toFixed(0)}, ${b.intake.rounds.on[i]?.rps.toFixed(0) ?? '–'}`).join('; ') + ' req/s'],
        ['Redis per payment: queued (drained, lag 0)', bytes(m.queuedBytes)],
        ['Redis per payment: final, in the books', bytes(m.finalBytes)],
        ['Redis per payment: past the hot window (its own keys)', bytes(m.archivedBytes)],
        ['Redis per payment: past the idempotency window (its own keys)', bytes(m.afterIdempotencyBytes)],
        ['Redis, fixed residue past the hot window / the idempotency window (BullMQ\'s kept jobs and events, counters)', `${(m.archivedFixedBytes / 1024).toFixed(0)} KB / ${(m.afterFixedBytes / 1024).toFixed(0)} KB in all`],
        ['PostgreSQL per payment (row, history, PG calls, claims, indexes)', bytes(b.postgresBytesPerPayment)],
        [`drainer lag at ${count(b.lag.offeredRps)}/s offered for ${b.lag.seconds} s`, `p50 ${(b.lag.p50Ms / 1000).toFixed(2)} s, p99 ${(b.lag.p99Ms / 1000).toFixed(2)} s, max ${(b.lag.maxMs / 1000).toFixed(2)} s`],
        [`database away ${b.outage.outageSeconds} s at ${b.outage.rps}/s`, `caught up ${b.outage.caughtUpSeconds === null ? 'never' : `${b.outage.caughtUpSeconds.toFixed(1)} s`} after it returned; peak lag ${(b.outage.maxLagMs / 1000).toFixed(0)} s; ${b.outage.lost} missing`],
      ],
    ),
    '',
    'Past the hot window, by kind of key (bytes per payment):',
    '',
    table(['kind', 'bytes / payment'], m.archivedByKind.filter(([, v]) => v >= 0.5).map(([k, v]) => [k, bytes(v)])),
    ...(b.problems.length > 0 ? ['', 'Error lines of the processes (first ten):', '', ...b.problems.slice(0, 10).map((e) => `- \`${e.replace(/`/g, "'")}\``)] : []),
  ].join('\n');
}

/** Section 8: fair share between merchants on one PG. */
export function fairSection(r: BenchResults): string {
  const f = r.fair;
  if (!f) return '';
  const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const runRows = (kind: string, runs: typeof f.fair) =>
    runs.flatMap((run, i) =>
      run.merchants.map((m) => [
        `${kind} ${i + 1}`, m.id, `${m.rate}/s`, count(m.accepted), count(m.reached), secs(m.p50WaitMs), secs(m.p99WaitMs), secs(m.maxWaitMs),
        `${run.pg.maxInWindow}`, `${run.pg.status429}`, run.pg.utilisation.toFixed(3) + (run.drained ? '' : ' NOT DRAINED'),
      ]),
    );
  const w = f.weights;
  return [
    '## 8. Fair share between merchants',
    '',
    `On one PG, one worker process, open loop for ${f.seconds} s: merchant \`bench\` alone at 1,000/s ("one"), then with \`benchb\` at 20/s ` +
      '("two"), alternately, three times. The wait is from a payment\'s intake (its `createdAt`) to its first confirm reaching the ' +
      'simulator (the simulator\'s ledger, same clock). Utilisation: the PG\'s calls over its budget while a backlog is waiting.',
    '',
    table(
      ['run', 'merchant', 'offered', 'accepted', 'reached the PG', 'wait p50', 'wait p99', 'wait max', 'PG max / s', '429', 'utilisation'],
      [...runRows('one', f.single), ...runRows('two', f.fair)],
    ),
    ...(w
      ? [
          '',
          `Weights: both merchants at 600/s for ${w.seconds} s, \`bench\` with weight 3 and \`benchb\` with 1. Confirms reaching the PG ` +
            `while both had payments waiting (${secs(w.windowMs[0])} to ${secs(w.windowMs[1])} after the first intake, the end 1 s before the first ` +
            'of them had 99 % of its first confirms out):',
          '',
          table(['merchant', 'weight', 'accepted', 'confirms while both waited', 'share'], w.merchants.map((m) => {
            const total = w.merchants.reduce((a, x) => a + x.confirmsWhileBoth, 0);
            return [m.id, `${m.weight}`, count(m.accepted), count(m.confirmsWhileBoth), total ? `${((m.confirmsWhileBoth / total) * 100).toFixed(1)} %` : '–'];
          })),
          '',
          `Ratio ${w.ratio.toFixed(3)}:1 (3:1 asked); PG max ${w.pg.maxInWindow} in any rolling second, ${w.pg.status429} × 429${w.drained ? '' : '; NOT DRAINED'}.`,
        ]
      : []),
    ...(f.problems.length > 0 ? ['', 'Error lines of the processes (first ten):', '', ...f.problems.slice(0, 10).map((e) => `- \`${e.replace(/`/g, "'")}\``)] : []),
  ].join('\n');
}

/** Section 9: several PGs, one of them refusing for a while. */
export function providersSection(r: BenchResults): string {
  const p = r.providers;
  if (!p) return '';
  const [d0, d1] = p.downSeconds;
  const row = (label: string, x: typeof p.alone) => [
    label, x.pgaConfirmsPerSecond.toFixed(1), ...x.pgaPhases.map((v) => v.toFixed(1)), `${x.pgaMaxInWindow}`, count(x.pgbAccepted), `${x.pgbMaxInWindow}`,
    `${x.pga429 + x.pgb429}`, `${x.cpu.worker.toFixed(1)} / ${x.cpu.api.toFixed(1)}`,
  ];
  return [
    '## 9. Several PGs, one down',
    '',
    `Two providers, each its own simulator, one worker process, open loop for ${p.seconds} s: \`pga\` (500/s) offered 600/s, so it is backlogged ` +
      `throughout; \`pgb\` (200/s) offered 100/s. Three arms: "pga alone" (no \`pgb\`), "both healthy", and "pgb down" (refusing connections from ${d0} s to ${d1} s), ` +
      `each run ${p.rounds} times, the arms taking turns; a figure is the arms' median (the limits: the highest; 429s: all of them). ` +
      `pga's confirms/s are those reaching it from 2 s in to the end of the load, and in three parts: before (2–${d0} s), during (${d0}–${d1} s) and after the outage.`,
    '',
    table(
      ['run', 'pga confirms/s', `2–${d0} s`, `${d0}–${d1} s`, `${d1}–${p.seconds} s`, 'pga max / s', 'pgb accepted', 'pgb max / s', '429s', 'CPU s worker / API (load)'],
      [row('pga alone', p.alone), row('both healthy', p.healthy), row(`pgb down for ${d1 - d0} s`, p.both)],
    ),
    '',
    "The outage's seconds are compared with the same seconds alone, and the whole run with \"both healthy\": outside the outage pgb's own traffic " +
      '(100/s, then its backlog at up to 200/s once it recovers) costs the worker and the API CPU on this 2-core box, which the load generator, both ' +
      'simulators and Redis also share, whether pgb was ever down or not ("both healthy" against "pga alone" shows that cost).',
    '',
    overLimitLine(p, d0, d1),
    '',
    `pgb's payments after it recovered, over the ${p.rounds} "down" runs: ${count(p.pgb.final)} of ${count(p.pgb.accepted)} final (${count(p.pgb.approved)} approved), ` +
      `${p.pgb.mismatches} mismatches with its ledger, ${p.pgb.doubleCharges} double charges, drained at most ${p.pgb.drainedSeconds.toFixed(1)} s after the start; ` +
      `${p.crossed} payments at the other PG.`,
    ...(p.problems.length > 0 ? ['', 'Error lines of the processes (first ten):', '', ...p.problems.slice(0, 10).map((e) => `- \`${e.replace(/`/g, "'")}\``)] : []),
  ].join('\n');
}

/**
 * Section 9's over-limit attribution: each rolling second over a PG's limit with the slowest probe
 * of that simulator around it, and when the 429s came, so that a simulator that stalled (and read
 * apart-sent requests together) is told from a gate that sent too many.
 */
function overLimitLine(p: NonNullable<BenchResults['providers']>, d0: number, d1: number): string {
  const arms = [['both healthy', p.healthy], [`pgb down`, p.both], ['pga alone', p.alone]] as const;
  const episodes = arms.flatMap(([arm, x]) =>
    x.overLimit.map(
      (v) =>
        `${arm}: ${v.pg} ${v.count} at +${v.atS.toFixed(1)} s, its simulator's slowest probe then ${v.probeMs === null ? 'n/a' : `${v.probeMs.toFixed(0)} ms`}` +
        ` against a gate margin of ${v.marginMs === null ? 'n/a' : `${v.marginMs.toFixed(0)} ms`}`,
    ),
  );
  const at429 = arms.flatMap(([, x]) => x.at429);
  const when = at429.length === 0 ? '' : ` The 429s came at ${[...new Set(at429.map((t) => `+${t.toFixed(1)} s`))].slice(0, 10).join(', ')} from the start (pgb refused from +${d0} s to +${d1} s in the "down" arm).`;
  return (
    `Over a limit in a rolling second (every run, as each simulator stamped the arrivals; its probe is an admin request every 20 ms on the same event loop): ` +
    (episodes.length === 0 ? 'none.' : `${episodes.slice(0, 8).join('; ')}${episodes.length > 8 ? `; … (${episodes.length} episodes)` : ''}.`) +
    when
  );
}

/** Section 10: merchants' refunds racing under cancel faults. */
export function refundsSection(r: BenchResults): string {
  const f = r.refunds;
  if (!f) return '';
  const answers = Object.entries(f.answers).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${count(v)} × ${k}`).join(', ');
  return [
    '## 10. Refunds racing under cancel faults',
    '',
    `${count(f.payments)} payments (${count(f.approved)} approved), then per approved payment at once: cancels of 30 %, 40 % and 50 % and one of the ` +
      'whole balance left, each sent twice with its Idempotency-Key (a merchant retrying). The simulator commits 10 % of cancels and answers 500, ' +
      'drops 10 % after committing, and commits 10 % 3 s late (past the 2 s read timeout). One worker process, a drainer into a fresh books database.',
    '',
    `Answers: ${answers} (${count(f.requests)} requests). Cancels accepted: ${count(f.cancels.accepted)}; ${count(f.cancels.succeeded)} succeeded, ` +
      `${count(f.cancels.failed)} failed, ${f.cancels.pending} pending; ${count(f.inDoubt)} cancel answers in doubt (settled by queries, never resent).`,
    '',
    table(['figure', 'value'], [
      ['payments refunded beyond their amount at the PG', `${f.beyondBalance}`],
      ["payments with more PG cancels than Sluice's succeeded ones", `${f.doubleRefunds}`],
      ["payments whose refunded amount differs from the PG's (Redis / books)", `${f.mismatchesRedis} / ${f.mismatchesBooks}`],
      ['refunded in total: Sluice (Redis) / books / PG', `${count(f.refundedSluice)} / ${count(f.refundedBooks)} / ${count(f.refundedPg)}`],
      ['request → cancel settled, p50 / p99', `${(f.settleP50Ms / 1_000).toFixed(2)} s / ${(f.settleP99Ms / 1_000).toFixed(2)} s`],
      ['PG max in any rolling second / 429s', `${f.pgMaxInWindow} / ${f.pg429}`],
    ]),
    ...(f.problems.length > 0 ? ['', 'Error lines of the processes (first ten):', '', ...f.problems.slice(0, 10).map((e) => `- \`${e.replace(/`/g, "'")}\``)] : []),
  ].join('\n');
}

/** Section 11: webhook deliveries, fast and after an outage of the receiver. */
export function webhooksSection(r: BenchResults): string {
  const w = r.webhooks;
  if (!w) return '';
  const row = (label: string, x: typeof w.fast) => [label, count(x.payments), `${count(x.delivered)}`, `${x.duplicates}`, `${Math.round(x.p50Ms)} ms`, `${Math.round(x.p99Ms)} ms`, `${Math.round(x.maxMs)} ms`];
  return [
    '## 11. Webhooks',
    '',
    'One endpoint (every event type) on a receiver in the bench process, one worker process. "receiver up": 500 payments/s for 20 s, the receiver ' +
      `answering 204 at once. "receiver down": 100 payments/s for 30 s while the receiver answers 503 for the first ${w.outage.downSeconds} s, then 204; ` +
      'the retry schedule at 0.05 × the specification\'s (5 s → 0.25 s, 5 min → 15 s, 30 min → 90 s). Latency: the event\'s timestamp (the final ' +
      'state) to its arrival at the receiver.',
    '',
    table(['round', 'payments', 'delivered', 'twice', 'p50', 'p99', 'max'], [row('receiver up', w.fast), row('receiver down, then back', w.outage)]),
    '',
    `After the outage, the last event arrived ${w.outage.catchUpSeconds.toFixed(1)} s after the receiver was back; ${count(w.outage.withSeq)} carried their sequence number.`,
    ...(w.problems.length > 0 ? ['', 'Error lines of the processes (first ten):', '', ...w.problems.slice(0, 10).map((e) => `- \`${e.replace(/`/g, "'")}\``)] : []),
  ].join('\n');
}

/** Section 12: Redis beyond one node: failover under load, what WAIT costs, and API_PROCESSES. */
export function redisSection(r: BenchResults): string {
  const x = r.redis;
  if (!x) return r.cluster ? ['## 12. Redis beyond one node', '', clusterPart(r)].join('\n') : '';
  const f = x.failover;
  const arm = (label: string, a: typeof x.wait.on) => [label, count(a.rps), a.p50Ms.toFixed(1), a.p99Ms.toFixed(1), a.rounds.map(count).join(' / '), `${a.others}`];
  const answers = Object.entries(f.answers).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${count(v)} × ${k === '0' ? 'no answer' : k}`).join(', ');
  return [
    '## 12. Redis beyond one node',
    '',
    `Intake closed loop as in section 2 (${x.connections} connections, ${x.seconds} s measured per round, rounds taking turns, medians), the API alone on a ` +
      'primary with one replica of its own (AOF, `appendfsync always`).',
    '',
    table(['API', 'req/s', 'p50 ms', 'p99 ms', 'rounds req/s', 'answers other than 202'], [
      arm('API_PROCESSES=1', x.processes.one), arm('API_PROCESSES=2', x.processes.two),
      arm('REDIS_WAIT_REPLICAS=0', x.wait.off), arm('REDIS_WAIT_REPLICAS=1', x.wait.on),
    ]),
    '',
    'The box has 2 cores, shared by the load generator, Redis and its replica: a second API process can only take what the others leave.',
    '',
    `Failover: API and one worker process on a Sentinel group (1 primary, 2 replicas, 3 sentinels, down-after 1 s; \`min-replicas-to-write 1\`; ` +
      `\`REDIS_WAIT_REPLICAS=2\`: both replicas, since the sentinels may promote either), ${f.rate} payments/s offered for ${f.seconds} s (${count(f.offered)}) by merchants that retry anything but a 202 or a 4xx ` +
      'with the same key (250 ms apart, up to a minute). The primary killed -9 five times and brought back as a replica each time.',
    '',
    table(['kill', 'at', 'new primary named after', 'first 202 (sent after the kill) after'], f.kills.map((k, i) => [
      `${i + 1}`, `${k.atS.toFixed(1)} s`, `${(k.failoverMs / 1_000).toFixed(1)} s`, Number.isFinite(k.resumeMs) ? `${(k.resumeMs / 1_000).toFixed(1)} s` : 'never',
    ])),
    '',
    `Answers: ${answers} over ${count(f.requests)} requests; ${count(f.neverAccepted)} payments never accepted. Acknowledged ${count(f.invariants.acknowledged)}: ` +
      `${f.invariants.lost} lost, ${f.invariants.notFinal} not final, ${f.invariants.doubleCharges} double charges, ${f.invariants.mismatches} mismatches with the PG's ledger; ` +
      `PG max ${f.pgMaxInWindow} in any rolling second, ${f.pg429} × 429.`,
    ...(f.problems.length > 0 ? ['', 'Error lines of the processes (first ten):', '', ...f.problems.slice(0, 10).map((e) => `- \`${e.replace(/`/g, "'")}\``)] : []),
    ...(r.cluster ? ['', clusterPart(r)] : []),
  ].join('\n');
}

/** Section 12's Redis Cluster part: the overload on 3 primaries against one redis-server. */
function clusterPart(r: BenchResults): string {
  const x = r.cluster!;
  const arm = (label: string, a: typeof x.single, cpu: string) => [
    label, a.utilisation.map((u) => u.toFixed(3)).join(' / '), `${a.maxInWindow}`, `${a.status429}`, a.intakeP50Ms.toFixed(1), a.intakeP99Ms.toFixed(1),
    `${a.lost} / ${a.notFinal} / ${a.doubleCharges} / ${a.mismatches}`, cpu,
  ];
  const total = x.primaries.reduce((a, p) => a + p.paymentKeys, 0);
  return [
    '### Redis Cluster',
    '',
    `The overload profile (${x.rate} payments/s for ${x.seconds} s, one worker process, the gate) on a Redis Cluster of 3 primaries started here, ` +
      `and on one redis-server started here with the same settings (nothing persisted), ${x.rounds} round(s) each, taking turns.`,
    '',
    table(['Redis', 'utilisation (rounds)', 'PG max / rolling s', '429s', 'intake p50 ms', 'intake p99 ms', 'lost / not final / double / mismatched', 'Redis CPU s'], [
      arm('one redis-server', x.single, x.singleCpuSeconds.toFixed(1)),
      arm('cluster, 3 primaries', x.cluster, x.primaries.map((p) => p.cpuSeconds.toFixed(1)).join(' + ')),
    ]),
    '',
    table(['primary', 'slots of', 'payment shards', 'payment hashes', 'CPU s'], x.primaries.map((p) => [
      `${p.port}`, p.families.join(', ') || '—', `${p.shards}`, `${count(p.paymentKeys)} (${total > 0 ? ((100 * p.paymentKeys) / total).toFixed(0) : 0} %)`, p.cpuSeconds.toFixed(1),
    ])),
    '',
    `Sluice's keys on the cluster (REDIS_SHARDS=${x.primaries.reduce((a, p) => a + p.shards, 0)}): the claims at the root, BullMQ's queues and the gate in slots of their own, and each payment shard's state in one ` +
      '(README, "Redis Cluster"; docs/redis-cluster.md). One redis-server runs one shard, as `npm start` does.',
    ...(x.problems.length > 0 ? ['', 'Error lines of the processes (first ten):', '', ...x.problems.slice(0, 10).map((e) => `- \`${e.replace(/`/g, "'")}\``)] : []),
  ].join('\n');
}

/**
 * Section 13: CPU per payment. Sluice's column is the median of its overload runs with the gate
 * and one worker process (section 1); "before the cuts" is the same measurement of the code
 * before issue "Lean hot paths" (docs/perf.md, with the command that took it); the naive gateway
 * ran in this bench run, under the same load.
 */
export function cpuSection(r: BenchResults): string {
  const s = sluiceCpu(r);
  if (!s) return '';
  const naive = r.naive && r.naive.drained ? cpuFigures(r.naive) : null;
  const gateRuns = r.overload.filter((o) => o.config.key === 'gate1' && o.drained).length;
  const cols: [string, CpuFigures | null][] = [[`Sluice (median of ${gateRuns})`, s], [CPU_BEFORE.label, CPU_BEFORE.figures], ['naive BullMQ gateway', naive]];
  const row = (label: string, f: (x: CpuFigures) => string) => [label, ...cols.map(([, x]) => (x ? f(x) : 'not run'))];
  const two = (x: number) => x.toFixed(2);
  return [
    '## 13. CPU per payment',
    '',
    `The overload's load (${count(r.settings.rate)}/s offered for ${r.settings.seconds} s, section 1), measured from the first send to the end of the drain: ` +
      "each process's CPU from /proc, Redis's from INFO (user + sys), its commands from INFO commandstats (scripts' own commands included). " +
      'The naive gateway (apps/bench/src/profiles/naive-gateway.ts) is Express + one BullMQ job per payment + BullMQ\'s limiter at 500/s, ' +
      'no idempotency, claims, fair share, gate, in-doubt handling or books. How these figures were taken apart, and what was cut: docs/perf.md.',
    '',
    table(['per payment', ...cols.map(([l]) => l)], [
      row('API CPU per intake (ms)', (x) => two(x.apiMs)),
      row('worker CPU per payment drained (ms)', (x) => two(x.workerMs)),
      row('Redis CPU per payment (ms)', (x) => two(x.redisMs)),
      row('Redis commands (of which script calls)', (x) => `${x.commands.toFixed(1)} (${x.scripts.toFixed(1)})`),
      row('intake p50 / p99 from send (ms)', (x) => `${Math.round(x.p50)} / ${Math.round(x.p99)}`),
    ]),
  ].join('\n');
}
