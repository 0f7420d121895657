// api.js: every call the console makes to the server. The bearer token
// lives in sessionStorage only (gone when the tab closes); a 401 asks the
// app for a token through onUnauthenticated.

const tokenKey = 'eventlog.token';

export function token() { return sessionStorage.getItem(tokenKey) || ''; }

export function setToken(t) {
  if (t) sessionStorage.setItem(tokenKey, t); else sessionStorage.removeItem(tokenKey);
  specCache = null;
  listeners.forEach((fn) => fn());
}

const listeners = [];
export function onTokenChange(fn) { listeners.push(fn); }

let unauthenticated = () => {};
// onUnauthenticated sets what happens when the server answers 401.
export function onUnauthenticated(fn) { unauthenticated = fn; }

// ApiError is a problem answer (RFC 9457) or a network failure (status 0).
export class ApiError extends Error {
  constructor(status, problem, path) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || '';
    this.requestId = problem.request_id || '';
    this.path = path;
    this.problem = problem;
  }
}

function headers(extra) {
  const h = new Headers(extra || {});
  const t = token();
  if (t) h.set('Authorization', 'Bearer ' + t);
  return h;
}

async function fail(res, path) {
  let problem = {};
  try { problem = await res.json(); } catch { /* not JSON: keep the status */ }
  const err = new ApiError(res.status, problem, path);
  if (res.status === 401) unauthenticated(err);
  return err;
}

// request GETs (or sends) path and returns its JSON, or throws ApiError.
export async function request(path, opts = {}) {
  let res;
  try {
    res = await fetch(path, { ...opts, headers: headers(opts.headers), cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { detail: 'the server is unreachable: ' + e.message }, path);
  }
  if (!res.ok) throw await fail(res, path);
  if (res.status === 204) return null;
  return res.json();
}

// text GETs path as text (the Prometheus exposition of /metrics).
export async function text(path) {
  let res;
  try {
    res = await fetch(path, { headers: headers(), cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, { detail: 'the server is unreachable: ' + e.message }, path);
  }
  if (!res.ok) throw await fail(res, path);
  return res.text();
}

// probe GETs path and returns {status, body} whatever the status: the
// health routes answer 503 with a problem that is their result.
export async function probe(path) {
  try {
    const res = await fetch(path, { headers: headers(), cache: 'no-store' });
    let body = null;
    try { body = await res.json(); } catch { /* empty */ }
    return { status: res.status, body };
  } catch (e) {
    return { status: 0, body: { detail: 'the server is unreachable: ' + e.message } };
  }
}

let specCache = null;
// spec is the server's OpenAPI description (GET /openapi.json), read once
// per token: the console offers what the server describes, and never calls
// a route this server does not have.
export function spec() {
  if (!specCache) {
    specCache = request('/openapi.json').catch((e) => { specCache = null; throw e; });
  }
  return specCache;
}

// has reports whether the server describes method on path.
export async function has(method, path) {
  const d = await spec();
  return Boolean(d.paths && d.paths[path] && d.paths[path][method]);
}

// subscribe reads a Server-Sent Events route with fetch (EventSource cannot
// send an Authorization header) until signal aborts. onEvent gets each
// message's id and parsed data; onId the id of a message without data
// (from=now sends one: where the feed was resolved to start).
export async function subscribe(path, { lastEventId, signal, onOpen, onEvent, onId }) {
  const h = headers({ Accept: 'text/event-stream' });
  if (lastEventId) h.set('Last-Event-ID', lastEventId);
  let res;
  try {
    res = await fetch(path, { headers: h, signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') return;
    throw new ApiError(0, { detail: 'the server is unreachable: ' + e.message }, path);
  }
  if (!res.ok) throw await fail(res, path);
  if (onOpen) onOpen();
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let id = '';
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (line === '') {
          // A blank line ends a message.
          if (data.length) onEvent(id, JSON.parse(data.join('\n')));
          else if (id && onId) onId(id);
          id = '';
          data = [];
        } else if (line.startsWith(':')) {
          // A comment: the heartbeat.
        } else {
          const c = line.indexOf(':');
          const field = c < 0 ? line : line.slice(0, c);
          const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
          if (field === 'id') id = v;
          else if (field === 'data') data.push(v);
        }
      }
    }
  } catch (e) {
    if (e.name === 'AbortError') return;
    throw new ApiError(0, { detail: 'the subscription was cut: ' + e.message }, path);
  }
  throw new ApiError(0, { detail: 'the server ended the subscription' }, path);
}

// enc percent-encodes a path segment.
export const enc = encodeURIComponent;
