import { createHash } from 'node:crypto';

/**
 * The live dashboard: one self-contained page (inline CSS and JS, no build step, no CDN) served
 * at `/` by the admin listener. It holds no data itself: it asks for the token (kept in
 * sessionStorage, sent as a Bearer header), then reads `/v1/status` and `/v1/decisions` and
 * follows `/v1/events` through a streaming `fetch` (EventSource cannot send headers). Every
 * value from the API is rendered with `textContent`, never parsed as HTML, and the Content
 * Security Policy allows only this page's own script and style (by hash) and same-origin calls.
 */

const STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #f6f7f9; --card: #fff; --muted: #667085;
  --line: #d0d5dd; --fail: #d97706; --ban: #dc2626; --ok: #059669; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8eb; --bg: #111418; --card: #1a1f25;
  --muted: #98a2b3; --line: #2f3742; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1rem; align-items: center; padding: .75rem 1.25rem; border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { font-size: 1.1rem; margin: 0; }
header .meta { color: var(--muted); flex: 1; }
main { padding: 1rem 1.25rem; display: grid; gap: 1rem; grid-template-columns: minmax(0, 2fr) minmax(0, 1fr); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .75rem 1rem; min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: .95rem; margin: 0 0 .5rem; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.reason { white-space: normal; color: var(--muted); }
.scroll { max-height: 420px; overflow: auto; }
input, button { font: inherit; padding: .35rem .6rem; border: 1px solid var(--line); border-radius: 6px; background: var(--card); color: var(--fg); }
button { cursor: pointer; }
button.unban { color: var(--ban); }
#login { max-width: 420px; margin: 12vh auto; }
#login form { display: flex; gap: .5rem; }
#login input { flex: 1; }
.error { color: var(--ban); min-height: 1.4em; }
.empty { color: var(--muted); }
#feed { list-style: none; margin: 0; padding: 0; max-height: 420px; overflow: auto; font-family: ui-monospace, monospace; font-size: 12.5px; }
#feed li { padding: .15rem 0; border-bottom: 1px dotted var(--line); }
#feed .failure { color: var(--fail); } #feed .ban { color: var(--ban); } #feed .unban { color: var(--ok); }
.legend { color: var(--muted); } .legend .f { color: var(--fail); } .legend .b { color: var(--ban); }
#stream-state.live { color: var(--ok); } #stream-state.down { color: var(--ban); }
canvas { width: 100%; height: 160px; display: block; }
[hidden] { display: none !important; }
`;

const SCRIPT = `
'use strict';
const KEY = 'portcullis-token';
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(KEY);
let streamAbort = null;
let statusTimer = null;
const bans = new Map();
const minutes = new Map();
const CHART_MINUTES = 30;
const FEED_MAX = 200;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function relative(ms) {
  if (ms === null) return 'never';
  const s = Math.round((ms - Date.now()) / 1000);
  const a = Math.abs(s);
  const text = a < 60 ? a + 's' : a < 3600 ? Math.round(a / 60) + 'm' : a < 86400 ? Math.round(a / 3600) + 'h' : Math.round(a / 86400) + 'd';
  return s > 0 ? 'in ' + text : text + ' ago';
}

class AuthError extends Error {}

async function api(path, init) {
  const options = Object.assign({}, init || {});
  options.headers = Object.assign({}, options.headers || {}, { Authorization: 'Bearer ' + token });
  const res = await fetch(path, options);
  if (res.status === 401 || res.status === 429) {
    let message = res.status === 429 ? 'too many wrong tokens from this address; try later' : 'wrong token';
    try { message = (await res.json()).error.message; } catch (e) {}
    throw new AuthError(message);
  }
  return res;
}

function showLogin(message) {
  stop();
  token = null;
  sessionStorage.removeItem(KEY);
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('token').focus();
}

function stop() {
  if (streamAbort) streamAbort.abort();
  streamAbort = null;
  clearInterval(statusTimer);
}

async function start() {
  try {
    await refreshStatus();
  } catch (error) {
    showLogin(error instanceof AuthError ? error.message : 'cannot reach the admin API: ' + error.message);
    return;
  }
  sessionStorage.setItem(KEY, token);
  $('login').hidden = true;
  $('app').hidden = false;
  await loadBans();
  statusTimer = setInterval(() => refreshStatus().catch(onError), 5000);
  follow();
  draw();
}

function onError(error) {
  if (error instanceof AuthError) showLogin(error.message);
}

async function refreshStatus() {
  const res = await api('/v1/status');
  if (!res.ok) throw new Error('status ' + res.status);
  const status = await res.json();
  $('meta').textContent = 'v' + status.version + ' · pid ' + status.pid + ' · up ' + relative(status.startedAt).replace(' ago', '') +
    ' · store ' + status.store.kind + (status.store.available ? ' (up)' : ' (DOWN)') + ' · ' + status.activeBans + ' active ban(s)';
  const body = $('jails-body');
  body.replaceChildren();
  if (status.jails.length === 0) {
    const row = el('tr');
    const cell = el('td', 'empty', 'no jails configured');
    cell.colSpan = 6;
    row.append(cell);
    body.append(row);
  }
  for (const jail of status.jails) {
    const row = el('tr');
    row.dataset.jail = jail.name;
    row.append(el('td', '', jail.name + (jail.dryRun ? ' (dry run)' : '')), el('td', '', jail.source),
      el('td', 'num', jail.currentlyFailed), el('td', 'num', jail.totalFailed),
      el('td', 'num', jail.currentlyBanned), el('td', 'num', jail.totalBanned));
    body.append(row);
  }
}

async function loadBans() {
  const res = await api('/v1/decisions?limit=10000');
  if (!res.ok) return;
  const list = (await res.json()).decisions;
  bans.clear();
  for (const d of list) bans.set(d.target, d);
  renderBans();
}

function renderBans() {
  const body = $('bans-body');
  const query = $('ban-search').value.trim().toLowerCase();
  body.replaceChildren();
  const list = [...bans.values()].sort((a, b) => b.startedAt - a.startedAt);
  let shown = 0;
  for (const d of list) {
    if (query && !(d.target + ' ' + d.jail + ' ' + d.reason).toLowerCase().includes(query)) continue;
    shown++;
    const row = el('tr');
    row.dataset.target = d.target;
    const button = el('button', 'unban', 'Unban');
    button.type = 'button';
    button.addEventListener('click', () => unban(d, button));
    const action = el('td');
    action.append(button);
    row.append(el('td', 'target', d.target), el('td', '', d.jail), el('td', '', relative(d.startedAt)),
      el('td', '', d.expiresAt === null ? 'never' : relative(d.expiresAt)), el('td', 'reason', d.reason + (d.dryRun ? ' (dry run)' : '')), action);
    body.append(row);
  }
  $('bans-empty').hidden = shown > 0;
  $('bans-empty').textContent = bans.size === 0 ? 'no active bans' : 'no ban matches the search';
  $('bans-count').textContent = String(bans.size);
}

async function unban(d, button) {
  button.disabled = true;
  try {
    const res = await api('/v1/decisions/' + encodeURIComponent(d.target) + '?jail=' + encodeURIComponent(d.jail), { method: 'DELETE' });
    if (res.ok || res.status === 404) {
      bans.delete(d.target);
      renderBans();
    } else {
      button.disabled = false;
    }
  } catch (error) {
    button.disabled = false;
    onError(error);
  }
}

async function follow() {
  let delay = 1000;
  while (token) {
    streamAbort = new AbortController();
    try {
      const res = await api('/v1/events', { signal: streamAbort.signal });
      if (!res.ok || !res.body) throw new Error('events ' + res.status);
      setStream(true);
      delay = 1000;
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf('\\n\\n')) !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          handleFrame(frame);
        }
      }
    } catch (error) {
      if (error instanceof AuthError) return onError(error);
      if (error.name === 'AbortError') return;
    }
    setStream(false);
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15000);
    if (token) await loadBans().catch(onError);
  }
}

