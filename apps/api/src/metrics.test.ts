/**
 * `/metrics`: operator auth, this process's intake counter, the cluster figures read from Redis
 * and BullMQ, and the metric names the alert rules in ops/alerts.yml depend on.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Transitions } from '@sluice/store';
import { intakeOutcome } from './metrics.ts';
import { get, paymentBody, postPayment, startTestApp, type TestApp } from './test-support.ts';

let t: TestApp;
const basic = (user: string, pass: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });
const ops = () => basic('ops', 'ops-password-1');

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t.close();
});

/** The value of one sample line, e.g. `sluice_queue_jobs{queue="confirm",state="waiting"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(): Promise<string> {
  const res = await get(t, '/metrics', undefined, ops());
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text;
}

/** The worker's recording script, as the sender calls it. */
const recorder = (): Transitions =>
  new Transitions(t.redis, t.store.keys, {
    breaker: { consecutiveFailures: 20, failureRate: 0.5, minCalls: 40, windowMs: 10_000, openMs: 5_000, probeIntervalMs: 1_000, closeAfter: 2 },
    maxQueueAgeMs: 60_000,
    retentionMs: 60_000,
  });

describe('/metrics', () => {
  it('needs the operator credentials', async () => {
    expect((await get(t, '/metrics')).status).toBe(401);
    const wrong = await get(t, '/metrics', undefined, basic('ops', 'not-the-password'));
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic /);
    // A merchant key is not an operator credential.
    expect((await get(t, '/metrics', t.keyA)).status).toBe(401);
  });

  it('counts intake by outcome, and shows the backlog and the fair queues', async () => {
    const body = paymentBody();
    const posted = [await postPayment(t, { idem: 'm-1', body }), await postPayment(t, {}), await postPayment(t, {})];
    expect(posted.map((p) => p.status)).toEqual([202, 202, 202]);
    expect((await postPayment(t, { idem: 'm-1', body })).headers.get('idempotent-replayed')).toBe('true');
    expect((await postPayment(t, { body: { amount: -1 } })).status).toBe(400);
    expect((await postPayment(t, { key: null })).status).toBe(401);

    const text = await scrape();
    expect(sample(text, 'sluice_intake_requests_total{outcome="accepted"}')).toBe(3);
    expect(sample(text, 'sluice_intake_requests_total{outcome="replayed"}')).toBe(1);
    expect(sample(text, 'sluice_intake_requests_total{outcome="invalid"}')).toBe(1);
    expect(sample(text, 'sluice_intake_requests_total{outcome="unauthorized"}')).toBe(1);
    expect(sample(text, 'sluice_payments_created_total')).toBe(3);
    expect(sample(text, 'sluice_backlog_payments')).toBe(3);
    // In m_a's fair queue, no job yet (no worker admits here).
    expect(sample(text, 'sluice_queue_jobs{queue="confirm",state="waiting"}')).toBe(0);
    expect(sample(text, 'sluice_fair_waiting_merchants')).toBe(1);
    expect(sample(text, 'sluice_fair_admitted_payments')).toBe(0);
    expect(sample(text, 'sluice_queue_jobs{queue="resolve",state="waiting"}')).toBe(0);
    expect(sample(text, 'sluice_in_doubt_payments')).toBe(0);
    // Idle PG (no confirm yet): the ETA assumes the PG's limit, 500/s.
    expect(sample(text, 'sluice_backlog_eta_seconds')).toBe(1);
    expect(sample(text, 'sluice_breaker_state')).toBe(0);
    expect(text).toContain('\nprocess_cpu_user_seconds_total ');
    expect(sample(text, 'sluice_backlog_oldest_age_seconds')).toBeLessThan(60);

    // One payment has waited ten minutes (its backlog entry backdated on the Redis clock): the
    // oldest-age gauge shows it, though the ETA (three payments at 500/s) stays at a second.
    const [oldest] = await t.redis.zrange(t.store.keys.open, 0, 0);
    const [sec, usec] = await t.redis.time();
    await t.redis.zadd(t.store.keys.open, 'XX', Number(sec) * 1_000 + Math.floor(Number(usec) / 1_000) - 600_000, oldest!);
    const aged = await scrape();
    expect(sample(aged, 'sluice_backlog_oldest_age_seconds')).toBeGreaterThanOrEqual(600);
    expect(sample(aged, 'sluice_backlog_oldest_age_seconds')).toBeLessThan(660);
    expect(sample(aged, 'sluice_backlog_eta_seconds')).toBe(1);
  });

  it('shows the cluster-wide PG calls, 429s and 503s, breaker and reconciliation from Redis', async () => {
    // The worker's own script records the calls: a confirm approved, and a 429 on an inquiry.
    const transitions = recorder();
    await transitions.record({ call: 'confirm', outcome: 'approved', pgFailed: false, httpStatus: 200 });
    await transitions.record({ call: 'confirm', outcome: 'approved', pgFailed: false, httpStatus: 200 });
    await transitions.record({ call: 'inquire', outcome: 'not_sent', pgFailed: false, httpStatus: 429 });
    await t.redis.hset(t.store.keys.counters, 'recon:repaired', 2, 'recon:orphans', 1, 'recon:runs', 7);
    // As the refund script counts merchants' cancels.
    await t.redis.hset(t.store.keys.counters, 'refund:requested', 5, 'refund:succeeded', 3, 'refund:failed', 1, 'refund:amount', 12_000);
    // As the webhook deliverer counts.
    await t.redis.hset(t.store.keys.counters, 'webhook:delivered', 9, 'webhook:failedTries', 4, 'webhook:gaveUp', 1, 'webhook:disabled', 2);
    await t.redis.hset(t.store.keys.breaker, 'state', 'open', 'since', Date.now(), 'reason', 'test');

    const text = await scrape();
    expect(sample(text, 'sluice_pg_calls_total{endpoint="confirm",outcome="approved"}')).toBe(2);
    expect(sample(text, 'sluice_pg_calls_total{endpoint="inquire",outcome="not_sent"}')).toBe(1);
    expect(sample(text, 'sluice_pg_refused_total{status="429"}')).toBe(1);
    expect(sample(text, 'sluice_pg_refused_total{status="503"}')).toBe(0);
    expect(sample(text, 'sluice_reconcile_total{result="repaired"}')).toBe(2);
    expect(sample(text, 'sluice_reconcile_total{result="orphans"}')).toBe(1);
    expect(sample(text, 'sluice_reconcile_total{result="runs"}')).toBe(7);
    expect(sample(text, 'sluice_breaker_state')).toBe(2);
    expect(sample(text, 'sluice_refunds_total{result="requested"}')).toBe(5);
    expect(sample(text, 'sluice_refunds_total{result="succeeded"}')).toBe(3);
    expect(sample(text, 'sluice_refunds_total{result="failed"}')).toBe(1);
    expect(sample(text, 'sluice_refunded_amount_total')).toBe(12_000);
    expect(sample(text, 'sluice_webhooks_total{result="delivered"}')).toBe(9);
    expect(sample(text, 'sluice_webhooks_total{result="failedTries"}')).toBe(4);
    expect(sample(text, 'sluice_webhooks_total{result="gaveUp"}')).toBe(1);
    expect(sample(text, 'sluice_webhooks_total{result="disabled"}')).toBe(2);
    expect(sample(text, 'sluice_redis_memory_used_bytes')).toBeGreaterThan(0);
    await t.redis.del(t.store.keys.breaker);
  });

  it('charts a PG call in the second it was sent, not the one it was answered in', async () => {
    const transitions = recorder();
    const k = t.store.keys;
    const nowSec = Number((await t.redis.time())[0]);
    const before = async (sec: number) => Number((await t.redis.hget(k.pgRate, `${sec}:cancel`)) ?? 0);
    const [earlier, now] = [await before(nowSec - 3), await before(nowSec)];
    // Sent three seconds ago (a slow answer), sent now (no time given), and never sent.
    await transitions.record({ call: 'cancel', outcome: 'canceled', pgFailed: false, httpStatus: 200, sent: (nowSec - 3) * 1_000 + 999 });
    await transitions.record({ call: 'cancel', outcome: 'canceled', pgFailed: false, httpStatus: 200 });
    await transitions.record({ call: 'cancel', outcome: 'not_sent', pgFailed: true, sent: 'unsent' });
    expect(await before(nowSec - 3)).toBe(earlier + 1);
    // 'now' is the script's own second: this one, or the next if the second turned meanwhile.
    expect((await before(nowSec)) + (await before(nowSec + 1))).toBe(now + 1);
    // The unsent call is still counted with its outcome, just not charted as a call to the PG.
    expect(Number(await t.redis.hget(k.counters, 'pg:cancel:not_sent'))).toBeGreaterThanOrEqual(1);
  });

  it('has every metric the alert rules in ops/alerts.yml use', async () => {
    const rules = parse(readFileSync(new URL('../../../ops/alerts.yml', import.meta.url), 'utf8')) as {
      groups: { rules: { alert: string; expr: string; annotations: { runbook: string } }[] }[];
    };
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThanOrEqual(7);
    const text = await scrape();
    const runbook = readFileSync(new URL('../../../RUNBOOK.md', import.meta.url), 'utf8');
    for (const r of all) {
      const names = [...r.expr.matchAll(/\b(sluice_[a-z0-9_]+)/g)].map((m) => m[1]!);
      expect(names.length, r.alert).toBeGreaterThan(0);
      for (const n of names) expect(text, `${r.alert} uses ${n}`).toContain(`\n# TYPE ${n} `);
      // A selector's label value is one the metric has (a typo would match nothing, silently).
      for (const m of r.expr.matchAll(/\b(sluice_[a-z0-9_]+)\{([a-z_]+)="([^"]*)"\}/g)) {
        expect(text, `${r.alert} selects ${m[0]}`).toMatch(new RegExp(`\\n${m[1]}\\{[^}]*${m[2]}="${m[3]}"[^}]*\\} `));
      }
      // Each alert's runbook section exists, and its link points at it.
      expect(runbook, r.alert).toContain(`## ${r.alert}\n`);
      expect(r.annotations.runbook).toBe(`RUNBOOK.md#${r.alert.toLowerCase()}`);
    }
    // And every alert section of the runbook has its alert.
    const sections = [...runbook.matchAll(/^## (Sluice\w+)$/gm)].map((m) => m[1]);
    expect(sections.sort()).toEqual(all.map((r) => r.alert).sort());
  });
});

describe('intakeOutcome', () => {
  it('maps every documented intake answer to a bounded label', () => {
    expect(intakeOutcome(202, false, true)).toBe('accepted');
    expect(intakeOutcome(202, true, true)).toBe('replayed');
    expect(intakeOutcome(409, false, true)).toBe('duplicate');
    expect(intakeOutcome(422, false, true)).toBe('idempotency_key_reused');
    expect(intakeOutcome(503, false, true)).toBe('backlog_full');
    expect(intakeOutcome(500, false, true)).toBe('error');
    expect(intakeOutcome(418, false, true)).toBe('other');
    expect(intakeOutcome(202, false, false)).toBe('aborted');
  });
});
