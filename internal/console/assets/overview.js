// overview.js: append rate, append latency and error rate over the last
// minutes, computed in the browser from successive scrapes of the server's
// own /metrics (an admin key when authentication is on). Only this tab's
// scrapes are kept, so the history starts when the page is first opened.

import * as api from './api.js';
import * as prom from './prom.js';
import { chart } from './chart.js';
import { h, replace, errorBox, fmt } from './dom.js';

const appendRoute = { route: '/v1/streams/:stream/events', method: 'POST' };
// The console's own polling is not API traffic.
const apiRoutes = { route: /^(?!\/(metrics|healthz|readyz|openapi\.json|ui)).*$/ };
const maxAge = 60 * 60 * 1000;

// history outlives the view, so switching pages keeps the curves.
const history = [];

function summarize(samples, t) {
  const s = (name, want) => prom.sum(samples, name, want);
  const groups = {};
  for (const x of samples) if (x.name === 'eventlog_group_lag_events') groups[x.labels.group] = x.value;
  return {
    t,
    appended: s('eventlog_appended_events_total'),
    duplicates: s('eventlog_append_duplicates_total'),
    conflicts: s('eventlog_append_conflicts_total'),
    requests: s('eventlog_http_requests_total', apiRoutes),
    errors5xx: s('eventlog_http_requests_total', { ...apiRoutes, status: /^5/ }),
    errors4xx: s('eventlog_http_requests_total', { ...apiRoutes, status: /^4/ }),
    appendBuckets: prom.buckets(samples, 'eventlog_http_request_duration_seconds', appendRoute),
    tailBytes: s('eventlog_shard_tail_bytes'),
    inFlight: s('eventlog_http_requests_in_flight'),
    groups,
  };
}

// between derives the rates of the interval from a to b.
function between(a, b) {
  const dt = (b.t - a.t) / 1000;
  const reqs = prom.rate(a.requests, b.requests, dt);
  const e5 = prom.rate(a.errors5xx || 0, b.errors5xx || 0, dt);
  const e4 = prom.rate(a.errors4xx || 0, b.errors4xx || 0, dt);
  return {
    t: b.t,
    appendRate: prom.rate(a.appended, b.appended, dt),
    requestRate: reqs,
    errorRate: reqs > 0 ? e5 / reqs : reqs === 0 ? 0 : null,
    clientErrorRate: reqs > 0 ? e4 / reqs : reqs === 0 ? 0 : null,
    conflictRate: prom.rate(a.conflicts, b.conflicts, dt),
    p50: prom.quantile(0.5, a.appendBuckets, b.appendBuckets),
    p99: prom.quantile(0.99, a.appendBuckets, b.appendBuckets),
  };
}

// lastMinute is the interval from the scrape about a minute before the
// newest to the newest.
function lastMinute() {
  if (history.length < 2) return null;
  const b = history[history.length - 1];
  let a = history[0];
  for (const x of history) if (b.t - x.t >= 60000) a = x;
  return between(a, b);
}

const card = (key, label, value, sub) =>
  h('div', { class: 'panel card' }, h('div', { class: 'label' }, label),
    h('div', { class: 'value', dataset: { metric: key } }, value), sub ? h('div', { class: 'muted' }, sub) : null);

