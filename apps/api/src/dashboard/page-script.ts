/**
 * The dashboard's browser code, as a string inlined into the page (there is no CDN and no build
 * step for the browser: operators may run Sluice where nothing outside answers). Plain DOM and
 * canvas; every figure is written with `textContent` (failure messages come from the PG) and
 * carries its raw value in `data-value`, which the browser test reads.
 */
export const PAGE_SCRIPT = String.raw`
'use strict';
const $ = (id) => document.getElementById(id);
// From location.origin, never relative to the page: a page opened as http://user:pw@host/dashboard
// would resolve a relative URL with the credentials in it, which fetch refuses.
const DATA_URL = location.origin + location.pathname.replace(/\/+$/, '') + '/data';
const COLORS = { confirm: '#4e79a7', inquire: '#f28e2b', cancel: '#e15759', transactions: '#76b7b2',
  intake: '#9c755f', APPROVED: '#59a14f', DECLINED: '#edc948', FAILED: '#e15759', CANCELED: '#b07aa1',
  backlog: '#4e79a7', inDoubt: '#f28e2b', limit: '#d62728' };
const local = { t: [], backlog: [], inDoubt: [], webhooks: null };

function fmt(n) { return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toFixed(1); }
function fmtEta(s) {
  if (!s) return '0 s';
  if (s < 120) return s + ' s';
  return Math.floor(s / 60) + ' min ' + String(s % 60).padStart(2, '0') + ' s';
}
function set(id, value, text) {
  const el = $(id);
  el.dataset.value = String(value);
  el.textContent = text === undefined ? fmt(value) : text;
}

/** Fits a canvas to its CSS box at the device's pixel ratio; returns its context and size. */
function surface(canvas) {
  const r = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * r)) { canvas.width = Math.round(w * r); canvas.height = Math.round(h * r); }
  const g = canvas.getContext('2d');
  g.setTransform(r, 0, 0, r, 0, 0);
  g.clearRect(0, 0, w, h);
  return { g, w, h };
}

/** The smallest 1, 2 or 5 × 10^k at or above v: gridlines at round numbers. */
function niceTop(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  return [1, 2, 5, 10].map((m) => m * p).find((t) => t >= v);
}

/** Axes, grid and a y scale with a little headroom; returns the point mapper. */
function frame(g, w, h, n, max) {
  const L = 44, R = 8, T = 8, B = 18;
  const top = niceTop(Math.max(4, max * 1.05));
  g.strokeStyle = '#ddd'; g.fillStyle = '#666'; g.font = '11px system-ui, sans-serif'; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = T + (h - T - B) * (1 - i / 4);
    g.beginPath(); g.moveTo(L, y); g.lineTo(w - R, y); g.stroke();
    g.fillText(fmt(Math.round(top * i / 4)), 2, y + 4);
  }
  g.fillText(n < 120 ? '-' + n + ' s' : '-' + Math.round(n / 60) + ' min', L, h - 4);
  g.fillText('now', w - R - 22, h - 4);
  return (i, v) => [L + (w - L - R) * (n <= 1 ? 1 : i / (n - 1)), T + (h - T - B) * (1 - v / top)];
}

function stacked(canvas, layers, limit) {
  const { g, w, h } = surface(canvas);
  const n = layers[0].values.length;
  const sums = new Array(n).fill(0);
  const max = Math.max(limit || 0, ...layers[0].values.map((_, i) => layers.reduce((a, l) => a + l.values[i], 0)));
  const at = frame(g, w, h, n, max);
  for (const l of layers) {
    const lower = sums.slice();
    for (let i = 0; i < n; i++) sums[i] += l.values[i];
    g.beginPath();
    for (let i = 0; i < n; i++) g.lineTo(...at(i, sums[i]));
    for (let i = n - 1; i >= 0; i--) g.lineTo(...at(i, lower[i]));
    g.closePath(); g.fillStyle = l.color; g.globalAlpha = 0.75; g.fill(); g.globalAlpha = 1;
  }
  if (limit) {
    g.strokeStyle = COLORS.limit; g.setLineDash([6, 4]); g.lineWidth = 1.5;
    g.beginPath(); g.moveTo(...at(0, limit)); g.lineTo(...at(n - 1, limit)); g.stroke(); g.setLineDash([]);
    g.fillStyle = COLORS.limit; g.fillText('limit ' + limit + '/s', at(0, limit)[0] + 4, at(0, limit)[1] - 4);
  }
}

function lines(canvas, series) {
  const { g, w, h } = surface(canvas);
  const n = Math.max(1, ...series.map((s) => s.values.length));
  const at = frame(g, w, h, n, Math.max(1, ...series.flatMap((s) => s.values)));
  for (const s of series) {
    g.strokeStyle = s.color; g.lineWidth = 1.5; g.beginPath();
    s.values.forEach((v, i) => g.lineTo(...at(i + n - s.values.length, v)));
    g.stroke();
  }
}

function failures(rows) {
  const body = $('failures-body');
  body.replaceChildren(...rows.map((f) => {
    const tr = document.createElement('tr');
    for (const v of [new Date(f.at).toISOString().slice(11, 19), f.id, f.status, f.code, f.message]) {
      const td = document.createElement('td'); td.textContent = v; tr.append(td);
    }
    return tr;
  }));
  set('failures-count', rows.length);
}

function providers(rows) {
  $('providers-body').replaceChildren(...rows.map((p) => {
    const tr = document.createElement('tr');
    tr.dataset.provider = p.id;
    const backlog = p.waiting + p.admitted;
    for (const v of [p.id, String(p.callsPerSecond), String(p.limitPerSecond), String(p.connections), p.breaker.replace('_', '-'), String(backlog), fmtEta(p.etaSeconds)]) {
      const td = document.createElement('td'); td.textContent = v; tr.append(td);
    }
    return tr;
  }));
}

function merchants(f) {
  $('merchants-body').replaceChildren(...f.top.map((m) => {
    const tr = document.createElement('tr');
    for (const v of [m.merchantId, String(m.waiting), String(m.weight), (m.share * 100).toFixed(1) + ' %']) {
      const td = document.createElement('td'); td.textContent = v; tr.append(td);
    }
    return tr;
  }));
  set('fair-merchants', f.merchants);
  set('fair-admitted', f.admitted);
}

function render(d) {
  const n = d.now;
  set('pg-rps', n.pgRps); set('pg-rps-confirm', n.confirmRps); set('pg-rps-inquire', n.inquireRps);
  set('pg-rps-cancel', n.cancelRps); set('pg-rps-transactions', n.transactionsRps); set('pg-limit', d.limitPerSecond);
  set('intake-rps', n.intakeRps); set('intake-total', d.totals.created);
  set('backlog', d.backlog); set('eta', d.etaSeconds, fmtEta(d.etaSeconds)); set('oldest', d.oldestAgeSeconds, fmtEta(d.oldestAgeSeconds)); set('in-doubt', d.inDoubt);
  set('books-lag', d.books.lagSeconds, d.books.reportedAt === null ? 'no drainer' : d.books.lagSeconds.toFixed(1) + ' s');
  set('confirm-rate', d.confirmRate);
  const msText = (v) => (v === null ? '–' : v >= 1000 ? (v / 1000).toFixed(1) + ' s' : Math.round(v) + ' ms');
  set('pg-processes', d.pgClient.processes);
  for (const call of ['confirm', 'inquire']) {
    set('timeout-' + call, d.pgClient.readTimeoutMs[call] ?? '', msText(d.pgClient.readTimeoutMs[call]));
    set('hold-' + call, d.pgClient.holdMs[call] ?? '', msText(d.pgClient.holdMs[call]));
  }
  const cpp = d.callsPerPayment;
  const total = cpp ? cpp.confirm + cpp.inquire + cpp.cancel + cpp.transactions : null;
  set('calls-per-payment', total ?? '', total === null ? '–' : total.toFixed(2));
  set('calls-inquire', cpp ? cpp.inquire : '', cpp ? cpp.inquire.toFixed(2) : '–');
  const b = $('breaker-state');
  set('breaker-state', d.breaker.state, d.breaker.state.replace('_', '-'));
  b.className = 'v breaker-' + d.breaker.state;
  set('breaker-reason', d.breaker.reason || '', d.breaker.reason || '');
  for (const st of ['APPROVED', 'DECLINED', 'FAILED', 'CANCELED']) set('final-' + st, d.totals.final[st]);
  set('recon-repaired', d.totals.reconRepaired); set('recon-orphans', d.totals.reconOrphans);
  const rf = d.totals.refunds;
  set('refunds-requested', rf.requested); set('refunds-succeeded', rf.succeeded); set('refunds-failed', rf.failed);
  set('refunds-pending', Math.max(0, rf.requested - rf.succeeded - rf.failed)); set('refunds-amount', rf.amount);
  const wh = d.totals.webhooks;
  // The delivery rate: deliveries since the previous poll, per second.
  const prev = local.webhooks;
  const rate = prev && d.at > prev.at ? Math.max(0, (wh.delivered - prev.delivered) * 1000 / (d.at - prev.at)) : 0;
  local.webhooks = { at: d.at, delivered: wh.delivered };
  set('webhooks-rate', rate, rate.toFixed(1));
  set('webhooks-delivered', wh.delivered); set('webhooks-failed', wh.failedTries); set('webhooks-gave-up', wh.gaveUp); set('webhooks-disabled', wh.disabled);
  const mem = d.memory;
  set('redis-memory', mem.ratio, mem.maxBytes ? (mem.ratio * 100).toFixed(1) + ' %' : (mem.usedBytes / 1048576).toFixed(1) + ' MiB');
  set('updated-at', d.at, new Date(d.at).toISOString().slice(11, 19) + ' UTC');
  $('status').textContent = 'live';

  local.t.push(d.at); local.backlog.push(d.backlog); local.inDoubt.push(d.inDoubt);
  if (local.t.length > 300) for (const k of Object.keys(local)) local[k].shift();

  stacked($('chart-pg'), ['confirm', 'inquire', 'cancel', 'transactions'].map((c) => ({ color: COLORS[c], values: d.pg[c] })), d.limitPerSecond);
  lines($('chart-flow'), [{ color: COLORS.intake, values: d.intake }].concat(
    ['APPROVED', 'DECLINED', 'FAILED', 'CANCELED'].map((st) => ({ color: COLORS[st], values: d.final[st] }))));
  lines($('chart-backlog'), [{ color: COLORS.backlog, values: local.backlog }, { color: COLORS.inDoubt, values: local.inDoubt }]);
  failures(d.failures);
  merchants(d.fair);
  providers(d.providers);
}

async function tick() {
  try {
    const res = await fetch(DATA_URL, { cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    render(await res.json());
  } catch (err) {
    $('status').textContent = 'stale: ' + err.message;
  } finally {
    setTimeout(tick, 1000);
  }
}
for (const [k, c] of Object.entries(COLORS)) document.querySelectorAll('.key-' + k).forEach((el) => { el.style.background = c; });
tick();
`;
