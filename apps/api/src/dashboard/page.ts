/**
 * The dashboard page (`GET /dashboard`): one self-contained HTML document with its CSS and script
 * inline. The app's helmet CSP forbids inline code, so the page sends its own policy that allows
 * exactly these two blocks by hash, and nothing else: no remote script, style, frame or form.
 */
import { createHash } from 'node:crypto';
import { PAGE_SCRIPT } from './page-script.ts';

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2430; }
header { display: flex; gap: 16px; align-items: baseline; padding: 10px 16px; background: #1d2430; color: #fff; }
header h1 { font-size: 16px; margin: 0; }
header .muted { color: #aab; }
main { padding: 12px 16px; display: grid; gap: 12px; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); }
section { background: #fff; border: 1px solid #e2e5ea; border-radius: 6px; padding: 10px 12px; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 13px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em; color: #556; }
.tiles { display: flex; flex-wrap: wrap; gap: 6px 18px; margin-bottom: 8px; }
.tile { min-width: 88px; }
.tile .k { font-size: 11px; color: #667; }
.v { font-size: 20px; font-variant-numeric: tabular-nums; font-weight: 600; }
.key { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
canvas { width: 100%; height: 180px; display: block; }
.breaker-closed { color: #2e7d32; } .breaker-half_open { color: #ef6c00; } .breaker-open { color: #c62828; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eee; white-space: nowrap; }
td:last-child { white-space: normal; }
`;

const sha256 = (s: string) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/** The page's Content-Security-Policy: its own inline blocks by hash, data from its own origin. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${sha256(PAGE_SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function tile(id: string, label: string, key?: string): string {
  const swatch = key ? `<span class="key key-${key}"></span>` : '';
  return `<div class="tile"><div class="k">${swatch}${label}</div><div class="v" id="${id}" data-testid="${id}" data-value="">–</div></div>`;
}

/** The HTML, built once: nothing in it depends on the request. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Sluice — operations</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>Sluice</h1><span class="muted">updated <span id="updated-at" data-testid="updated-at" data-value="">–</span></span>
<span class="muted" id="status" data-testid="status">connecting…</span></header>
<main>
<section class="wide"><h2>PG requests per second (last 5 minutes)</h2>
<div class="tiles">${tile('pg-rps', 'total /s')}${tile('pg-rps-confirm', 'confirm /s', 'confirm')}${tile('pg-rps-inquire', 'inquiry /s', 'inquire')}${tile('pg-rps-cancel', 'cancel /s', 'cancel')}${tile('pg-rps-transactions', 'transactions /s', 'transactions')}${tile('pg-limit', 'limit /s', 'limit')}</div>
<canvas id="chart-pg" data-testid="chart-pg"></canvas></section>
<section><h2>Intake and final states per second</h2>
<div class="tiles">${tile('intake-rps', 'intake /s', 'intake')}${tile('intake-total', 'accepted (total)')}${tile('final-APPROVED', 'approved', 'APPROVED')}${tile('final-DECLINED', 'declined', 'DECLINED')}${tile('final-FAILED', 'failed', 'FAILED')}${tile('final-CANCELED', 'canceled', 'CANCELED')}</div>
<canvas id="chart-flow" data-testid="chart-flow"></canvas></section>
<section><h2>Backlog and money in doubt (since this page opened)</h2>
<div class="tiles">${tile('backlog', 'backlog', 'backlog')}${tile('eta', 'ETA to drain')}${tile('oldest', 'oldest waiting')}${tile('confirm-rate', 'confirms /s (10 s)')}${tile('in-doubt', 'in doubt', 'inDoubt')}${tile('books-lag', 'books lag')}</div>
<canvas id="chart-backlog" data-testid="chart-backlog"></canvas></section>
<section><h2>The PG client (live worker processes: <span id="pg-processes" data-testid="pg-processes" data-value="0">0</span>)</h2>
<div class="tiles">${tile('timeout-confirm', 'read timeout: confirm')}${tile('timeout-inquire', 'read timeout: inquiry')}${tile('hold-confirm', 'connection hold: confirm')}${tile('hold-inquire', 'connection hold: inquiry')}${tile('calls-per-payment', 'PG calls per payment')}${tile('calls-inquire', 'inquiries per payment')}</div></section>
<section><h2>Safety</h2>
<div class="tiles">${tile('breaker-state', 'breaker')}${tile('recon-repaired', 'recon repairs')}${tile('recon-orphans', 'recon orphans')}${tile('redis-memory', 'Redis memory')}</div>
<div class="k" id="breaker-reason" data-testid="breaker-reason" data-value=""></div></section>
<section><h2>Merchants' cancels and refunds</h2>
<div class="tiles">${tile('refunds-requested', 'asked for')}${tile('refunds-pending', 'pending')}${tile('refunds-succeeded', 'done')}${tile('refunds-failed', 'failed')}${tile('refunds-amount', 'refunded at the PG')}</div></section>
<section><h2>Webhooks</h2>
<div class="tiles">${tile('webhooks-rate', 'delivered /s')}${tile('webhooks-delivered', 'delivered')}${tile('webhooks-failed', 'failed tries')}${tile('webhooks-gave-up', 'given up')}${tile('webhooks-disabled', 'endpoints disabled')}</div></section>
<section class="wide"><h2>PGs</h2>
<table id="providers" data-testid="providers"><thead><tr><th>provider</th><th>calls /s</th><th>limit /s</th><th>connections</th><th>breaker</th><th>backlog</th><th>ETA to drain</th></tr></thead>
<tbody id="providers-body"></tbody></table></section>
<section class="wide"><h2>Merchants waiting (<span id="fair-merchants" data-testid="fair-merchants" data-value="0">0</span>; admitted, not yet sent: <span id="fair-admitted" data-testid="fair-admitted" data-value="0">0</span>)</h2>
<table id="merchants" data-testid="merchants"><thead><tr><th>merchant</th><th>waiting</th><th>weight</th><th>share of the PG</th></tr></thead>
<tbody id="merchants-body"></tbody></table></section>
<section class="wide"><h2>Latest failures (<span id="failures-count" data-testid="failures-count" data-value="0">0</span>)</h2>
<table id="failures" data-testid="failures"><thead><tr><th>time (UTC)</th><th>payment</th><th>status</th><th>code</th><th>message</th></tr></thead>
<tbody id="failures-body"></tbody></table></section>
</main>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
