// prom.js: reading the server's own /metrics (Prometheus text format) and
// computing rates and quantiles between two scrapes, as PromQL's rate()
// and histogram_quantile() would over that window.

// parse returns the samples of an exposition: [{name, labels, value}].
export function parse(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let i = 0;
    while (i < line.length && /[A-Za-z0-9_:]/.test(line[i])) i++;
    const name = line.slice(0, i);
    const labels = {};
    if (line[i] === '{') {
      i++;
      for (;;) {
        while (line[i] === ' ' || line[i] === ',') i++;
        if (line[i] === '}') { i++; break; }
        const eq = line.indexOf('=', i);
        if (eq < 0) break;
        const key = line.slice(i, eq).trim();
        i = eq + 2; // past ="
        let v = '';
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\') {
            i++;
            v += line[i] === 'n' ? '\n' : line[i];
          } else v += line[i];
          i++;
        }
        i++; // past the closing quote
        labels[key] = v;
      }
    }
    const rest = line.slice(i).trim().split(/\s+/);
    out.push({ name, labels, value: parseValue(rest[0]) });
  }
  return out;
}

function parseValue(s) {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s);
}

function matches(labels, want) {
  return Object.entries(want || {}).every(([k, v]) => (v instanceof RegExp ? v.test(labels[k] || '') : labels[k] === v));
}

// sum adds the samples of name whose labels match want (a value or a
// RegExp per label); null if there is none.
export function sum(samples, name, want) {
  let total = null;
  for (const s of samples) {
    if (s.name === name && matches(s.labels, want)) total = (total || 0) + s.value;
  }
  return total;
}

// buckets sums the cumulative buckets of histogram name over the matching
// series: [[le, count], …] sorted by le.
export function buckets(samples, name, want) {
  const m = new Map();
  for (const s of samples) {
    if (s.name !== name + '_bucket' || !matches(s.labels, want)) continue;
    const le = parseValue(s.labels.le);
    m.set(le, (m.get(le) || 0) + s.value);
  }
  return [...m.entries()].sort((a, b) => a[0] - b[0]);
}

// rate is the per-second increase of a counter between two scrapes taken
// dt seconds apart; a counter that went down (a restart) counts from 0.
export function rate(before, after, dt) {
  if (before === null || after === null || !(dt > 0)) return null;
  const inc = after >= before ? after - before : after;
  return inc / dt;
}

// quantile is histogram_quantile(q) of the observations made between two
// scrapes of cumulative buckets (linear within a bucket, as Prometheus
// does); null when nothing was observed.
export function quantile(q, before, after) {
  const prev = new Map(before);
  const d = after.map(([le, c]) => [le, Math.max(0, c - (prev.get(le) || 0))]);
  if (!d.length) return null;
  const total = d[d.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, c] of d) {
    if (c >= rank) {
      if (le === Infinity) return lower; // above the last finite bound: its bound is the best we know
      if (c === below) return le;
      return lower + (le - lower) * ((rank - below) / (c - below));
    }
    lower = le === Infinity ? lower : le;
    below = c;
  }
  return lower;
}
