/**
 * The dashboard in a real browser over the real stack: headless Chromium (playwright-core, the
 * system's /usr/bin/chromium; never a downloaded browser) opens `/dashboard` while a few hundred
 * payments go through, and the test checks that the figures move, that the page shows what the
 * API says, and that the final-state totals match every payment's own status once drained.
 * A screenshot lands in test-output/dashboard.png.
 *
 * Chromium missing is a failure, not a skip: CI installs it (.ci/run), and a skipped browser test
 * would let a broken page through.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, ROOT } from '@sluice/test-support';
import { ADMIN, DEMO_KEY, drain, postPayment, startStack, type Stack } from './support/stack.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUT = resolve(ROOT, 'test-output');
const FINAL = ['APPROVED', 'DECLINED', 'FAILED', 'CANCELED'] as const;
const LIMIT = 50;

interface Frame {
  at: number;
  pg: Record<'confirm' | 'inquire' | 'cancel' | 'transactions', number[]>;
  backlog: number;
  inDoubt: number;
  now: { pgRps: number; confirmRps: number; intakeRps: number };
  totals: { created: number; final: Record<string, number> };
  pgClient: { processes: number; readTimeoutMs: Record<string, number | null> };
  callsPerPayment: Record<'confirm' | 'inquire' | 'cancel' | 'transactions', number> | null;
  fair: { admitted: number; merchants: number; top: unknown[] };
}

let s: Stack;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: the dashboard browser test needs it (apt-get install chromium, as .ci/run does; or set CHROMIUM_PATH). Do not run "npx playwright install".`);
  }
  mkdirSync(OUT, { recursive: true });
  // A PG limit of 50/s under an intake of 100/s: a backlog builds and drains in seconds, so
  // the backlog and ETA figures are not all zeros, and the gate's cap shows on the chart.
  s = await startStack({
    sim: { SIM_LATENCY_MEDIAN_MS: '30', SIM_LATENCY_P99_MS: '300', SIM_DECLINE_RATE: '0.1' },
    env: { PG_RATE_LIMIT: String(LIMIT) },
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});
afterAll(async () => {
  await browser?.close();
  await s?.stop();
});

/** A figure as the page shows it: the raw `data-value` of the element with that test id. */
async function shown(page: Page, id: string): Promise<number> {
  const v = await page.getByTestId(id).getAttribute('data-value');
  return Number(v);
}

/** Several figures read at once, from one drawn frame (separate reads could straddle a refresh). */
async function shownAll(page: Page, ids: string[]): Promise<Record<string, number>> {
  // Runs in the page; the tests are typed without the DOM library, hence the narrow type.
  type Doc = { querySelector(selector: string): { getAttribute(name: string): string | null } | null };
  const values = await page.evaluate((list) => {
    const doc = (globalThis as unknown as { document: Doc }).document;
    return list.map((id) => doc.querySelector(`[data-testid="${id}"]`)?.getAttribute('data-value') ?? null);
  }, ids);
  return Object.fromEntries(ids.map((id, i) => [id, Number(values[i])]));
}

/** Waits for the page's next poll of /dashboard/data, and for the page to have drawn it. */
async function nextFrame(page: Page): Promise<Frame> {
  const res = await page.waitForResponse((r) => r.url().endsWith('/dashboard/data') && r.status() === 200);
  const frame = (await res.json()) as Frame;
  await expect.poll(() => shown(page, 'updated-at'), { timeout: 3_000 }).toBeGreaterThanOrEqual(frame.at);
  return frame;
}

async function apiData(): Promise<Frame> {
  const auth = Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64');
  return getJson<Frame>(`${s.apiUrl}/dashboard/data`, { headers: { authorization: `Basic ${auth}` } });
}

