// The dashboard: renders /dashboard/api/events snapshots (Server-Sent Events, polling as a
// fallback). Every value goes into the page with textContent; charts are SVG built with the DOM.
'use strict';

(() => {
  const token = new URLSearchParams(location.search).get('token');
  const q = token ? `?token=${encodeURIComponent(token)}` : '';
  const $ = id => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';

  function cell(tr, text, cls) {
    const td = document.createElement('td');
    td.textContent = text === null || text === undefined ? '—' : String(text);
    if (cls) td.className = cls;
    tr.append(td);
  }
  function fmt(x, d = 3) { return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '—'; }
  function ago(iso) {
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : new Date(iso).toLocaleString();
  }
  function rows(id, items, fill) {
    const tbody = $(id).tBodies[0];
    tbody.replaceChildren(...items.map(it => { const tr = document.createElement('tr'); fill(tr, it); return tr; }));
    if (!items.length) { const tr = document.createElement('tr'); const td = document.createElement('td'); td.colSpan = $(id).tHead.rows[0].cells.length; td.className = 'muted'; td.textContent = 'none'; tr.append(td); tbody.append(tr); }
  }

  function path(series, cls, box) {
    const pts = series.points;
    const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
    const sx = x => box.l + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (box.w - box.l - box.r);
    const sy = y => box.t + (1 - (y1 === y0 ? 0.5 : (y - y0) / (y1 - y0))) * (box.h - box.t - box.b);
    const p = document.createElementNS(SVG, 'path');
    p.setAttribute('class', cls);
    p.setAttribute('d', pts.map((q, i) => `${i ? 'L' : 'M'}${sx(q[0]).toFixed(1)},${sy(q[1]).toFixed(1)}`).join(''));
    return { p, y0, y1 };
  }

  function chart(run) {
    const box = { w: 400, h: 140, l: 6, r: 6, t: 8, b: 16 };
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${box.w} ${box.h}`);
    svg.setAttribute('role', 'img');
    const parts = [];
    const axis = document.createElementNS(SVG, 'line');
    axis.setAttribute('class', 'axis');
    axis.setAttribute('x1', box.l); axis.setAttribute('x2', box.w - box.r);
    axis.setAttribute('y1', box.h - box.b); axis.setAttribute('y2', box.h - box.b);
    svg.append(axis);
    for (const [s, cls] of [[run.reward, 'reward'], [run.kl, 'kl']]) {
      if (!s || !s.points.length) continue;
      const { p, y0, y1 } = path(s, cls, box);
      svg.append(p);
      parts.push(`${s.key} from ${fmt(s.points[0][1])} to ${fmt(s.points[s.points.length - 1][1])} (range ${fmt(y0)}…${fmt(y1)})`);
    }
    const steps = document.createElementNS(SVG, 'text');
    steps.setAttribute('x', box.l); steps.setAttribute('y', box.h - 3);
    const all = [...(run.reward ? run.reward.points : []), ...(run.kl ? run.kl.points : [])].map(p => p[0]);
    steps.textContent = all.length ? `steps ${Math.min(...all)} … ${Math.max(...all)}` : 'no reward or KL yet';
    svg.append(steps);
    svg.setAttribute('aria-label', parts.length ? parts.join('; ') : 'no reward or KL values yet');
    return svg;
  }

  function renderRuns(runs) {
    $('runs-empty').hidden = runs.length > 0;
    $('runs').replaceChildren(...runs.map(run => {
      const div = document.createElement('div');
      div.className = 'run';
      const h = document.createElement('h3');
      h.textContent = run.name;
      if (run.live) { const s = document.createElement('span'); s.className = 'live'; s.textContent = '● live'; h.append(s); }
      const legend = document.createElement('p');
      legend.className = 'legend';
      const r = document.createElement('span'); r.className = 'r'; r.textContent = run.reward ? `— ${run.reward.key} ${fmt(run.reward.points.at(-1)[1])}` : '';
      const k = document.createElement('span'); k.className = 'k'; k.textContent = run.kl ? `  — ${run.kl.key} ${fmt(run.kl.points.at(-1)[1])}` : '';
      const u = document.createElement('span'); u.textContent = `  · ${run.lines} lines · updated ${ago(run.updatedAt)}`;
      legend.append(r, k, u);
      div.append(h, chart(run), legend);
      return div;
    }));
  }

  function render(s) {
    renderRuns(s.runs);
    const st = s.store;
    $('summary').textContent = `${s.sessions.length} env sessions · ${s.chats ? s.chats.seats.length : 0} chats (${s.chats ? s.chats.waitingPeople : 0} people waiting, ${s.chats ? s.chats.waitingDialogs : 0} dialogs waiting for a person, ${s.hostedConversations} with hosted agents)` +
      (st ? ` · store ${st.file}: ${st.dialogs} dialogs (${st.openDialogs} open), ${st.turns} turns, ${st.episodes} episodes` : '') + ` · up ${s.uptimeSeconds} s`;
    rows('chats', s.chats ? s.chats.seats : [], (tr, c) => { cell(tr, c.id.slice(0, 8)); cell(tr, c.agent); cell(tr, c.person); cell(tr, c.phase); cell(tr, c.turns, 'num'); cell(tr, `${c.ageSeconds} s`, 'num'); });
    rows('sessions', s.sessions, (tr, x) => { cell(tr, x.id.slice(0, 8)); cell(tr, x.env); cell(tr, x.numEnvs, 'num'); cell(tr, x.student); cell(tr, x.attached ? (x.busy ? 'busy' : 'attached') : 'detached'); cell(tr, `${x.idleSeconds} s`, 'num'); });
    rows('dialogs', s.dialogs, (tr, d) => {
      cell(tr, ago(d.createdAt)); cell(tr, d.env); cell(tr, d.agent); cell(tr, d.student); cell(tr, d.turns, 'num');
      cell(tr, d.endReason ? d.endReason : 'open'); cell(tr, fmt(d.meanReward), 'num');
      cell(tr, Object.entries(d.components).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ') || '—', 'text');
      cell(tr, d.lastReply, 'text');
    });
    $('status').textContent = `Updated ${new Date(s.time).toLocaleTimeString()}`;
    $('status').classList.remove('bad');
  }

  let polling = null;
  function poll() {
    fetch(`/dashboard/api/state${q}`).then(r => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`)))).then(render)
      .catch(err => { $('status').textContent = `Cannot update: ${err.message}`; $('status').classList.add('bad'); });
  }
  if (typeof EventSource === 'function') {
    const es = new EventSource(`/dashboard/api/events${q}`);
    es.onmessage = ev => { try { render(JSON.parse(ev.data)); } catch { /* ignore a bad frame */ } };
    es.onerror = () => { $('status').textContent = 'Live feed interrupted — retrying…'; $('status').classList.add('bad'); };
  } else {
    poll();
    polling = setInterval(poll, 2000);
  }
})();
