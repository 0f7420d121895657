// session.js: recently used stream and group names, per tab
// (sessionStorage), newest first.

const max = 20;

export function recent(kind) {
  try { return JSON.parse(sessionStorage.getItem('eventlog.recent.' + kind) || '[]'); } catch { return []; }
}

export function remember(kind, name) {
  const list = [name, ...recent(kind).filter((n) => n !== name)].slice(0, max);
  sessionStorage.setItem('eventlog.recent.' + kind, JSON.stringify(list));
}
