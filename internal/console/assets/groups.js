// groups.js: a consumer group's members, partitions (owner, epoch, lease,
// checkpoint, lag) and total lag, from GET /v1/groups/{group}, refreshed
// every few seconds. No route lists the groups yet: names used in this tab
// are remembered, and the overview lists the groups whose lag /metrics
// exports.

import * as api from './api.js';
import { h, replace, errorBox, notice, ago, short, fmt } from './dom.js';
import { recent, remember } from './session.js';

export function mount(root, route) {
  const name = route.arg;
  const every = Math.max(1, Number(route.params.every) || 5) * 1000;
  const input = h('input', { type: 'search', placeholder: 'group name', value: name || '', name: 'group', 'aria-label': 'group name' });
  const open = () => { if (input.value.trim()) route.navigate('groups', input.value.trim(), {}); };
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
  const list = h('ul', { class: 'recent' });
  const drawRecent = () => {
    const names = recent('groups');
    replace(list, names.length ? names.map((n) => h('li', {}, h('a', { href: '#/groups/' + encodeURIComponent(n) }, n)))
      : h('li', { class: 'muted' }, 'None yet.'));
  };
  drawRecent();
  const main = h('div');
  replace(root, h('h1', {}, 'Consumer groups'),
    h('div', { class: 'split' },
      h('div', { class: 'panel' },
        h('div', { class: 'row' }, input, h('button', { type: 'button', onclick: open }, 'Open')),
        h('h2', { class: 'muted' }, 'Recent in this tab'),
        list,
        h('p', { class: 'muted status' }, 'No route lists groups yet; the Overview shows every group whose lag the server exports.')),
      main));
  if (!name) {
    replace(main, h('div', { class: 'panel' }, h('p', {}, 'Enter a group name to see its members, partitions, checkpoints and lag.')));
    return null;
  }
  const ctl = new AbortController();
  let timer = null;
  const refresh = async () => {
    try {
      const g = await api.request('/v1/groups/' + api.enc(name), { signal: ctl.signal });
      if (!recent('groups').includes(name)) {
        remember('groups', name);
        drawRecent();
      }
      draw(main, g);
    } catch (e) {
      if (e.name === 'AbortError') return;
      replace(main, e.code === 'group_not_found' ? notice(`No group ${name}: no member ever joined it.`) : errorBox(e, 'GET /v1/groups/' + name));
    }
  };
  refresh();
  timer = setInterval(refresh, every);
  return () => { ctl.abort(); clearInterval(timer); };
}

function draw(main, g) {
  const owners = new Map();
  for (const p of g.partitions) owners.set(p.owner, (owners.get(p.owner) || 0) + 1);
  replace(main,
    h('div', { class: 'grid' },
      h('div', { class: 'panel card' }, h('div', { class: 'label' }, 'feed'), h('div', { class: 'value small' }, g.feed)),
      h('div', { class: 'panel card' }, h('div', { class: 'label' }, 'total lag (events)'),
        h('div', { class: 'value', dataset: { metric: 'group-lag' } }, fmt(g.lag) + (g.lag_capped ? '+' : '')),
        g.lag_capped ? h('div', { class: 'muted' }, 'counted up to a cap') : null),
      h('div', { class: 'panel card' }, h('div', { class: 'label' }, 'members'), h('div', { class: 'value' }, String(g.members.length))),
      h('div', { class: 'panel card' }, h('div', { class: 'label' }, 'feed watermark'), h('div', { class: 'mono' }, g.watermark), h('div', { class: 'muted' }, ago(g.watermark)))),
    h('div', { class: 'panel' }, h('h2', {}, 'Members'),
      g.members.length
        ? h('table', { id: 'members' }, h('tr', {}, h('th', {}, 'member'), h('th', {}, 'partitions'), h('th', {}, 'lease until')),
          g.members.map((m) => h('tr', {}, h('td', {}, m.member), h('td', {}, String(owners.get(m.member) || 0)), h('td', { class: 'mono' }, m.expires_at))))
        : h('p', { class: 'muted' }, 'No live member: the partitions wait at their checkpoints.')),
    h('div', { class: 'panel' }, h('h2', {}, 'Partitions'),
      h('table', { id: 'partitions' },
        h('tr', {}, h('th', {}, 'partition'), h('th', {}, 'owner'), h('th', {}, 'epoch'), h('th', {}, 'lease until'), h('th', {}, 'checkpoint'), h('th', {}, 'lag')),
        g.partitions.map((p) => h('tr', {},
          h('td', {}, String(p.partition)), h('td', {}, p.owner || h('span', { class: 'muted' }, 'none')), h('td', {}, String(p.epoch)),
          h('td', { class: 'mono' }, p.lease_until || ''), h('td', { class: 'mono', title: p.checkpoint }, p.checkpoint ? short(p.checkpoint, 16) : h('span', { class: 'muted' }, 'start')),
          h('td', {}, fmt(p.lag) + (p.lag_capped ? '+' : '')))))),
    h('p', { class: 'muted' }, `Created ${g.created_at || '?'}; refreshed every few seconds.`));
}
