// The chat page: a person in the student's seat. Plain DOM, no framework.
// Every text from the server or the person goes into the page through textContent / text nodes,
// never as markup. The protocol (frames) is described in server/chat/lobby.ts.
'use strict';

(() => {
  const $ = id => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const serverToken = params.get('token');
  const RESUME_KEY = 'colloquy.chat.resume';

  let cfg = { title: 'Chat', consent: null, agents: [], maxChars: 2000 };
  let ws = null;
  let resume = sessionStorage.getItem(RESUME_KEY);
  let backoff = 250;
  let consented = false;
  let stopped = false;
  let phase = 'connecting';
  let yourTurn = false;
  let deadline = null;
  let stream = null; // { li, text: Text } while the teacher writes
  let intent = { agent: params.get('agent') || null };
  let counter = 0;
  /** Messages sent and not yet acknowledged: id -> { text, li }. */
  const outbox = new Map();

  const el = {
    conn: $('conn'), consent: $('consent'), consentText: $('consent-text'), consentOk: $('consent-ok'),
    lobby: $('lobby'), agents: $('agents'), agentList: $('agent-list'), chat: $('chat'), log: $('log'),
    typing: $('typing'), ended: $('ended'), endedText: $('ended-text'), again: $('again'),
    form: $('composer'), msg: $('msg'), hint: $('hint'), send: $('send'), end: $('end'),
    announce: $('announce'), alert: $('alert'), title: $('title'),
  };

  function announce(text) { el.announce.textContent = ''; setTimeout(() => { el.announce.textContent = text; }, 30); }
  function alertText(text) { el.alert.textContent = ''; setTimeout(() => { el.alert.textContent = text; }, 30); }
  function setConn(text, bad) { el.conn.textContent = text; el.conn.classList.toggle('bad', !!bad); }

  function show(which) {
    el.consent.hidden = which !== 'consent';
    el.lobby.hidden = which !== 'lobby';
    el.chat.hidden = which !== 'chat';
  }

  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(msg)); return true; }
    return false;
  }

  // ---- rendering ----

  function addLine(line) {
    const li = document.createElement('li');
    li.className = `msg ${line.role}${line.context ? ' context' : ''}`;
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = line.role === 'teacher' ? 'Teacher' : line.context ? 'Student (earlier)' : 'You';
    const body = document.createElement('span');
    body.className = 'body';
    body.textContent = line.text;
    li.append(who, body);
    if (line.role === 'student' && !line.context) {
      const st = document.createElement('span');
      st.className = 'status';
      st.textContent = line.acked === false ? 'Sending…' : 'Sent';
      li.append(st);
      if (line.id) li.dataset.id = line.id;
    }
    el.log.append(li);
    li.scrollIntoView({ block: 'end' });
    return li;
  }

  function setStatus(li, text) {
    const st = li.querySelector('.status');
    if (st) st.textContent = text;
  }

  function ensureStream() {
    if (stream) return stream;
    const li = addLine({ role: 'teacher', text: '' });
    li.classList.add('streaming');
    li.setAttribute('aria-busy', 'true');
    const body = li.querySelector('.body');
    const text = document.createTextNode('');
    body.replaceChildren(text);
    stream = { li, text };
    return stream;
  }

  function endStream(finalText) {
    const s = stream || ensureStream();
    s.text.data = finalText;
    s.li.classList.remove('streaming');
    s.li.removeAttribute('aria-busy');
    stream = null;
  }

  function setTyping(on) { el.typing.hidden = !on; }

  function updateComposer() {
    const open = phase === 'chat';
    el.form.hidden = !open;
    el.send.disabled = !open || !yourTurn;
    el.end.disabled = !open;
    if (!open) return;
    el.hint.classList.remove('warn');
    // No maxlength on the box: it would cut a long paste silently. The person sees it is too long instead.
    const over = el.msg.value.length > cfg.maxChars;
    el.msg.setAttribute('aria-invalid', over ? 'true' : 'false');
    if (over) {
      el.hint.textContent = `Your message is too long: ${el.msg.value.length} characters, at most ${cfg.maxChars}. Please shorten it; nothing is sent until then.`;
      el.hint.classList.add('warn');
    } else if (yourTurn && deadline) {
      const s = Math.max(0, Math.round((deadline - Date.now()) / 1000));
      el.hint.textContent = `Your turn — please reply within ${s} s. Enter sends, Shift+Enter starts a new line.`;
    } else if (yourTurn) {
      el.hint.textContent = 'Your turn. Enter sends, Shift+Enter starts a new line.';
    } else {
      el.hint.textContent = 'The teacher is writing; you can type your reply meanwhile.';
    }
  }
  setInterval(() => { if (yourTurn && deadline) updateComposer(); }, 1000);

  function showEnded(ended) {
    phase = 'ended';
    yourTurn = false;
    deadline = null;
    setTyping(false);
    if (stream) endStream(stream.text.data);
    el.ended.hidden = false;
    el.endedText.textContent = ended.message;
    updateComposer();
    announce(ended.message);
    el.again.focus();
  }

  function render(state) {
    phase = state.phase;
    el.log.replaceChildren();
    stream = null;
    el.ended.hidden = true;
    setTyping(false);
    yourTurn = false;
    deadline = null;
    if (state.phase === 'idle') { start(); return; }
    if (state.phase === 'lobby') { showLobby(); return; }
    show('chat');
    let context = false;
    for (const line of state.lines) {
      if (line.context && !context) {
        context = true;
        const note = document.createElement('li');
        note.className = 'context-note';
        note.textContent = 'Earlier in this conversation';
        el.log.append(note);
      }
      const li = addLine(line);
      if (line.id && outbox.has(line.id)) {
        if (line.acked) outbox.delete(line.id); else outbox.get(line.id).li = li;
      }
    }
    if (state.teacherPartial) {
      ensureStream().text.data = state.teacherPartial;
      setTyping(true);
    }
    if (state.ended) { showEnded(state.ended); return; }
    yourTurn = state.yourTurn;
    deadline = state.msLeft !== null ? Date.now() + state.msLeft : null;
    // Messages the server never received (lost in a drop): show and send them again.
    const known = new Set(state.lines.filter(l => l.id).map(l => l.id));
    for (const [id, m] of outbox) {
      if (known.has(id)) continue;
      m.li = addLine({ role: 'student', text: m.text, id, acked: false });
      if (yourTurn) { send({ type: 'say', id, text: m.text }); yourTurn = false; }
    }
    updateComposer();
  }

  function showLobby() {
    phase = 'lobby';
    show('lobby');
    el.agents.hidden = cfg.agents.length === 0 || intent.agent !== null;
    document.getElementById('lobby-h').textContent = intent.agent ? `Connecting you with ${intent.agent}…` : 'Waiting for a teacher…';
  }

  function start() {
    if (cfg.consent && !consented) { show('consent'); el.consentOk.focus(); return; }
    showLobby();
    send(intent.agent ? { type: 'join', agent: intent.agent } : { type: 'join' });
  }

  // ---- the connection ----

  function onFrame(m) {
    switch (m.type) {
      case 'welcome':
        resume = m.token;
        sessionStorage.setItem(RESUME_KEY, m.token);
        return;
      case 'state': return render(m);
      case 'lobby': return showLobby();
      case 'paired':
        announce('You are connected with a teacher.');
        return;
      case 'teacher-typing':
        setTyping(true);
        ensureStream();
        return;
      case 'teacher-delta':
        ensureStream().text.appendData(m.text);
        stream.li.scrollIntoView({ block: 'end' });
        return;
      case 'teacher-end':
        endStream(m.text);
        setTyping(false);
        announce(`Teacher: ${m.text}`);
        return;
      case 'your-turn':
        yourTurn = true;
        deadline = Date.now() + m.msLeft;
        setTyping(false);
        updateComposer();
        if (document.activeElement === document.body || document.activeElement === null) el.msg.focus();
        return;
      case 'ack': {
        const o = outbox.get(m.id);
        if (o) { setStatus(o.li, 'Sent'); outbox.delete(m.id); }
        if (phase === 'chat') setTyping(true);
        return;
      }
      case 'nack': {
        const o = outbox.get(m.id);
        if (o) {
          outbox.delete(m.id);
          o.li.remove();
          if (!el.msg.value) el.msg.value = o.text;
        }
        // Too long or empty: the teacher still waits for this reply; otherwise it is not the person's turn.
        yourTurn = m.code === 'TOO_LONG' || m.code === 'EMPTY';
        updateComposer();
        el.hint.textContent = `Not sent: ${m.message}`;
        el.hint.classList.add('warn');
        alertText(`Not sent: ${m.message}`);
        return;
      }
      case 'ended': return showEnded(m);
      case 'error':
        alertText(m.message);
        if (phase === 'lobby' || phase === 'connecting') { el.hint.textContent = m.message; }
        return;
      case 'pong': return;
    }
  }

  function connect() {
    if (stopped) return;
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/chat/ws${serverToken ? `?token=${encodeURIComponent(serverToken)}` : ''}`;
    const sock = new WebSocket(url);
    ws = sock;
    sock.onopen = () => {
      backoff = 250;
      setConn('Connected');
      sock.send(JSON.stringify(resume ? { type: 'hello', resume } : { type: 'hello' }));
    };
    sock.onmessage = ev => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m && typeof m.type === 'string') onFrame(m);
    };
    sock.onclose = ev => {
      if (ws !== sock) return;
      ws = null;
      if (ev.code === 4000) { stopped = true; setConn('This conversation continues in another tab.', true); return; }
      setConn('Connection lost — reconnecting…', true);
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 5000);
    };
  }
  setInterval(() => send({ type: 'ping' }), 20000);

  // ---- the person's actions ----

  function submit() {
    const text = el.msg.value;
    if (!text.trim()) return;
    if (phase !== 'chat') return;
    if (!yourTurn) {
      el.hint.textContent = 'Please wait for the teacher to finish; your text stays here.';
      el.hint.classList.add('warn');
      return;
    }
    if (text.length > cfg.maxChars) { updateComposer(); return; }
    const id = `m${Date.now().toString(36)}${(counter++).toString(36)}`;
    const li = addLine({ role: 'student', text, id, acked: false });
    outbox.set(id, { text, li });
    el.msg.value = '';
    yourTurn = false;
    deadline = null;
    updateComposer();
    send({ type: 'say', id, text });
  }

  el.form.addEventListener('submit', ev => { ev.preventDefault(); submit(); });
  el.msg.addEventListener('input', () => { updateComposer(); });
  el.msg.addEventListener('keydown', ev => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); submit(); }
  });
  el.end.addEventListener('click', () => { send({ type: 'end' }); });
  el.again.addEventListener('click', () => {
    el.log.replaceChildren();
    el.ended.hidden = true;
    outbox.clear();
    start();
  });
  el.consentOk.addEventListener('click', () => { consented = true; start(); });

  // ---- boot ----

  const cfgUrl = `/chat/config${serverToken ? `?token=${encodeURIComponent(serverToken)}` : ''}`;
  fetch(cfgUrl).then(r => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`)))).then(c => {
    cfg = c;
    el.title.textContent = c.title;
    document.title = `${c.title} — Colloquy`;
    if (c.consent) el.consentText.textContent = c.consent;
    el.agentList.replaceChildren(...c.agents.map(a => {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'secondary';
      b.textContent = a.description ? `${a.name} — ${a.description}` : a.name;
      b.addEventListener('click', () => {
        intent = { agent: a.name };
        send({ type: 'join', agent: a.name });
        showLobby();
      });
      li.append(b);
      return li;
    }));
    connect();
  }).catch(err => { setConn(`Cannot load the chat: ${err.message}`, true); });
})();
