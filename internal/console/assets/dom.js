// dom.js: building the page from data. Text from the server only ever
// becomes text nodes (never innerHTML), so event payloads cannot inject
// markup or script.

// h makes an element: h('a', {href: '#'}, 'text', child, [more]).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// replace empties el and fills it with children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// jsonView renders a value as indented JSON, keys and scalars coloured.
export function jsonView(value) {
  const pre = h('pre', { class: 'json' });
  render(pre, value, '');
  return pre;
}

function render(out, v, indent) {
  if (v === null) { out.append(h('span', { class: 'j-lit' }, 'null')); return; }
  if (Array.isArray(v)) {
    if (!v.length) { out.append('[]'); return; }
    out.append('[\n');
    v.forEach((x, i) => {
      out.append(indent + '  ');
      render(out, x, indent + '  ');
      out.append(i < v.length - 1 ? ',\n' : '\n');
    });
    out.append(indent + ']');
    return;
  }
  switch (typeof v) {
    case 'object': {
      const keys = Object.keys(v);
      if (!keys.length) { out.append('{}'); return; }
      out.append('{\n');
      keys.forEach((k, i) => {
        out.append(indent + '  ', h('span', { class: 'j-key' }, JSON.stringify(k)), ': ');
        render(out, v[k], indent + '  ');
        out.append(i < keys.length - 1 ? ',\n' : '\n');
      });
      out.append(indent + '}');
      return;
    }
    case 'string': out.append(h('span', { class: 'j-str' }, JSON.stringify(v))); return;
    case 'number': out.append(h('span', { class: 'j-num' }, String(v))); return;
    default: out.append(h('span', { class: 'j-lit' }, String(v)));
  }
}

// errorBox explains a failed call; 401 and 403 say what to do about them.
export function errorBox(err, what) {
  const prefix = what ? what + ': ' : '';
  let msg;
  if (err.status === 401) {
    msg = `${prefix}401 unauthenticated — this server requires an API key, and the console has none or the server refused it (unknown, expired or revoked). Set one with “API token” at the top right.`;
  } else if (err.status === 403) {
    msg = `${prefix}403 forbidden — the API key's scopes do not allow this request (${err.message}).`;
  } else if (err.status === 0) {
    msg = prefix + err.message;
  } else {
    msg = `${prefix}${err.status}${err.code ? ' ' + err.code : ''} — ${err.message}`;
  }
  return h('div', { class: 'error', role: 'alert', dataset: { status: String(err.status || 0) } }, msg,
    err.requestId ? h('span', { class: 'muted' }, ` (request ${err.requestId})`) : null);
}

// notice is a yellow note: something this server does not offer.
export function notice(...children) { return h('div', { class: 'notice' }, ...children); }

// ago says how long ago an RFC 3339 time was.
export function ago(t) {
  const ms = Date.now() - Date.parse(t);
  if (!Number.isFinite(ms)) return '';
  const s = Math.round(ms / 1000);
  if (s < 0) return 'in ' + dur(-s);
  return dur(s) + ' ago';
}

function dur(s) {
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min';
  if (s < 86400) return Math.floor(s / 3600) + ' h';
  return Math.floor(s / 86400) + ' d';
}

// fmt formats a number for a card: 3 significant digits, or "–".
export function fmt(n, unit = '') {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  if (Number.isInteger(n)) return n + unit;
  const a = Math.abs(n);
  const s = a >= 100 || a === 0 ? n.toFixed(0) : a >= 10 ? n.toFixed(1) : a >= 1 ? n.toFixed(2) : n.toPrecision(2);
  return s + unit;
}

// short abbreviates a long token (feed positions) for a table cell.
export function short(s, n = 14) {
  if (!s) return '';
  return s.length > n ? s.slice(0, n) + '…' : s;
}

// query parses "a=1&b=2" into an object.
export function query(s) { return Object.fromEntries(new URLSearchParams(s || '')); }