function setStream(live) {
  const state = $('stream-state');
  state.textContent = live ? 'live' : 'reconnecting…';
  state.className = live ? 'live' : 'down';
}

function handleFrame(frame) {
  let type = 'message';
  let data = '';
  for (const line of frame.split('\\n')) {
    if (line.startsWith('event:')) type = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trim();
  }
  if (!data) return;
  let event;
  try { event = JSON.parse(data); } catch (e) { return; }
  bucket(event.time, type);
  if (type === 'ban') {
    bans.set(event.decision.target, event.decision);
    renderBans();
    feed('ban', event.decision.jail + ': ban ' + event.decision.target + ' (' + event.decision.reason + ')', event.time);
  } else if (type === 'unban') {
    bans.delete(event.target);
    renderBans();
    feed('unban', event.jail + ': unban ' + event.target + ' (' + event.reason + ')', event.time);
  } else if (type === 'failure') {
    feed('failure', event.jail + ': found ' + event.ip + ' (' + event.failures + '/' + event.maxretry + ')', event.time);
  }
}

function feed(kind, text, time) {
  const list = $('feed');
  const item = el('li', kind, new Date(time).toLocaleTimeString() + '  ' + text);
  list.prepend(item);
  while (list.children.length > FEED_MAX) list.lastElementChild.remove();
  $('feed-empty').hidden = true;
}

