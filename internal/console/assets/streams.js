// streams.js: the stream browser. Look a stream up by id (ids used in
// this tab are remembered, and GET /v1/streams is asked for the streams
// whose id starts with what is typed; a server without the listing, 501,
// is said to have none), read it forward or backward a page at a time, open an event,
// and travel in time to a version or an instant (until_time on reads,
// at / at_time on the aggregate state).

import * as api from './api.js';
import { h, replace, errorBox, notice, jsonView, ago, short } from './dom.js';
import { recent, remember } from './session.js';

export function mount(root, route) {
  const id = route.arg;
  const p = route.params;
  const search = h('input', { type: 'search', id: 'stream-search', placeholder: 'stream id or prefix', value: id || '', name: 'stream', 'aria-label': 'stream id or prefix' });
  const list = h('ul', { class: 'recent' });
  const serverList = h('div');
  const open = () => {
    const v = search.value.trim();
    if (v) route.navigate('streams', v, {});
  };
  search.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
  search.addEventListener('input', () => drawRecent());
  if (id) remember('streams', id);
  function drawRecent() {
    const pre = search.value.trim();
    const names = recent('streams').filter((n) => pre === id || n.startsWith(pre));
    replace(list, names.length ? names.map((n) => h('li', {}, h('a', { href: '#/streams/' + encodeURIComponent(n) }, n)))
      : h('li', { class: 'muted' }, 'No stream opened in this tab yet.'));
  }
  drawRecent();
  const main = h('div');
  replace(root, h('h1', {}, 'Streams'),
    h('div', { class: 'split' },
      h('div', {},
        h('div', { class: 'panel' },
          h('div', { class: 'row' }, search, h('button', { type: 'button', onclick: open, id: 'stream-open' }, 'Open')),
          h('h2', { class: 'muted' }, 'Recent in this tab'), list, serverList)),
      main));
  listing(serverList, search);
  if (!id) {
    replace(main, h('div', { class: 'panel' }, h('p', {}, 'Enter a stream id (for example ', h('code', {}, 'user-42'), ') to read its events.')));
    return null;
  }
  const ctl = new AbortController();
  showStream(main, id, p, route, ctl.signal);
  return () => ctl.abort();
}

// listing asks a server that has a stream listing for the prefix's
// matches; others get a note that the ids come from this tab only.
async function listing(el, search) {
  let ok = false;
  try { ok = await api.has('get', '/v1/streams'); } catch { /* the spec needs a token: say nothing yet */ return; }
  if (!ok) {
    replace(el, h('p', { class: 'muted status' }, 'This server has no stream listing (GET /v1/streams), so only ids opened in this tab are suggested.'));
    return;
  }
  const none = () => replace(el, h('p', { class: 'muted status' }, 'This server has no stream listing (GET /v1/streams is served on --write-path shards), so only ids opened in this tab are suggested.'));
  // Answers may come back out of order: only the latest request's is drawn.
  let latest = 0;
  const run = async () => {
    const n = ++latest;
    try {
      const res = await api.request('/v1/streams?limit=20&prefix=' + api.enc(search.value.trim()));
      if (n !== latest) return;
      const items = res.streams;
      replace(el, h('h2', { class: 'muted' }, 'On the server'),
        h('ul', { class: 'recent', id: 'listing' }, items.map((s) => h('li', { dataset: { stream: s.stream } },
          h('a', { href: '#/streams/' + encodeURIComponent(s.stream) }, s.stream),
          h('span', { class: 'muted' }, ` v${s.version}, updated ${s.updated_at}`)))),
        res.next ? h('p', { class: 'muted' }, 'More match: narrow the prefix.') : null);
    } catch (e) {
      if (n !== latest) return;
      if (e.status === 501) { none(); return; }
      replace(el, errorBox(e, 'stream listing'));
    }
  };
  let timer;
  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(run, 150); });
  run();
}

