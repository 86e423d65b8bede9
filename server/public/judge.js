// The judging page: a person compares two teachers' conversations of the same prompt.
// Plain DOM, no framework. Every text from the server goes into the page through textContent,
// never as markup. The API is described in server/plugins/judge.ts.
'use strict';

(() => {
  const $ = id => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const token = params.get('token');
  const JUDGE_KEY = 'colloquy.judge.id';
  const MAX_REASON = 2000;

  /** This browser's anonymous judge id (random, kept across visits). */
  function judgeId() {
    let id = null;
    try { id = localStorage.getItem(JUDGE_KEY); } catch { /* storage off: a fresh id per visit */ }
    if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
      const bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      id = Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
      try { localStorage.setItem(JUDGE_KEY, id); } catch { /* ignore */ }
    }
    return id;
  }
  const judge = judgeId();
  let study = params.get('study');
  let current = null;
  let busy = false;

  const el = {
    progress: $('progress'), studies: $('studies'), studyList: $('study-list'), message: $('message'),
    messageH: $('message-h'), messageText: $('message-text'), judging: $('judging'), pairH: $('pair-h'),
    promptBox: $('prompt-box'), prompt: $('prompt'), left: $('left'), right: $('right'),
    form: $('answers'), questions: $('questions'), reason: $('reason'), reasonHint: $('reason-hint'),
    submit: $('submit'), formError: $('form-error'), announce: $('announce'),
  };

  function announce(text) { el.announce.textContent = ''; setTimeout(() => { el.announce.textContent = text; }, 30); }
  function show(which) {
    el.studies.hidden = which !== 'studies';
    el.message.hidden = which !== 'message';
    el.judging.hidden = which !== 'judging';
  }
  function message(title, text) {
    el.messageH.textContent = title;
    el.messageText.textContent = text;
    show('message');
  }

  async function api(path, init = {}) {
    const headers = { ...(init.headers || {}) };
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(path, { ...init, headers });
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    if (res.status === 401) throw Object.assign(new Error('This page needs the server\'s token: open it as /judge?token=…'), { code: 'UNAUTHORIZED' });
    if (!res.ok || (body && body.ok === false)) {
      const e = body && body.error ? body.error : { code: 'INTERNAL', message: `the server answered ${res.status}` };
      throw Object.assign(new Error(e.message), { code: e.code });
    }
    return body;
  }

  function renderTurns(ol, turns) {
    ol.replaceChildren();
    for (const t of turns) {
      const li = document.createElement('li');
      li.className = `msg ${t.role === 'student' ? 'student' : 'teacher'}`;
      const who = document.createElement('span');
      who.className = 'who';
      who.textContent = t.role === 'student' ? 'Student' : 'Teacher';
      const body = document.createElement('span');
      body.className = 'body';
      if (t.text.trim() === '') {
        const em = document.createElement('span');
        em.className = 'empty';
        em.textContent = '(said nothing)';
        body.append(em);
      } else {
        body.textContent = t.text;
      }
      li.append(who, body);
      ol.append(li);
    }
  }

  function renderQuestions(questions) {
    el.questions.replaceChildren();
    questions.forEach((q, i) => {
      const fs = document.createElement('fieldset');
      const lg = document.createElement('legend');
      lg.textContent = q.text;
      fs.append(lg);
      const row = document.createElement('div');
      row.className = 'choices';
      for (const [value, label] of [['left', 'Teacher 1'], ['right', 'Teacher 2'], ['tie', "Can't tell"]]) {
        const id = `q${i}-${value}`;
        const input = document.createElement('input');
        input.type = 'radio';
        input.name = q.id;
        input.value = value;
        input.id = id;
        const lab = document.createElement('label');
        lab.htmlFor = id;
        lab.append(input, document.createTextNode(label));
        row.append(lab);
      }
      fs.append(row);
      el.questions.append(fs);
    });
  }

  function setProgress(p) {
    el.progress.textContent = p.total ? `${p.judged} of ${p.total} pairs judged` : '';
  }

  async function loadStudies() {
    const { studies } = await api('/judge/api/studies');
    if (!studies.length) return message('Nothing to judge yet', 'There are no pairs of conversations on this server yet.');
    if (studies.length === 1) { study = studies[0].study; return loadNext(); }
    el.studyList.replaceChildren();
    for (const s of studies) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      const q = new URLSearchParams({ study: s.study });
      if (token) q.set('token', token);
      a.href = `/judge?${q}`;
      a.textContent = `${s.study} (${s.pairs} pairs)`;
      li.append(a);
      el.studyList.append(li);
    }
    el.progress.textContent = '';
    show('studies');
  }

  async function loadNext() {
    const q = new URLSearchParams({ study, judge });
    const next = await api(`/judge/api/next?${q}`);
    setProgress(next.progress);
    if (next.done) {
      current = null;
      return message('Thank you!', 'You have judged every pair of this study. You can close this page.');
    }
    current = next;
    el.promptBox.hidden = !next.prompt;
    el.prompt.textContent = next.prompt || '';
    renderTurns(el.left, next.left);
    renderTurns(el.right, next.right);
    renderQuestions(next.questions);
    el.reason.value = '';
    el.formError.textContent = '';
    checkReason();
    show('judging');
    el.pairH.focus();
    window.scrollTo(0, 0);
  }

  function checkReason() {
    const n = el.reason.value.length;
    const over = n > MAX_REASON;
    el.reasonHint.textContent = over ? `Your reason is ${n.toLocaleString()} characters long; at most ${MAX_REASON.toLocaleString()} are kept. Please shorten it — nothing is sent until it fits.` : `At most ${MAX_REASON.toLocaleString()} characters.`;
    el.reasonHint.classList.toggle('warn', over);
    return !over;
  }
  el.reason.addEventListener('input', checkReason);

  el.form.addEventListener('submit', async ev => {
    ev.preventDefault();
    if (!current || busy) return;
    const answers = {};
    const missing = [];
    for (const q of current.questions) {
      const picked = el.form.querySelector(`input[name="${CSS.escape(q.id)}"]:checked`);
      if (picked) answers[q.id] = picked.value; else missing.push(q.text);
    }
    if (missing.length) {
      el.formError.textContent = `Please answer: ${missing.join(' ')}`;
      const first = el.form.querySelector(`input[name="${CSS.escape(current.questions.find(q => !answers[q.id]).id)}"]`);
      if (first) first.focus();
      return;
    }
    if (!checkReason()) { el.reason.focus(); el.formError.textContent = 'Your reason is too long.'; return; }
    busy = true;
    el.submit.disabled = true;
    el.formError.textContent = '';
    try {
      const body = { pair: current.pair, judge, answers };
      const reason = el.reason.value.trim();
      if (reason) body.reason = reason;
      await api('/judge/api/judgements', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      announce('Saved. Here is the next pair.');
      await loadNext();
    } catch (e) {
      el.formError.textContent = `Not saved: ${e.message}. Please try again.`;
    } finally {
      busy = false;
      el.submit.disabled = false;
    }
  });

  (study ? loadNext() : loadStudies()).catch(e => message(e.code === 'UNAUTHORIZED' ? 'A token is needed' : 'Something went wrong', e.message));
})();
