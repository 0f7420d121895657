// app.js: the shell. Routes are the URL's hash (#/streams/user-42?dir=
// backward), so every view can be linked to and survives a reload; each
// view module exports mount(root, route), which returns its clean-up
// (stop polling, close subscriptions).

import * as api from './api.js';
import { query } from './dom.js';
import * as overview from './overview.js';
import * as streams from './streams.js';
import * as live from './live.js';
import * as groups from './groups.js';
import * as cluster from './cluster.js';

const views = { overview, streams, live, groups, cluster };

let cleanup = null;

// parse splits "#/streams/user-42?dir=backward" into view, arg, params.
function parse() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [pathPart, q] = hash.split('?', 2);
  const [view, ...rest] = pathPart.split('/');
  return { view: views[view] ? view : 'overview', arg: rest.map(decodeURIComponent).join('/'), params: query(q) };
}

// navigate changes the route; the hashchange listener draws it.
export function navigate(view, arg, params) {
  let h = '#/' + view;
  if (arg) h += '/' + encodeURIComponent(arg);
  const q = new URLSearchParams(Object.entries(params || {}).filter(([, v]) => v !== '' && v !== undefined && v !== null));
  if ([...q].length) h += '?' + q;
  if (location.hash === h) draw(); else location.hash = h;
}

function draw() {
  if (cleanup) { cleanup(); cleanup = null; }
  const route = parse();
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === route.view);
  const root = document.getElementById('view');
  root.replaceChildren();
  hideBanner();
  cleanup = views[route.view].mount(root, { ...route, navigate }) || null;
}

// Token dialog: opened from the header, or by a 401 anywhere.
const dialog = () => document.getElementById('token-dialog');

function openTokenDialog(reason) {
  document.getElementById('token-reason').hidden = !reason;
  dialog().hidden = false;
  const input = document.getElementById('token-input');
  input.value = api.token();
  input.focus();
}

function closeTokenDialog() { dialog().hidden = true; }

function showTokenState() {
  const b = document.getElementById('token-button');
  b.textContent = api.token() ? 'API token: set' : 'API token: none';
  b.classList.toggle('set', Boolean(api.token()));
}

function showBanner(text) {
  const b = document.getElementById('banner');
  b.textContent = text;
  b.hidden = false;
}

function hideBanner() { document.getElementById('banner').hidden = true; }

function start() {
  document.getElementById('token-button').addEventListener('click', () => openTokenDialog(false));
  document.getElementById('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    api.setToken(document.getElementById('token-input').value.trim());
    closeTokenDialog();
  });
  document.getElementById('token-clear').addEventListener('click', () => {
    api.setToken('');
    closeTokenDialog();
  });
  document.getElementById('token-cancel').addEventListener('click', closeTokenDialog);
  api.onTokenChange(() => { showTokenState(); draw(); });
  api.onUnauthenticated(() => {
    showBanner(api.token()
      ? '401: the server refused this API token (unknown, expired or revoked). Enter another one.'
      : '401: this server requires an API key. Enter a token to continue.');
    if (dialog().hidden) openTokenDialog(true);
  });
  window.addEventListener('hashchange', draw);
  showTokenState();
  draw();
}

start();