async function showStream(main, id, p, route, signal) {
  const enc = api.enc(id);
  const dir = p.dir === 'backward' ? 'backward' : 'forward';
  const limit = Math.min(1000, Math.max(1, Number(p.limit) || 20));
  const asOf = p.version ? Number(p.version) : null;
  const until = p.until || '';
  const info = h('div', { class: 'panel' }, h('p', { class: 'muted' }, 'Loading…'));
  const events = h('div', { class: 'panel' });
  const detail = h('div', { class: 'panel', id: 'event-detail' }, h('p', { class: 'muted' }, 'Select an event to see its data and metadata.'));
  const state = h('div');
  const go = (changes) => route.navigate('streams', id, { ...p, ...changes });

  // Time travel controls.
  const verIn = h('input', { type: 'number', min: '1', placeholder: 'version', value: asOf ? String(asOf) : '', name: 'version', 'aria-label': 'as of version' });
  const timeIn = h('input', { type: 'text', placeholder: '2026-11-22T10:47:30.400Z', value: until, name: 'until', size: 28, 'aria-label': 'as of instant' });
  const travel = h('div', { class: 'panel' },
    h('h2', {}, 'Time travel'),
    h('div', { class: 'row' },
      h('label', {}, 'as of version', verIn),
      h('label', {}, 'or as of instant (RFC 3339)', timeIn),
      h('button', { type: 'button', class: 'secondary', onclick: () => { timeIn.value = new Date().toISOString(); } }, 'now'),
      h('button', { type: 'button', id: 'travel-apply', onclick: () => {
        go({ version: verIn.value.trim(), until: verIn.value.trim() ? '' : timeIn.value.trim(), from: '', to: '' });
      } }, 'Travel'),
      (asOf || until) ? h('button', { type: 'button', class: 'secondary', onclick: () => go({ version: '', until: '', from: '', to: '' }) }, 'Back to the head') : null));

  replace(main,
    (asOf || until) ? notice(`Viewing ${id} as it was ${asOf ? 'at version ' + asOf : 'at ' + until}: later events are hidden.`) : null,
    info, travel, h('div', { class: 'split2' }, events, h('div', {}, detail, state)));

  // Stream info.
  try {
    const s = await api.request('/v1/streams/' + enc, { signal });
    replace(info, h('h2', {}, s.stream, ' ', h('span', { class: 'pill' }, 'category ' + s.category)),
      h('dl', { class: 'meta' },
        h('dt', {}, 'version'), h('dd', { dataset: { field: 'version' } }, String(s.version)),
        h('dt', {}, 'created'), h('dd', {}, s.created_at, ' ', h('span', { class: 'muted' }, ago(s.created_at))),
        h('dt', {}, 'updated'), h('dd', {}, s.updated_at, ' ', h('span', { class: 'muted' }, ago(s.updated_at))),
        h('dt', {}, 'buckets'), h('dd', {}, `${s.buckets} (current ${s.current_bucket})`),
        h('dt', {}, 'latest snapshot'), h('dd', {}, s.latest_snapshot_version === null ? 'none' : 'version ' + s.latest_snapshot_version)));
  } catch (e) {
    if (e.name === 'AbortError') return;
    replace(info, e.code === 'stream_not_found'
      ? notice(`No stream ${id}: nothing has been appended to it.`)
      : errorBox(e, 'GET /v1/streams/' + id));
    if (e.status === 404 || e.status === 401 || e.status === 403) { events.remove(); detail.remove(); travel.remove(); return; }
  }

  // A page of events.
  const q = new URLSearchParams({ limit: String(limit), direction: dir });
  let to = p.to ? Number(p.to) : null;
  if (asOf) to = to ? Math.min(to, asOf) : asOf;
  if (p.from) q.set('from', p.from);
  if (to) q.set('to', String(to));
  if (until) q.set('until_time', until);
  const controls = h('div', { class: 'row' },
    h('button', { type: 'button', class: dir === 'forward' ? '' : 'secondary', onclick: () => go({ dir: 'forward', from: '', to: '' }) }, 'Oldest first'),
    h('button', { type: 'button', class: dir === 'backward' ? '' : 'secondary', onclick: () => go({ dir: 'backward', from: '', to: '' }) }, 'Newest first'),
    h('label', {}, 'page size', h('select', { onchange: (e) => go({ limit: e.target.value, from: '', to: '' }) },
      [10, 20, 50, 100, 500].map((n) => h('option', { value: String(n), selected: n === limit }, String(n))))));
  replace(events, h('h2', {}, 'Events'), controls, h('p', { class: 'muted' }, 'Reading…'));
  let page;
  try {
    page = await api.request(`/v1/streams/${enc}/events?${q}`, { signal });
  } catch (e) {
    if (e.name === 'AbortError') return;
    replace(events, h('h2', {}, 'Events'), controls, errorBox(e, 'GET events'));
    return;
  }
  const rows = page.events.map((ev) => {
    const tr = h('tr', { class: 'clickable', dataset: { version: String(ev.version) } },
      h('td', {}, String(ev.version)), h('td', {}, ev.type), h('td', { class: 'mono' }, ev.time), h('td', { class: 'mono muted' }, short(ev.id, 13)));
    tr.addEventListener('click', () => {
      for (const r of tr.parentNode.querySelectorAll('tr.selected')) r.classList.remove('selected');
      tr.classList.add('selected');
      showEvent(detail, ev, go);
    });
    return tr;
  });
  const next = page.next;
  replace(events, h('h2', {}, 'Events'), controls,
    rows.length
      ? h('table', { id: 'events' }, h('thead', {}, h('tr', {}, h('th', {}, 'version'), h('th', {}, 'type'), h('th', {}, 'committed'), h('th', {}, 'id'))), h('tbody', {}, rows))
      : h('p', { class: 'muted' }, 'No events in this range.'),
    h('div', { class: 'row' },
      (p.from || p.to) ? h('button', { type: 'button', class: 'secondary', onclick: () => go({ from: '', to: '' }) }, dir === 'forward' ? 'First page' : 'Newest page') : null,
      next !== null && next !== undefined
        ? h('button', { type: 'button', id: 'next-page', onclick: () => go(dir === 'forward' ? { from: String(next), to: p.to || '' } : { to: String(next), from: p.from || '' }) }, dir === 'forward' ? 'Next page →' : 'Older →')
        : h('span', { class: 'muted' }, dir === 'forward' ? 'End of the stream.' : 'Start of the stream.')));

  // The aggregate at that point in time: on demand, since a stream without
  // snapshots sends every event.
  const sq = asOf ? 'at=' + asOf : until ? 'at_time=' + api.enc(until) : '';
  replace(state, h('button', { type: 'button', class: 'secondary', id: 'load-state', onclick: () => loadState(state, enc, sq, signal) },
    asOf || until ? 'Load the aggregate as it was then' : 'Load the aggregate state (snapshot + events)'));
}

