// cluster.js: liveness and readiness, the instance's own metrics (shards
// it owns on the shard path, process), and GET /v1/cluster: the instances
// serving the keyspace, the shards each owns with its epoch, and the
// Cassandra nodes with their state. A server that answers a discovery
// route 501 (the per-stream write path) is said not to serve it.

import * as api from './api.js';
import * as prom from './prom.js';
import { h, replace, errorBox, notice, fmt } from './dom.js';

// The discovery routes, and what each is for.
const discovery = [
  ['/v1/cluster', 'instances, what each owns, Cassandra nodes'],
  ['/v1/streams', 'stream listing'],
  ['/v1/categories', 'categories'],
  ['/v1/events/{id}', 'an event by id'],
];

export function mount(root) {
  const probes = h('div', { class: 'grid' });
  const inst = h('div', { class: 'panel' }, h('h2', {}, 'This instance'), h('p', { class: 'muted' }, 'Reading /metrics…'));
  const cluster = h('div', { class: 'panel' }, h('h2', {}, 'Cluster'), h('p', { class: 'muted' }, 'Reading the API description…'));
  replace(root, h('h1', {}, 'Cluster'), probes, inst, cluster);
  const ctl = new AbortController();
  const refresh = () => { drawProbes(probes); drawInstance(inst); };
  refresh();
  drawCluster(cluster, ctl.signal);
  const timer = setInterval(refresh, 5000);
  return () => { ctl.abort(); clearInterval(timer); };
}

async function drawProbes(el) {
  const [live, ready] = await Promise.all([api.probe('/healthz'), api.probe('/readyz')]);
  const card = (key, label, r, okText) => h('div', { class: 'panel card' }, h('div', { class: 'label' }, label),
    h('div', { class: 'value ' + (r.status === 200 ? 'ok' : 'bad'), dataset: { probe: key } }, r.status === 200 ? okText : r.status ? 'HTTP ' + r.status : 'unreachable'),
    r.status !== 200 && r.body ? h('div', { class: 'muted' }, r.body.detail || r.body.code || '') : null);
  replace(el, card('healthz', 'Liveness (/healthz)', live, 'up'), card('readyz', 'Readiness (/readyz): Cassandra and schema', ready, 'ready'));
}

async function drawInstance(el) {
  let samples;
  try {
    samples = prom.parse(await api.text('/metrics'));
  } catch (e) {
    replace(el, h('h2', {}, 'This instance'), errorBox(e, 'GET /metrics'));
    return;
  }
  const one = (name, want) => prom.sum(samples, name, want);
  const goInfo = samples.find((s) => s.name === 'go_info');
  const start = one('process_start_time_seconds');
  const shards = samples.filter((s) => s.name === 'eventlog_shards_owned');
  const rows = [
    ['uptime', start ? fmt((Date.now() / 1000 - start) / 60, ' min') : 'n/a (no process metrics)'],
    ['Go', goInfo ? goInfo.labels.version : 'n/a'],
    ['resident memory', one('process_resident_memory_bytes') !== null ? fmt(one('process_resident_memory_bytes') / (1 << 20), ' MiB') : 'n/a'],
    ['requests in flight', fmt(one('eventlog_http_requests_in_flight'))],
    ['shards owned', shards.length ? fmt(prom.sum(samples, 'eventlog_shards_owned')) : 'n/a'],
    ['shard takeovers', one('eventlog_shard_takeovers_total') !== null ? fmt(one('eventlog_shard_takeovers_total')) : 'n/a'],
    ['appends forwarded to owners', one('eventlog_appends_forwarded_total') !== null ? fmt(one('eventlog_appends_forwarded_total')) : 'n/a'],
    ['commits fenced or unknown', fmt(prom.sum(samples, 'eventlog_shard_commits_total', { outcome: /^(fenced|unknown)$/ }) || 0)],
  ];
  replace(el, h('h2', {}, 'This instance (from its /metrics)'),
    h('dl', { class: 'meta', id: 'instance' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
}

async function drawCluster(el, signal) {
  let d;
  try {
    d = await api.spec();
  } catch (e) {
    replace(el, h('h2', {}, 'Cluster'), errorBox(e, 'GET /openapi.json'));
    return;
  }
  const has = (p) => Boolean(d.paths && d.paths[p] && d.paths[p].get);
  const parts = [h('h2', {}, 'Cluster')];
  let served = has('/v1/cluster');
  if (served) {
    try {
      parts.push(...clusterView(await api.request('/v1/cluster', { signal })));
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status === 501) served = false;
      else parts.push(errorBox(e, 'GET /v1/cluster'));
    }
  }
  if (!served) {
    parts.push(notice('Not available on this server: GET /v1/cluster (the instances, what each owns, the Cassandra nodes) is served on --write-path shards. Only this instance is shown above.'));
  }
  parts.push(h('h2', {}, 'Discovery routes on this server'),
    h('table', { id: 'discovery' }, h('tr', {}, h('th', {}, 'route'), h('th', {}, 'what'), h('th', {}, 'available')),
      discovery.map(([p, what]) => h('tr', {}, h('td', { class: 'mono' }, 'GET ' + p), h('td', {}, what),
        h('td', { class: has(p) && served ? 'ok' : 'muted' }, has(p) && served ? 'yes' : 'not available')))),
    h('p', { class: 'muted' }, `API description: OpenAPI ${d.openapi}, ${Object.keys(d.paths || {}).length} paths (GET /openapi.json).`));
  replace(el, ...parts);
}

// clusterView draws GET /v1/cluster: instances with their shards, shards
// without an owner, Cassandra nodes.
function clusterView(c) {
  const row = (...cells) => h('tr', {}, cells.map((v) => h('td', {}, v)));
  const head = (...cells) => h('tr', {}, cells.map((v) => h('th', {}, v)));
  const out = [
    h('p', {}, `Keyspace ${c.keyspace}, ${c.shards} shards, ${c.instances.length} live instance${c.instances.length === 1 ? '' : 's'}.`),
    h('table', { id: 'instances' }, head('instance', 'address', 'version', 'schema', 'started', 'shards (shard:epoch)'),
      c.instances.map((i) => h('tr', { dataset: { instance: i.id } },
        h('td', { class: 'mono' }, i.id + (i.id === c.self ? ' (this one)' : '')),
        h('td', { class: 'mono' }, i.address || '–'), h('td', {}, i.version), h('td', {}, String(i.schema_version || '–')),
        h('td', {}, i.started),
        h('td', { class: 'mono' }, i.shards.map((s) => `${s.shard}:${s.epoch}`).join(' ') || '–')))),
  ];
  if (c.unowned_shards.length) {
    out.push(notice(`Shards without a live owner (being taken over): ${c.unowned_shards.join(', ')}`));
  }
  out.push(h('h2', {}, 'Cassandra nodes'),
    h('table', { id: 'nodes' }, head('node', 'state', 'data centre', 'rack', 'version', 'host id'),
      c.cassandra_nodes.map((n) => h('tr', {},
        h('td', { class: 'mono' }, n.address + (n.coordinator ? ' (answered)' : '')),
        h('td', { class: n.state === 'up' ? 'ok' : 'bad' }, n.state),
        h('td', {}, n.data_center), h('td', {}, n.rack), h('td', {}, n.release_version), h('td', { class: 'mono' }, n.host_id)))));
  return out;
}
