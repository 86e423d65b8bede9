import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ColloquyError } from '../../core/errors.ts';
import { openStore, storedText, type Store } from '../../server/storage/db.ts';

function errCode(fn: () => unknown): string {
  try { fn(); return 'no error'; } catch (e) { return e instanceof ColloquyError ? e.code : `${(e as Error).name}: ${(e as Error).message}`; }
}

/** A clock that advances 1 s per reading, from a fixed start. */
function clock(start = '2024-05-01T12:00:00.000Z'): () => Date {
  let t = Date.parse(start);
  return () => new Date((t += 1000) - 1000);
}

describe('Store: dialogs, turns, rewards, episodes', () => {
  let store: Store;
  beforeEach(() => { store = openStore(':memory:', { now: clock() }); });
  afterEach(() => store.close());

  it('opens with foreign keys, busy timeout and the latest schema', () => {
    expect(store.db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(store.db.pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(store.schemaVersion).toBe(3);
    expect(store.synchronous).toBe('FULL');
  });

  it('stores a dialog with its turns and rewards and reads it back', () => {
    const d = store.startDialog({ env: 'TeacherStudent-v0', agentId: 'run-7', agentName: 'ppo-kl20', student: 'human', sessionId: 's1', seed: 42, metadata: { consent: true } });
    expect(d).toMatchObject({ env: 'TeacherStudent-v0', agentId: 'run-7', agentName: 'ppo-kl20', student: 'human', sessionId: 's1', seed: 42,
      endedAt: null, endReason: null, endDetail: null, metadata: { consent: true } });
    expect(d.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(d.createdAt).toMatch(/^2024-05-01T12:00:\d\d\.000Z$/); // the injected clock

    const t0 = store.appendTurn(d.id, { role: 'teacher', text: 'Do you know what a discussion is?', tokenCount: 9 });
    const t1 = store.appendTurn(d.id, { role: 'student', text: 'Not really.', metadata: { latencyMs: 3100 } });
    expect([t0.index, t1.index]).toEqual([0, 1]);
    expect(t1.id).toBeGreaterThan(t0.id);
    const r = store.recordReward(d.id, t1.index, { total: 0.25, components: { sentiment: 0.2, question: 0.05 } });
    expect(r).toMatchObject({ dialogId: d.id, turn: 1, total: 0.25, components: { sentiment: 0.2, question: 0.05 } });
    const ended = store.endDialog(d.id, 'truncated', 'human timeout after 120 s');
    expect(ended).toMatchObject({ endReason: 'truncated', endDetail: 'human timeout after 120 s' });
    expect(ended.endedAt! > d.createdAt).toBe(true);

    const got = store.getDialog(d.id)!;
    expect(got.turns.map(t => [t.index, t.role, t.text, t.tokenCount, t.metadata])).toEqual([
      [0, 'teacher', 'Do you know what a discussion is?', 9, {}],
      [1, 'student', 'Not really.', null, { latencyMs: 3100 }],
    ]);
    expect(got.rewards).toEqual([r]);
    expect(got.endReason).toBe('truncated');
    expect(store.getDialog('nope')).toBeUndefined();
    expect(store.stats()).toEqual({ dialogs: 1, openDialogs: 0, turns: 2, rewards: 1, episodes: 0 });
  });

  it('accepts caller ids, explicit indexes and times', () => {
    store.startDialog({ id: 'chat-1', env: 'E-v0', student: 'scripted', createdAt: '2024-01-02T03:04:05Z' });
    expect(store.getDialog('chat-1')!.createdAt).toBe('2024-01-02T03:04:05.000Z');
    store.appendTurn('chat-1', { role: 'system', text: 'prompt', index: 0, createdAt: 1704164645000 });
    expect(errCode(() => store.appendTurn('chat-1', { role: 'teacher', text: 'retry', index: 0 }))).toBe('BAD_REQUEST');
    expect(store.appendTurn('chat-1', { role: 'teacher', text: 'next' }).index).toBe(1);
    expect(errCode(() => store.appendTurn('chat-1', { role: 'teacher', text: 'gap', index: 5 }))).toBe('BAD_REQUEST');
    expect(errCode(() => store.appendTurn('missing', { role: 'teacher', text: 'x', index: 3 }))).toBe('NOT_FOUND');
    expect(store.appendTurn('chat-1', { role: 'student', text: 'ok', index: 2 }).index).toBe(2);
    expect(errCode(() => store.startDialog({ id: 'chat-1', env: 'E-v0', student: 'human' }))).toBe('BAD_REQUEST');
  });

  it('refuses bad input with coded errors and writes nothing', () => {
    const d = store.startDialog({ env: 'E-v0', student: 'simulated' });
    const cases: [string, () => unknown, string][] = [
      ['unknown dialog', () => store.appendTurn('missing', { role: 'student', text: 'hi' }), 'NOT_FOUND'],
      ['bad role', () => store.appendTurn(d.id, { role: 'robot' as 'student', text: 'hi' }), 'BAD_REQUEST'],
      ['text not a string', () => store.appendTurn(d.id, { role: 'student', text: 42 as unknown as string }), 'BAD_REQUEST'],
      ['negative token count', () => store.appendTurn(d.id, { role: 'student', text: 'x', tokenCount: -1 }), 'BAD_REQUEST'],
      ['metadata not an object', () => store.appendTurn(d.id, { role: 'student', text: 'x', metadata: [1] as unknown as Record<string, unknown> }), 'BAD_REQUEST'],
      ['metadata with a bigint', () => store.appendTurn(d.id, { role: 'student', text: 'x', metadata: { n: 1n } }), 'BAD_REQUEST'],
      ['bad time', () => store.appendTurn(d.id, { role: 'student', text: 'x', createdAt: 'yesterday-ish' }), 'BAD_REQUEST'],
      ['bad student kind', () => store.startDialog({ env: 'E', student: 'alien' as 'human' }), 'BAD_REQUEST'],
      ['fractional seed', () => store.startDialog({ env: 'E', student: 'human', seed: 1.5 }), 'BAD_REQUEST'],
      ['reward of a missing turn', () => store.recordReward(d.id, 5, { total: 1 }), 'NOT_FOUND'],
      ['NaN reward', () => store.recordReward(d.id, 0, { total: Number.NaN }), 'BAD_REQUEST'],
      ['infinite component', () => store.recordReward(d.id, 0, { total: 1, components: { s: Infinity } }), 'BAD_REQUEST'],
      ['bad end reason', () => store.endDialog(d.id, 'bored' as 'terminated'), 'BAD_REQUEST'],
      ['end unknown dialog', () => store.endDialog('missing', 'terminated'), 'NOT_FOUND'],
      ['episode without booleans', () => store.recordEpisode({ env: 'E', return: 1, length: 1, terminated: 1 as unknown as boolean, truncated: false }), 'BAD_REQUEST'],
    ];
    for (const [what, fn, code] of cases) expect(errCode(fn), what).toBe(code);
    expect(store.stats()).toEqual({ dialogs: 1, openDialogs: 1, turns: 0, rewards: 0, episodes: 0 });
  });

  it('rejects turns and a second end once a dialog has ended, but still takes its last reward', () => {
    const d = store.startDialog({ env: 'E-v0', student: 'human' });
    const t = store.appendTurn(d.id, { role: 'student', text: 'bye' });
    store.endDialog(d.id, 'terminated', 'end conversation button');
    expect(errCode(() => store.appendTurn(d.id, { role: 'teacher', text: 'wait' }))).toBe('CLOSED');
    expect(errCode(() => store.endDialog(d.id, 'abandoned'))).toBe('CLOSED');
    // The reward of the final reply may be computed after the end (asynchronous scorer).
    expect(store.recordReward(d.id, t.index, { total: 0.9 }).total).toBe(0.9);
    expect(errCode(() => store.recordReward(d.id, t.index, { total: 0.1 }))).toBe('BAD_REQUEST');
  });

  it('writes a turn and its reward atomically in a transaction', () => {
    const d = store.startDialog({ env: 'E-v0', student: 'simulated' });
    expect(() => store.transaction(() => {
      const t = store.appendTurn(d.id, { role: 'student', text: 'great!' });
      store.recordReward(d.id, t.index, { total: Number.NaN });
    })).toThrow(ColloquyError);
    expect(store.getTurns(d.id)).toEqual([]);
    store.transaction(() => {
      const t = store.appendTurn(d.id, { role: 'student', text: 'great!' });
      store.recordReward(d.id, t.index, { total: 1 });
    });
    expect(store.getDialog(d.id)!.rewards).toHaveLength(1);
  });

  it('lists dialogs by time, env and agent, and the most recent first', () => {
    const at = (h: number): string => `2024-05-0${1 + Math.floor(h / 24)}T${String(h % 24).padStart(2, '0')}:00:00.000Z`;
    const specs = [
      { id: 'a', env: 'TeacherStudent-v0', agentName: 'ppo', h: 0 },
      { id: 'b', env: 'TeacherStudent-v0', agentName: 'imitation', h: 5 },
      { id: 'c', env: 'Echo-v0', agentName: 'ppo', h: 10 },
      { id: 'd', env: 'TeacherStudent-v0', agentName: null, agentId: 'ppo', h: 30 },
      { id: 'e', env: 'TeacherStudent-v0', agentName: 'ppo', h: 50 },
    ];
    for (const s of specs) store.startDialog({ id: s.id, env: s.env, agentName: s.agentName, agentId: s.agentId ?? null, student: 'human', createdAt: at(s.h) });
    store.appendTurn('e', { role: 'teacher', text: 'hello' });
    store.endDialog('a', 'terminated');
    const ids = (f: Parameters<Store['listDialogs']>[0]): string[] => store.listDialogs(f).map(d => d.id);
    expect(ids({})).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(ids({ since: at(5) })).toEqual(['b', 'c', 'd', 'e']); // since is inclusive
    expect(ids({ until: at(10) })).toEqual(['a', 'b']); // until is exclusive
    expect(ids({ since: '2024-05-01', until: '2024-05-02' })).toEqual(['a', 'b', 'c']);
    expect(ids({ env: 'TeacherStudent-v0' })).toEqual(['a', 'b', 'd', 'e']);
    expect(ids({ agent: 'ppo' })).toEqual(['a', 'c', 'd', 'e']); // name or id
    expect(ids({ agent: 'ppo', env: 'TeacherStudent-v0', since: at(1) })).toEqual(['d', 'e']);
    expect(ids({ endedOnly: true })).toEqual(['a']);
    expect(ids({ limit: 2, order: 'desc' })).toEqual(['e', 'd']);
    expect(store.countDialogs({ agent: 'ppo' })).toBe(4);
    const recent = store.recentDialogs(2);
    expect(recent.map(d => d.id)).toEqual(['e', 'd']);
    expect(recent[0]!.turns.map(t => t.text)).toEqual(['hello']);
    expect(errCode(() => store.listDialogs({ since: 'not a date' }))).toBe('BAD_REQUEST');
  });

  it('iterates over many dialogs page by page, across equal timestamps, in order', () => {
    const ids: string[] = [];
    for (let i = 0; i < 23; i++) {
      // Groups of 5 dialogs share a timestamp: the keyset must use the id as tie-breaker.
      const d = store.startDialog({ id: `d${String(i).padStart(2, '0')}`, env: 'E-v0', student: 'simulated', createdAt: Date.UTC(2024, 0, 1, Math.floor(i / 5)) });
      store.appendTurn(d.id, { role: 'teacher', text: `t${i}` });
      ids.push(d.id);
    }
    const seen = [...store.iterateDialogs({}, 4)];
    expect(seen.map(d => d.id)).toEqual(ids);
    expect(seen.map(d => d.turns[0]!.text)).toEqual(ids.map((_, i) => `t${i}`));
    expect([...store.iterateDialogs({ since: Date.UTC(2024, 0, 1, 2) }, 3)].map(d => d.id)).toEqual(ids.slice(10));
    // The store stays writable between pages.
    const it = store.iterateDialogs({}, 2);
    it.next();
    store.appendTurn('d00', { role: 'student', text: 'written mid-iteration' });
    expect([...it]).toHaveLength(22);
  });

  it('abandons dialogs left open by a previous run, and deletes a dialog on request', () => {
    const old = store.startDialog({ env: 'E-v0', student: 'human', createdAt: '2024-01-01T00:00:00Z' });
    const fresh = store.startDialog({ env: 'E-v0', student: 'human', createdAt: '2024-06-01T00:00:00Z' });
    store.appendTurn(old.id, { role: 'student', text: 'hello?' });
    store.recordReward(old.id, 0, { total: 0.4 });
    expect(store.abandonOpenDialogs('server restarted', '2024-03-01T00:00:00Z')).toBe(1);
    expect(store.getDialog(old.id)).toMatchObject({ endReason: 'abandoned', endDetail: 'server restarted' });
    expect(store.getDialog(fresh.id)!.endReason).toBeNull();
    expect(store.abandonOpenDialogs('shutdown')).toBe(1);

    const ep = store.recordEpisode({ env: 'E-v0', return: 0.4, length: 1, terminated: false, truncated: true, dialogId: old.id });
    expect(store.deleteDialog(old.id)).toBe(true);
    expect(store.deleteDialog(old.id)).toBe(false);
    expect(store.getDialog(old.id)).toBeUndefined();
    expect(store.stats()).toMatchObject({ dialogs: 1, turns: 0, rewards: 0, episodes: 1 });
    expect(store.listEpisodes()[0]).toMatchObject({ id: ep.id, dialogId: null });
  });

  it('records and lists episodes', () => {
    const a = store.recordEpisode({ env: 'TeacherStudent-v0', sessionId: 's1', seed: 1, return: 1.5, length: 256, terminated: false, truncated: true, agentName: 'ppo', metadata: { kl: 10.2 } });
    store.recordEpisode({ env: 'Echo-v0', sessionId: 's2', seed: 2, return: -3, length: 32, terminated: true, truncated: false });
    store.recordEpisode({ env: 'TeacherStudent-v0', sessionId: 's1', seed: 3, return: 0, length: 0, terminated: true, truncated: false });
    expect(a).toMatchObject({ env: 'TeacherStudent-v0', sessionId: 's1', seed: 1, return: 1.5, length: 256, terminated: false, truncated: true, dialogId: null, agentName: 'ppo', metadata: { kl: 10.2 } });
    expect(store.listEpisodes({ env: 'TeacherStudent-v0' }).map(e => e.seed)).toEqual([1, 3]);
    expect(store.listEpisodes({ sessionId: 's2' }).map(e => e.return)).toEqual([-3]);
    expect(store.listEpisodes({ order: 'desc', limit: 1 }).map(e => e.seed)).toEqual([3]);
    expect(errCode(() => store.recordEpisode({ env: 'E', return: 0, length: 1, terminated: false, truncated: false, dialogId: 'missing' }))).toBe('NOT_FOUND');
  });

  it('refuses writes when read-only or closed', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'colloquy-store-'));
    try {
      const file = path.join(dir, 'sub', 'c.db');
      const w = openStore(file);
      expect(w.journalMode).toBe('wal');
      const d = w.startDialog({ env: 'E-v0', student: 'human' });
      w.appendTurn(d.id, { role: 'student', text: 'hi' });
      const r = openStore(file, { readonly: true });
      expect(r.getDialog(d.id)!.turns[0]!.text).toBe('hi');
      expect(errCode(() => r.appendTurn(d.id, { role: 'student', text: 'x' }))).toBe('BAD_REQUEST');
      // A concurrent reader sees the writer's new commits.
      w.appendTurn(d.id, { role: 'teacher', text: 'hello' });
      expect(r.getTurns(d.id)).toHaveLength(2);
      r.close(); w.close();
      expect(errCode(() => w.appendTurn(d.id, { role: 'student', text: 'x' }))).toBe('CLOSED');
      expect(errCode(() => openStore(path.join(dir, 'missing.db'), { readonly: true }))).toBe('NOT_FOUND');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Store: hostile text', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'colloquy-hostile-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const HOSTILE: [string, string][] = [
    ['sql injection', "'); DROP TABLE turns; --"],
    ['sql quotes', `Robert'); DELETE FROM dialogs WHERE ('1'='1`],
    ['like wildcards', '%_%\\'],
    ['NUL in the middle', 'before\u0000after'],
    ['only NULs', '\u0000\u0000\u0000'],
    ['control characters', '\u0001\u0007\b\t\n\v\f\r\u001b[31mred\u001b[0m\u007f'],
    ['html', '<script>alert(1)</script><img src=x onerror=alert(2)>'],
    ['json-ish', '{"role":"assistant","content":"injected"}\n{"messages":[]}'],
    ['emoji and astral', '👩🏽‍🏫 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🏳️‍🌈'],
    ['right-to-left and combining', '\u202eevil\u202c مرحبا e\u0301\u0301'],
    ['line and paragraph separators', 'a\u2028b\u2029c'],
    ['byte order mark and noncharacters', '\ufeff\ufffe\uffff'],
    ['empty', ''],
    ['huge', 'I do not understand. '.repeat(250_000)], // ~5 MB
  ];

  it('stores every hostile string and reads it back exactly, in text, ids and metadata', () => {
    const file = path.join(dir, 'h.db');
    const store = openStore(file);
    const d = store.startDialog({ id: "x'); DROP TABLE dialogs; --\u0000", env: '<env>\u0000', agentName: "'; --", student: 'human', metadata: { note: "'); DROP TABLE x; --\u0000" } });
    for (const [name, text] of HOSTILE) store.appendTurn(d.id, { role: 'student', text, metadata: { name, echo: text.slice(0, 1000) } });
    store.close();

    const again = openStore(file, { readonly: true });
    const got = again.getDialog("x'); DROP TABLE dialogs; --\u0000")!;
    expect(got.env).toBe('<env>\u0000');
    expect(got.metadata).toEqual({ note: "'); DROP TABLE x; --\u0000" });
    expect(got.turns).toHaveLength(HOSTILE.length);
    got.turns.forEach((t, i) => {
      const [name, text] = HOSTILE[i]!;
      expect(t.text.length, name).toBe(text.length);
      expect(t.text === text, name).toBe(true);
      expect(t.metadata, name).toEqual({ name, echo: text.slice(0, 1000) });
    });
    expect(again.listDialogs({ agent: "'; --" })).toHaveLength(1);
    again.close();
  });

  it('replaces lone surrogates by U+FFFD (one per surrogate) and keeps valid pairs', () => {
    const store = openStore(':memory:');
    const d = store.startDialog({ env: 'E-v0', student: 'human' });
    const cases: [string, string][] = [
      ['lone high \ud800 here', 'lone high \ufffd here'],
      ['lone low \udc00 here', 'lone low \ufffd here'],
      ['reversed pair \udc00\ud800', 'reversed pair \ufffd\ufffd'],
      ['at the end \ud83d', 'at the end \ufffd'],
      ['valid pair \ud83d\ude00 kept', 'valid pair 😀 kept'],
    ];
    for (const [input, expected] of cases) {
      expect(storedText(input)).toBe(expected);
      const t = store.appendTurn(d.id, { role: 'student', text: input });
      expect(t.text).toBe(expected);
    }
    expect(store.getTurns(d.id).map(t => t.text)).toEqual(cases.map(c => c[1]));
    store.close();
  });
});