function showEvent(detail, ev, go) {
  replace(detail,
    h('h2', {}, `${ev.type} · version ${ev.version}`),
    h('dl', { class: 'meta' },
      h('dt', {}, 'id'), h('dd', { class: 'mono' }, ev.id),
      h('dt', {}, 'committed'), h('dd', { class: 'mono', dataset: { field: 'time' } }, ev.time, ' ', h('span', { class: 'muted' }, ago(ev.time))),
      ev.position ? [h('dt', {}, 'position'), h('dd', { class: 'mono' }, ev.position)] : null),
    h('h2', {}, 'data'), jsonView(ev.data),
    h('h2', {}, 'metadata'), ev.metadata === undefined ? h('p', { class: 'muted' }, 'none') : jsonView(ev.metadata),
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'secondary', onclick: () => go({ version: String(ev.version), until: '', from: '', to: '' }) }, 'Travel to this version'),
      h('button', { type: 'button', class: 'secondary', onclick: () => go({ until: ev.time, version: '', from: '', to: '' }) }, 'Travel to this instant')));
}

async function loadState(el, enc, q, signal) {
  replace(el, h('div', { class: 'panel' }, h('p', { class: 'muted' }, 'Loading the aggregate…')));
  try {
    const s = await api.request(`/v1/streams/${enc}/state${q ? '?' + q : ''}`, { signal });
    replace(el, h('div', { class: 'panel', id: 'state' },
      h('h2', {}, `Aggregate at version ${s.version}`),
      s.snapshot
        ? [h('p', {}, `Snapshot of version ${s.snapshot.version}, stored ${s.snapshot.created_at}`), jsonView(s.snapshot.state)]
        : h('p', { class: 'muted' }, 'No snapshot at or below this version: the state is all its events.'),
      h('p', {}, `${s.events.length} event(s) after the snapshot: `, s.events.map((e) => `${e.version} ${e.type}`).join(', '))));
  } catch (e) {
    if (e.name === 'AbortError') return;
    replace(el, e.code === 'stream_not_found' ? notice('The stream did not exist yet at that moment.') : errorBox(e, 'GET state'));
  }
}