function bucket(time, type) {
  if (type !== 'failure' && type !== 'ban') return;
  const minute = Math.floor(time / 60000);
  const counts = minutes.get(minute) || { failure: 0, ban: 0 };
  counts[type]++;
  minutes.set(minute, counts);
  for (const key of minutes.keys()) if (key < minute - CHART_MINUTES) minutes.delete(key);
  draw();
}

function draw() {
  const canvas = $('chart');
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (width === 0) return;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext('2d');
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const styles = getComputedStyle(document.documentElement);
  const now = Math.floor(Date.now() / 60000);
  let max = 1;
  for (let m = now - CHART_MINUTES + 1; m <= now; m++) {
    const c = minutes.get(m);
    if (c) max = Math.max(max, c.failure, c.ban);
  }
  const left = 28, bottom = height - 16, plot = bottom - 8;
  const slot = (width - left) / CHART_MINUTES;
  ctx.fillStyle = styles.getPropertyValue('--muted');
  ctx.font = '11px system-ui';
  ctx.fillText(String(max), 2, 14);
  ctx.fillText('0', 2, bottom);
  ctx.fillText('-' + CHART_MINUTES + 'm', left, height - 2);
  ctx.fillText('now', width - 24, height - 2);
  for (let i = 0; i < CHART_MINUTES; i++) {
    const c = minutes.get(now - CHART_MINUTES + 1 + i);
    if (!c) continue;
    const x = left + i * slot;
    const w = Math.max(1, slot / 2 - 1);
    ctx.fillStyle = styles.getPropertyValue('--fail');
    ctx.fillRect(x, bottom - (c.failure / max) * plot, w, (c.failure / max) * plot);
    ctx.fillStyle = styles.getPropertyValue('--ban');
    ctx.fillRect(x + w + 1, bottom - (c.ban / max) * plot, w, (c.ban / max) * plot);
  }
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  token = $('token').value.trim();
  if (token) start();
});
$('logout').addEventListener('click', () => showLogin(''));
$('ban-search').addEventListener('input', renderBans);
window.addEventListener('resize', draw);
setInterval(draw, 30000);
if (token) start(); else showLogin('');
`;

const hash = (text: string): string =>
  `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** Only this page's own script and style run; the API is called on the same origin, nothing else. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The page. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>portcullis</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<div id="login" hidden>
  <section>
    <h2>portcullis admin</h2>
    <p>The token is in the file named by <code>admin.token_file</code> (or the variable of <code>admin.token_env</code>). It stays in this tab only.</p>
    <form id="login-form">
      <input id="token" type="password" autocomplete="off" placeholder="admin token" aria-label="admin token">
      <button id="login-button" type="submit">Log in</button>
    </form>
    <p id="login-error" class="error" role="alert"></p>
  </section>
</div>
<div id="app" hidden>
  <header>
    <h1>portcullis</h1>
    <span id="meta" class="meta"></span>
    <span id="stream-state" class="down">connecting…</span>
    <button id="logout" type="button">Log out</button>
  </header>
  <main>
    <section class="wide">
      <h2>Jails</h2>
      <div class="scroll"><table id="jails">
        <thead><tr><th>jail</th><th>source</th><th class="num">currently failed</th><th class="num">total failed</th><th class="num">currently banned</th><th class="num">total banned</th></tr></thead>
        <tbody id="jails-body"></tbody>
      </table></div>
    </section>
    <section>
      <h2>Active bans (<span id="bans-count">0</span>) <input id="ban-search" type="search" placeholder="search address, jail, reason" aria-label="search bans"></h2>
      <div class="scroll"><table id="bans">
        <thead><tr><th>target</th><th>jail</th><th>since</th><th>until</th><th>reason</th><th></th></tr></thead>
        <tbody id="bans-body"></tbody>
      </table></div>
      <p id="bans-empty" class="empty">no active bans</p>
    </section>
    <section>
      <h2>Live events</h2>
      <p id="feed-empty" class="empty">waiting for events…</p>
      <ul id="feed"></ul>
    </section>
    <section class="wide">
      <h2>Failures and bans per minute <span class="legend">(<span class="f">■ failures</span> <span class="b">■ bans</span>, since this page opened)</span></h2>
      <canvas id="chart"></canvas>
    </section>
  </main>
</div>
<script>${SCRIPT}</script>
</body>
</html>
`;