describe('dashboard in a browser', () => {
  it('answers 401 without credentials, in a browser and to a plain request', async () => {
    const ctx = await browser.newContext();
    const wrong = await browser.newContext({ httpCredentials: { username: ADMIN.user, password: 'not-the-password' } });
    try {
      const res = await ctx.request.get(`${s.apiUrl}/dashboard`);
      expect(res.status()).toBe(401);
      expect(res.headers()['www-authenticate']).toMatch(/^Basic /);
      expect(await res.text()).not.toContain('data-testid');
      // Headless Chromium has no one to ask for a password: the navigation fails on the challenge.
      await expect((await ctx.newPage()).goto(`${s.apiUrl}/dashboard`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
      expect((await wrong.request.get(`${s.apiUrl}/dashboard/data`)).status()).toBe(401);
    } finally {
      await ctx.close();
      await wrong.close();
    }
    expect((await fetch(`${s.apiUrl}/dashboard/data`)).status).toBe(401);
  });

  it('works when opened with the credentials in the URL (http://user:pw@host/dashboard)', async () => {
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      const url = new URL(`${s.apiUrl}/dashboard`);
      url.username = ADMIN.user;
      url.password = ADMIN.password;
      const failed: string[] = [];
      page.on('pageerror', (e) => failed.push(e.message));
      // The page's polls: fetch refuses a URL that carries credentials, so they must come from location.origin.
      const polled = page.waitForResponse((r) => r.url().endsWith('/dashboard/data') && r.status() === 200, { timeout: 10_000 });
      expect((await page.goto(url.href))?.status()).toBe(200);
      const data = await polled;
      expect(new URL(data.url()).username).toBe('');
      await expect.poll(() => shown(page, 'updated-at'), { timeout: 5_000 }).toBeGreaterThan(0);
      expect(failed).toEqual([]);
    } finally {
      await ctx.close();
    }
  });

  it('shows the figures moving under load, as the API reports them, and the final totals once drained', async () => {
    const ctx = await browser.newContext({ httpCredentials: { username: ADMIN.user, password: ADMIN.password }, viewport: { width: 1400, height: 1000 } });
    const page = await ctx.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    try {
      const res = await page.goto(`${s.apiUrl}/dashboard`);
      expect(res?.status()).toBe(200);
      await expect.poll(() => page.getByTestId('status').textContent(), { timeout: 5_000 }).toBe('live');
      expect(await shown(page, 'pg-limit')).toBe(LIMIT);
      const intakeBefore = await shown(page, 'intake-total');
      expect(intakeBefore).toBe(0);

      // Load: 10 batches of 40, one a second (long enough to watch the figures move while it
      // runs, on a slow machine too); every tenth has no PG session (FAILED, a failure row).
      const run = Date.now().toString(36);
      const ids: string[] = [];
      const load = (async () => {
        for (let b = 0; b < 10; b++) {
          const started = Date.now();
          const posts = await Promise.all(
            Array.from({ length: 40 }, (_, j) => {
              const i = b * 40 + j;
              const paymentKey = i % 10 === 0 ? `sim_nosession_${run}_${i}` : `pk_${run}_${i}`;
              return postPayment(s.apiUrl, { paymentKey, orderId: `dash-${run}-${i}`, amount: 1_000 + i }, `dash-${run}-${i}`);
            }),
          );
          for (const p of posts) {
            expect(p.status).toBe(202);
            ids.push(p.body.id);
          }
          await new Promise((r) => setTimeout(r, Math.max(0, 1_000 - (Date.now() - started))));
        }
      })();

      // While the load runs: the PG rate and the intake count move.
      await expect.poll(() => shown(page, 'pg-rps'), { timeout: 10_000, interval: 250 }).toBeGreaterThan(0);
      await expect.poll(() => shown(page, 'pg-rps-confirm'), { timeout: 10_000, interval: 250 }).toBeGreaterThan(0);
      const intake1 = await shown(page, 'intake-total');
      await expect.poll(() => shown(page, 'intake-total'), { timeout: 10_000, interval: 250 }).toBeGreaterThan(intake1);
      expect(intake1).toBeGreaterThan(0);
      await expect.poll(() => shown(page, 'backlog'), { timeout: 5_000, interval: 250 }).toBeGreaterThan(0);
      expect(await shown(page, 'eta')).toBeGreaterThan(0);

      // What the page shows is what the API answered it, figure for figure: the figures of one
      // drawn frame (read together, and only once that frame is the one on screen).
      let frame = await nextFrame(page);
      const tiles = ['updated-at', 'backlog', 'in-doubt', 'pg-rps', 'intake-total', 'fair-merchants', 'fair-admitted'];
      let onScreen = await shownAll(page, tiles);
      for (let i = 0; i < 5 && onScreen['updated-at'] !== frame.at; i++) {
        frame = await nextFrame(page);
        onScreen = await shownAll(page, tiles);
      }
      expect(onScreen).toEqual({
        'updated-at': frame.at, backlog: frame.backlog, 'in-doubt': frame.inDoubt, 'pg-rps': frame.now.pgRps, 'intake-total': frame.totals.created,
        'fair-merchants': frame.fair.merchants, 'fair-admitted': frame.fair.admitted,
      });
      // The merchants table lists the frame's merchants waiting, one row each.
      expect(await page.locator('[data-testid="merchants"] tbody tr').count()).toBe(frame.fair.top.length);
      // The gate holds the PG to its limit in every second the chart shows.
      expect(Math.max(...frame.pg.confirm.map((c, i) => c + frame.pg.inquire[i]! + frame.pg.cancel[i]! + frame.pg.transactions[i]!))).toBeLessThanOrEqual(LIMIT);
      // And an independent read at about the same time agrees, within what a second of load moves.
      const api = await apiData();
      expect(Math.abs(api.totals.created - frame.totals.created)).toBeLessThanOrEqual(100);
      expect(Math.abs(api.backlog - frame.backlog)).toBeLessThanOrEqual(150);

      await page.screenshot({ path: resolve(OUT, 'dashboard-under-load.png'), fullPage: true });
      await load;
      expect(ids).toHaveLength(400);
      await drain(s.redis, s.prefix, 60_000);

      // Drained: the page settles on an empty backlog, nothing in doubt, 400 accepted.
      await expect.poll(() => shown(page, 'backlog'), { timeout: 5_000 }).toBe(0);
      await expect.poll(() => shown(page, 'in-doubt'), { timeout: 5_000 }).toBe(0);
      await expect.poll(() => shown(page, 'intake-total'), { timeout: 5_000 }).toBe(400);

      // The final-state totals are the tally of every payment's own status, as merchants see it.
      const tally: Record<string, number> = { APPROVED: 0, DECLINED: 0, FAILED: 0, CANCELED: 0 };
      for (const id of ids) {
        const p = await getJson<{ status: string }>(`${s.apiUrl}/v1/payments/${id}`, { headers: { authorization: `Bearer ${DEMO_KEY}` } });
        expect(FINAL).toContain(p.status);
        tally[p.status]!++;
      }
      expect(tally.FAILED).toBeGreaterThanOrEqual(40);
      expect(tally.APPROVED).toBeGreaterThan(250);
      const settled = await nextFrame(page);
      for (const st of FINAL) {
        expect(await shown(page, `final-${st}`), st).toBe(tally[st]);
        expect(settled.totals.final[st], st).toBe(tally[st]);
      }

      // The PG client's figures: the worker's read timeout in force and PG calls per payment, as
      // the API reports them (the worker publishes its figures every 2 s).
      const pgFrame = await nextFrame(page);
      expect(pgFrame.pgClient.processes).toBe(1);
      expect(pgFrame.pgClient.readTimeoutMs.confirm).toBeGreaterThan(0);
      await expect.poll(() => shown(page, 'timeout-confirm'), { timeout: 5_000 }).toBe(pgFrame.pgClient.readTimeoutMs.confirm);
      const cpp = pgFrame.callsPerPayment!;
      expect(cpp.confirm).toBeGreaterThanOrEqual(1);
      expect(await shown(page, 'calls-per-payment')).toBeCloseTo(cpp.confirm + cpp.inquire + cpp.cancel + cpp.transactions, 10);

      // The latest failures table lists the payments without a PG session.
      expect(await shown(page, 'failures-count')).toBeGreaterThan(0);
      await expect(page.getByTestId('failures').textContent()).resolves.toContain('NOT_FOUND_PAYMENT_SESSION');

      await page.screenshot({ path: resolve(OUT, 'dashboard.png'), fullPage: true });
      expect(existsSync(resolve(OUT, 'dashboard.png'))).toBe(true);
      // No script error and no CSP violation: the inline script ran as allowed by its hash.
      expect(problems).toEqual([]);
    } finally {
      await ctx.close();
    }
  });
});
