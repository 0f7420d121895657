// chart.js: a small SVG line chart of [t (ms), value] points over the last
// window milliseconds; a second series draws in another colour.

const ns = 'http://www.w3.org/2000/svg';

function el(tag, attrs) {
  const e = document.createElementNS(ns, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

export function chart(series, { window, now, format, labels }) {
  const W = 400;
  const H = 120;
  const pad = { l: 44, r: 6, t: 8, b: 16 };
  const svg = el('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
  let max = 0;
  for (const s of series) for (const [, v] of s) if (Number.isFinite(v)) max = Math.max(max, v);
  if (max === 0) max = 1;
  const x = (t) => pad.l + ((t - (now - window)) / window) * (W - pad.l - pad.r);
  const y = (v) => H - pad.b - (v / max) * (H - pad.t - pad.b);
  svg.append(el('line', { class: 'axis', x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b }));
  svg.append(el('line', { class: 'axis', x1: pad.l, y1: pad.t, x2: W - pad.r, y2: pad.t }));
  const top = el('text', { x: 2, y: pad.t + 8 });
  top.textContent = format(max);
  const zero = el('text', { x: 2, y: H - pad.b });
  zero.textContent = format(0);
  const left = el('text', { x: pad.l, y: H - 3 });
  left.textContent = window >= 120000 ? `-${Math.round(window / 60000)} min` : `-${Math.round(window / 1000)} s`;
  const right = el('text', { x: W - pad.r - 20, y: H - 3 });
  right.textContent = 'now';
  svg.append(top, zero, left, right);
  series.forEach((s, i) => {
    const pts = s.filter(([t, v]) => t >= now - window && Number.isFinite(v)).map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
    if (pts.length) svg.append(el('polyline', { class: i ? 'line2' : 'line', points: pts.join(' ') }));
  });
  if (labels) {
    const t = el('text', { x: pad.l + 4, y: pad.t + 10 });
    t.textContent = labels;
    svg.append(t);
  }
  return svg;
}