export function mount(root, route) {
  const every = Math.max(1, Number(route.params.every) || 5) * 1000;
  let windowMin = Number(route.params.window) || 15;
  const status = h('span', { class: 'muted status' });
  const select = h('select', { onchange: () => { windowMin = Number(select.value); draw(); } },
    [5, 15, 30, 60].map((m) => h('option', { value: String(m), selected: m === windowMin }, `last ${m} min`)));
  const body = h('div');
  replace(root, h('div', { class: 'row' }, h('h1', {}, 'Overview'), select, status), body);

  function draw() {
    const err = lastError;
    if (!history.length) {
      replace(body, err ? errorBox(err, 'GET /metrics') : h('p', { class: 'muted' }, 'Reading /metrics…'));
      return;
    }
    const cur = history[history.length - 1];
    const m = lastMinute();
    const points = [];
    for (let i = 1; i < history.length; i++) {
      if (history[i].t - history[i - 1].t < 3 * every) points.push(between(history[i - 1], history[i]));
    }
    const now = Date.now();
    // The x axis spans the window, or the scrapes kept if fewer, so a
    // fresh page fills its charts.
    const win = Math.min(windowMin * 60000, Math.max(60000, now - history[0].t));
    const series = (k, scale = 1) => points.map((p) => [p.t, p[k] === null ? NaN : p[k] * scale]);
    const groupRows = Object.entries(cur.groups);
    replace(body,
      err ? errorBox(err, 'GET /metrics (showing the last good scrape)') : null,
      h('div', { class: 'grid' },
        card('append-rate', 'Append rate (last minute)', m ? fmt(m.appendRate, ' ev/s') : '–', 'events written'),
        card('append-p50', 'Append latency p50', m && m.p50 !== null ? fmt(m.p50 * 1000, ' ms') : '–', 'POST /v1/streams/{stream}/events'),
        card('append-p99', 'Append latency p99', m && m.p99 !== null ? fmt(m.p99 * 1000, ' ms') : '–', 'last minute'),
        card('error-rate', 'Error rate (5xx)', m && m.errorRate !== null ? fmt(m.errorRate * 100, ' %') : '–',
          m && m.clientErrorRate !== null ? `4xx: ${fmt(m.clientErrorRate * 100, ' %')} of API requests` : ''),
        card('request-rate', 'API requests', m ? fmt(m.requestRate, ' /s') : '–', 'excluding the console\'s polling'),
        card('appended-total', 'Events appended', fmt(cur.appended), 'since this server started'),
        card('conflicts', 'Conflicts', fmt(cur.conflicts), 'wrong version or idempotency, since start'),
        card('tail-bytes', 'Unwritten tail', cur.tailBytes === null ? 'n/a' : fmt(cur.tailBytes / 1024, ' KiB'),
          'committed on this instance\'s shards, not yet in their streams\' partitions'),
      ),
      h('div', { class: 'split2' },
        h('div', { class: 'panel' }, h('h2', {}, 'Append rate (events/s)'),
          chart([series('appendRate')], { window: win, now, format: (v) => fmt(v) })),
        h('div', { class: 'panel' }, h('h2', {}, 'Append latency (ms): p50 blue, p99 orange'),
          chart([series('p50', 1000), series('p99', 1000)], { window: win, now, format: (v) => fmt(v) })),
        h('div', { class: 'panel' }, h('h2', {}, 'Error rate (% of API requests answered 5xx)'),
          chart([series('errorRate', 100)], { window: win, now, format: (v) => fmt(v) })),
        h('div', { class: 'panel' }, h('h2', {}, 'Consumer group lag (events)'),
          groupRows.length
            ? h('table', {}, h('tr', {}, h('th', {}, 'group'), h('th', {}, 'lag')),
              groupRows.map(([g, v]) => h('tr', {}, h('td', {}, h('a', { href: '#/groups/' + encodeURIComponent(g) }, g)), h('td', {}, fmt(v)))))
            : h('p', { class: 'muted' }, 'No group lag exported yet (eventlog_group_lag_events).')),
      ),
      h('p', { class: 'muted' }, `Computed in this browser from /metrics every ${every / 1000} s; ${history.length} scrapes kept. Rates and quantiles are over the interval between scrapes, as PromQL's rate() and histogram_quantile().`),
    );
  }

  let lastError = null;
  let stopped = false;
  async function poll() {
    try {
      const t = Date.now();
      const samples = prom.parse(await api.text('/metrics'));
      history.push(summarize(samples, t));
      while (history.length && t - history[0].t > maxAge) history.shift();
      lastError = null;
      status.textContent = 'updated ' + new Date(t).toLocaleTimeString();
    } catch (e) {
      lastError = e;
      status.textContent = '';
    }
    if (!stopped) draw();
  }
  poll();
  const timer = setInterval(poll, every);
  return () => { stopped = true; clearInterval(timer); };
}
