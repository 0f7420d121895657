// live.js: a feed (all, a category, a type) or one stream scrolling by,
// over the Server-Sent Events subscribe routes. Pausing closes the
// subscription and remembers the last id; resuming reconnects with
// Last-Event-ID, so nothing committed meanwhile is missed or repeated.

import * as api from './api.js';
import { h, replace, errorBox, jsonView, short } from './dom.js';

const maxRows = 500;

export function mount(root, route) {
  const p = route.params;
  const kind = h('select', { name: 'kind', 'aria-label': 'feed kind' },
    [['all', 'all events'], ['category', 'category'], ['type', 'event type'], ['stream', 'one stream']]
      .map(([v, t]) => h('option', { value: v, selected: (p.kind || 'all') === v }, t)));
  const name = h('input', { type: 'text', name: 'name', placeholder: 'user / UserCreated / user-42', value: p.name || '', 'aria-label': 'feed name' });
  const from = h('select', { name: 'from', 'aria-label': 'start' },
    [['now', 'from now'], ['start', 'from the beginning']].map(([v, t]) => h('option', { value: v, selected: (p.from || 'now') === v }, t)));
  const startBtn = h('button', { type: 'button', id: 'live-start' }, 'Subscribe');
  const pauseBtn = h('button', { type: 'button', id: 'live-pause', class: 'secondary', disabled: true }, 'Pause');
  const clearBtn = h('button', { type: 'button', class: 'secondary' }, 'Clear');
  const status = h('span', { class: 'status muted', id: 'live-status' }, 'Not subscribed.');
  const err = h('div');
  const tbody = h('tbody');
  const detail = h('div', { class: 'panel' }, h('p', { class: 'muted' }, 'Click an event to see its JSON.'));
  const count = h('span', { class: 'muted' }, '');
  replace(root, h('h1', {}, 'Live feed'),
    h('div', { class: 'panel' },
      h('div', { class: 'row' }, h('label', {}, 'feed', kind), h('label', {}, 'name', name), h('label', {}, 'start', from),
        startBtn, pauseBtn, clearBtn),
      h('p', {}, status, ' ', count)),
    err,
    h('div', { class: 'split2' },
      h('div', { class: 'panel feed-list' },
        h('table', { id: 'live-events' }, h('thead', {}, h('tr', {}, h('th', {}, 'committed'), h('th', {}, 'stream'), h('th', {}, 'version'), h('th', {}, 'type'), h('th', {}, 'position'))), tbody)),
      detail));

  let ctl = null;
  let lastId = '';
  let path = '';
  let paused = false;
  let received = 0;

  function feedPath() {
    const k = kind.value;
    const n = name.value.trim();
    if (k === 'all') return '/v1/feeds/all/subscribe';
    if (!n) throw new Error(k === 'stream' ? 'a stream id is needed' : `a ${k} name is needed`);
    if (k === 'stream') return `/v1/streams/${api.enc(n)}/subscribe`;
    return `/v1/feeds/${k}/${api.enc(n)}/subscribe`;
  }

  function add(id, ev) {
    lastId = id;
    received++;
    count.textContent = `${received} received`;
    const tr = h('tr', { class: 'clickable', dataset: { stream: ev.stream || '', type: ev.type } },
      h('td', { class: 'mono' }, ev.time), h('td', {}, ev.stream || name.value.trim()), h('td', {}, String(ev.version)),
      h('td', {}, ev.type), h('td', { class: 'mono muted' }, short(ev.position || '', 12)));
    tr.addEventListener('click', () => replace(detail, h('h2', {}, `${ev.type} · ${ev.stream || ''} v${ev.version}`), jsonView(ev)));
    tbody.prepend(tr);
    while (tbody.children.length > maxRows) tbody.lastChild.remove();
  }

  async function run(resume) {
    replace(err);
    ctl = new AbortController();
    const signal = ctl.signal;
    const q = new URLSearchParams();
    // A resumption without an id yet starts over as asked; a stream has no
    // "now" (it is read from its start).
    if ((!resume || !lastId) && from.value === 'now') {
      if (kind.value !== 'stream') q.set('from', 'now');
      else {
        // A stream subscription has no "now": start after its head.
        try {
          const s = await api.request(path.replace(/\/subscribe$/, ''), { signal });
          q.set('from', String(s.version + 1));
        } catch (e) {
          if (e.name === 'AbortError') return;
          if (e.code !== 'stream_not_found') { replace(err, errorBox(e, 'stream info')); return; }
        }
      }
    }
    status.textContent = 'Connecting…';
    status.dataset.state = 'connecting';
    pauseBtn.disabled = false;
    try {
      await api.subscribe(path + (q.toString() ? '?' + q : ''), {
        lastEventId: resume ? lastId : '',
        signal,
        onOpen: () => {
          status.textContent = `Live: ${path.replace('/subscribe', '')}` + (resume && lastId ? ', resumed after ' + short(lastId, 16) : '');
          status.dataset.state = 'live';
        },
        onEvent: add,
        onId: (id) => { lastId = id; },
      });
    } catch (e) {
      if (signal.aborted) return;
      replace(err, errorBox(e, 'subscription'));
      status.dataset.state = 'stopped';
      if (e.status === 0 && lastId) {
        // Cut (the server restarted, the network dropped): resuming goes
        // on after the last event shown.
        paused = true;
        pauseBtn.textContent = 'Resume';
        status.textContent = 'Cut after ' + short(lastId, 16) + ': Resume continues from there.';
      } else {
        status.textContent = 'Stopped.';
        pauseBtn.disabled = true;
      }
    }
  }

  startBtn.addEventListener('click', () => {
    if (ctl) ctl.abort();
    try { path = feedPath(); } catch (e) { replace(err, h('div', { class: 'error' }, e.message)); return; }
    route.params.kind = kind.value;
    history.replaceState(null, '', `#/live?kind=${kind.value}&name=${api.enc(name.value.trim())}&from=${from.value}`);
    lastId = '';
    paused = false;
    pauseBtn.textContent = 'Pause';
    run(false);
  });
  pauseBtn.addEventListener('click', () => {
    if (!paused) {
      paused = true;
      if (ctl) ctl.abort();
      pauseBtn.textContent = 'Resume';
      status.textContent = 'Paused' + (lastId ? ' after ' + short(lastId, 16) : '') + ': resuming continues from there.';
      status.dataset.state = 'paused';
    } else {
      paused = false;
      pauseBtn.textContent = 'Pause';
      run(true);
    }
  });
  clearBtn.addEventListener('click', () => { tbody.replaceChildren(); received = 0; count.textContent = ''; });
  if (p.kind) startBtn.click();
  return () => { if (ctl) ctl.abort(); };
}
