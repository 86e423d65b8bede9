/**
 * People as judges, below the page: the store (blind pairs, sides per judge, durable idempotent
 * judgements), the HTTP API's coded errors and token, the statistics, and the two commands.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../core/paths.ts';
import { openStore } from '../../server/storage/db.ts';
import { JudgeStore, leftAgent, type NewPair } from '../../server/storage/judging.ts';
import { bradleyTerry, pairRowsBySeed, rowTurns, summariseJudgements, type Judgement } from '../../agents/judging.ts';
import { startTestServer, type TestServer } from '../server/helpers.ts';

const T = (teacher: string, student: string) => [{ role: 'teacher' as const, text: teacher }, { role: 'student' as const, text: student }];
function pairs(study: string, n: number, a = 'kl-budget', b = 'base'): NewPair[] {
  return Array.from({ length: n }, (_, i) => ({ study, promptKey: `seed:${i}`, agentA: a, agentB: b, transcriptA: T(` a${i}`, ' ok'), transcriptB: T(` b${i}`, ' fine') }));
}

let tmp: string;
beforeAll(() => { tmp = mkdtempSync(path.join(os.tmpdir(), 'colloquy-judge-')); });
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the judge store', () => {
  it('shows pairs blind, with sides fixed per judge and pair and balanced across judges', () => {
    const store = openStore(':memory:');
    const j = new JudgeStore(store.db);
    expect(j.addPairs(pairs('s1', 40))).toHaveLength(40);
    expect(j.addPairs(pairs('s1', 40))).toHaveLength(0); // already there
    const judges = Array.from({ length: 20 }, (_, i) => `judge-${String(i).padStart(4, '0')}`);
    let leftIsA = 0;
    for (const judge of judges) {
      const next = j.next('s1', judge)!;
      expect(JSON.stringify(next)).not.toMatch(/kl-budget|"base"/);
      const p = j.pair(next.pair)!;
      const side = leftAgent(p.id, judge);
      expect(next.left).toEqual(side === 'a' ? p.transcriptA : p.transcriptB);
      expect(j.next('s1', judge)!.pair).toBe(next.pair); // same until judged
      for (const pp of store.db.prepare('SELECT id FROM judge_pairs').all() as { id: string }[]) if (leftAgent(pp.id, judge) === 'a') leftIsA++;
    }
    // 800 (judge, pair) sides: about half each way.
    expect(leftIsA).toBeGreaterThan(340);
    expect(leftIsA).toBeLessThan(460);
    // Different judges meet the pairs in different orders.
    expect(new Set(judges.map(x => j.next('s1', x)!.pair)).size).toBeGreaterThan(5);
    store.close();
  });

  it('stores answers in terms of the agents, once, and moves the judge on; fewest-judged pairs first', () => {
    const store = openStore(':memory:');
    const j = new JudgeStore(store.db);
    j.addPairs(pairs('s2', 3));
    const judge = 'abcdefgh01';
    const first = j.next('s2', judge)!;
    const left = leftAgent(first.pair, judge);
    expect(j.judge({ pair: first.pair, judge, answers: { better: 'left', complex: 'tie' }, reason: 'clearer' })).toEqual({ saved: 2, already: false });
    expect(j.judge({ pair: first.pair, judge, answers: { better: 'right', complex: 'right' } })).toEqual({ saved: 0, already: true });
    const rows = j.judgements('s2');
    expect(rows.map(r => [r.question, r.choice, r.shownLeft, r.reason])).toEqual([['better', left, left, 'clearer'], ['complex', 'tie', left, 'clearer']]);
    expect(j.next('s2', judge)!.pair).not.toBe(first.pair);
    expect(j.next('s2', judge)!.progress).toEqual({ judged: 1, total: 3 });
    // Another judge is offered a pair nobody has judged yet.
    expect(j.next('s2', 'zzzzzzzz99')!.pair).not.toBe(first.pair);
    store.close();
  });

  it('refuses malformed judgements with coded errors and writes nothing', () => {
    const store = openStore(':memory:');
    const j = new JudgeStore(store.db);
    const [id] = j.addPairs(pairs('s3', 1));
    const judge = 'abcdefgh02';
    const code = (x: Parameters<JudgeStore['judge']>[0]) => { try { j.judge(x); return 'none'; } catch (e) { return (e as { code: string }).code; } };
    expect(code({ pair: 'nope', judge, answers: { better: 'left', complex: 'left' } })).toBe('NOT_FOUND');
    expect(code({ pair: id, judge: 'short', answers: {} })).toBe('BAD_REQUEST');
    expect(code({ pair: id, judge, answers: { better: 'left' } })).toBe('BAD_REQUEST');
    expect(code({ pair: id, judge, answers: { better: 'left', complex: 'up' } })).toBe('BAD_REQUEST');
    expect(code({ pair: id, judge, answers: { better: 'left', complex: 'left', extra: 'tie' } })).toBe('BAD_REQUEST');
    expect(code({ pair: id, judge, answers: JSON.parse('{"better":"left","complex":"left","__proto__":"tie"}') })).toBe('BAD_REQUEST');
    expect(code({ pair: id, judge, answers: { better: 'left', complex: 'left' }, reason: 'x'.repeat(2001) })).toBe('BAD_REQUEST');
    expect(j.judgements()).toHaveLength(0);
    expect(() => j.addPairs([{ ...pairs('s3', 1)[0]!, agentB: 'kl-budget' }])).toThrow(/two different agents/);
    expect(() => j.addPairs([{ ...pairs('bad study!', 1)[0]! }])).toThrow(/study/);
    store.close();
  });

  it('a judgement is on disk when it is acknowledged (another connection reads it)', () => {
    const file = path.join(tmp, 'durable.db');
    const w = openStore(file);
    const j = new JudgeStore(w.db);
    const [id] = j.addPairs(pairs('s4', 1));
    j.judge({ pair: id, judge: 'abcdefgh03', answers: { better: 'tie', complex: 'left' } });
    const r = openStore(file, { readonly: true });
    expect(new JudgeStore(r.db).judgements('s4')).toHaveLength(2);
    r.close(); w.close();
  });
});

describe('statistics of judgements', () => {
  const mk = (n: number, aWins: number, ties: number): Judgement[] => Array.from({ length: n }, (_, i) => ({
    pairId: `p${i % 30}`, agentA: 'x', agentB: 'y', question: 'better', shownLeft: i % 2 ? 'a' : 'b',
    choice: i < aWins ? 'a' : i < aWins + ties ? 'tie' : 'b',
  }));

  it('win rates count ties half, with an interval over pairs that holds the point and narrows with data', () => {
    const [s] = summariseJudgements(mk(60, 40, 10), { resamples: 500 });
    const p = s!.pairwise[0]!;
    expect(p).toMatchObject({ agent: 'x', opponent: 'y', wins: 40, ties: 10, losses: 10, judgements: 60, pairs: 30 });
    expect(p.winRate.mean).toBeCloseTo(45 / 60, 10);
    expect(p.winRate.lo).toBeLessThan(p.winRate.mean);
    expect(p.winRate.hi).toBeGreaterThan(p.winRate.mean);
    const [big] = summariseJudgements([...mk(60, 40, 10), ...mk(60, 40, 10).map(j => ({ ...j, pairId: `q${j.pairId}` }))], { resamples: 500 });
    expect(big!.pairwise[0]!.winRate.hi - big!.pairwise[0]!.winRate.lo).toBeLessThan(p.winRate.hi - p.winRate.lo);
    expect(s!.ties).toBe(10);
  });

  it('Bradley–Terry ranks three agents as their wins do', () => {
    const js: Judgement[] = [];
    const beats = (w: string, l: string, k: number) => { for (let i = 0; i < k; i++) js.push({ pairId: `${w}${l}${i}`, agentA: w, agentB: l, question: 'better', choice: 'a', shownLeft: 'a' }); };
    beats('top', 'mid', 8); beats('mid', 'top', 2); beats('mid', 'low', 8); beats('low', 'mid', 2); beats('top', 'low', 9); beats('low', 'top', 1);
    const [top, mid, low] = bradleyTerry(js, ['top', 'mid', 'low']);
    expect(top!).toBeGreaterThan(mid!);
    expect(mid!).toBeGreaterThan(low!);
    expect(top! * mid! * low!).toBeCloseTo(1, 6);
    const [s] = summariseJudgements(js, { resamples: 100 });
    expect(s!.bradleyTerry!.map(b => b.agent)).toEqual(['low', 'mid', 'top']);
  });

  it('pairs evaluation rows by env seed', () => {
    const row = (agent: string, envSeed: number) => ({ agent, envSeed, teacherTexts: [` hi ${agent}`, ' and'], studentTexts: [' yes'] });
    const m = pairRowsBySeed([row('a', 3), row('a', 1), row('a', 9)], [row('b', 1), row('b', 3), row('b', 4)]);
    expect(m.map(x => x.seed)).toEqual([1, 3]);
    expect(rowTurns(m[0]!.a)).toEqual([{ role: 'teacher', text: ' hi a' }, { role: 'student', text: ' yes' }, { role: 'teacher', text: ' and' }]);
  });
});

describe('the judge API over HTTP', () => {
  let srv: TestServer;
  beforeAll(async () => { srv = await startTestServer({ token: 'tok' }); srv.app.judging.addPairs(pairs('web', 2)); });
  afterAll(async () => { await srv.close(); });
  const auth = { authorization: 'Bearer tok' };

  it('needs the token for the API but not for the page files', async () => {
    expect((await fetch(`${srv.url}/judge/api/studies`)).status).toBe(401);
    expect((await fetch(`${srv.url}/judge`)).status).toBe(200);
    expect((await fetch(`${srv.url}/judge/judge.js`)).status).toBe(200);
    const res = await fetch(`${srv.url}/judge/api/studies`, { headers: auth });
    expect(await res.json()).toEqual({ studies: [{ study: 'web', pairs: 2, judgements: 0, judges: 0 }] });
  });

  it('serves a blind pair, takes a judgement, and answers bad input with coded errors', async () => {
    const judge = 'httpjudge1';
    const next = await (await fetch(`${srv.url}/judge/api/next?study=web&judge=${judge}`, { headers: auth })).json();
    expect(Object.keys(next).sort()).toEqual(['left', 'pair', 'progress', 'prompt', 'questions', 'right', 'study']);
    const post = (body: unknown, raw?: string) => fetch(`${srv.url}/judge/api/judgements`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: raw ?? JSON.stringify(body) });
    const ok = await post({ pair: next.pair, judge, answers: { better: 'right', complex: 'left' } });
    expect(await ok.json()).toEqual({ ok: true, saved: 2, already: false });
    const bad = async (r: Response, status: number, code: string) => { expect(r.status).toBe(status); expect((await r.json()).error.code).toBe(code); };
    await bad(await post({ pair: 'missing', judge, answers: { better: 'tie', complex: 'tie' } }), 404, 'NOT_FOUND');
    await bad(await post({ pair: next.pair, judge }), 400, 'BAD_REQUEST');
    await bad(await post(null, '{broken'), 400, 'BAD_JSON');
    await bad(await post(null, JSON.stringify({ pair: next.pair, judge, answers: {}, reason: 'x'.repeat(20_000) })), 413, 'PAYLOAD_TOO_LARGE');
    await bad(await fetch(`${srv.url}/judge/api/next?study=web`, { headers: auth }), 400, 'BAD_REQUEST');
    await bad(await fetch(`${srv.url}/judge/api/next?study=web&judge=${'x'.repeat(65)}`, { headers: auth }), 400, 'BAD_REQUEST');
    const after = await (await fetch(`${srv.url}/judge/api/next?study=web&judge=${judge}`, { headers: auth })).json();
    expect(after.pair).not.toBe(next.pair);
  });
});

describe('colloquy judge-add and judge-export', () => {
  it('pairs two agents\' eval rows by seed, and exports judgements with the agents named and a summary', () => {
    const db = path.join(tmp, 'cli.db');
    const rows = (agent: string) => [5, 6, 7].map(envSeed => JSON.stringify({ agent, envSeed, prompt: `Student: prompt ${envSeed}\n\nTeacher: Do you`, teacherTexts: [` ${agent} says`], studentTexts: [' ok'] })).join('\n');
    writeFileSync(path.join(tmp, 'a.jsonl'), rows('alpha'));
    writeFileSync(path.join(tmp, 'b.jsonl'), rows('beta'));
    const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'bin/colloquy.mjs'), ...args], { encoding: 'utf8', cwd: PROJECT_ROOT });
    const add = cli('judge-add', '--db', db, '--study', 'cli', '--a', path.join(tmp, 'a.jsonl'), '--b', path.join(tmp, 'b.jsonl'), '--pairs', '2', '--questions', 'better');
    expect(add.status, add.stderr).toBe(0);
    expect(add.stderr).toMatch(/2 pairs added to study 'cli'/);
    const store = openStore(db);
    const j = new JudgeStore(store.db);
    for (const judge of ['judgeone1', 'judgetwo2']) {
      const n = j.next('cli', judge)!;
      // The judge reads the env's prompt first (eval rows keep it), so a teacher turn that continues it makes sense.
      expect(n.prompt).toMatch(/^Student: prompt [56]\n\nTeacher: Do you$/);
      const alphaLeft = n.left[0]!.text.includes('alpha');
      j.judge({ pair: n.pair, judge, answers: { better: alphaLeft ? 'left' : 'right' } });
    }
    store.close();
    const out = path.join(tmp, 'j.jsonl'), summary = path.join(tmp, 'summary.json');
    const exp = cli('judge-export', '--db', db, '--study', 'cli', '--out', out, '--summary', summary);
    expect(exp.status, exp.stderr).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n').map(l => JSON.parse(l));
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatchObject({ study: 'cli', question: 'better', choice: 'alpha', agentA: 'alpha', agentB: 'beta' });
    expect(exp.stderr).toMatch(/alpha vs beta: win rate 100\.0%/);
    expect(JSON.parse(readFileSync(summary, 'utf8')).questions[0].pairwise[0]).toMatchObject({ agent: 'alpha', wins: 2 });
    const bad = cli('judge-add', '--db', db, '--study', 'cli', '--a', path.join(tmp, 'a.jsonl'), '--b', path.join(tmp, 'a.jsonl'));
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^error BAD_CONFIG: both files are of agent 'alpha'/m);
  });
});
