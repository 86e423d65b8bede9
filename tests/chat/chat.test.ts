/**
 * Live human chat at the protocol level (no browser): a remote agent plays the teacher over
 * /v1/env with student "human"; a scripted person speaks the chat page's WebSocket protocol. The
 * step that ends the teacher's turn waits for the person; the reply is rewarded exactly as a
 * simulated student's would be; everything lands in the store; timeouts truncate; a dropped person
 * resumes; hosted agents; record modes; the dashboard and its auth.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectVectorEnv, type RemoteVectorEnv } from '../../agents/client.ts';
import { ColloquyError, getSpec, make } from '../../env/index.ts';
import { defaultModelDir } from '../../core/paths.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import { createCompositeReward } from '../../rewards/composite.ts';
import type { BpeTokenizer } from '../../models/tokenizer.ts';
import { PersonClient, startChatServer, type ChatServer } from './helpers.ts';
import { waitFor } from '../helpers/wait.ts';

let tok: BpeTokenizer;
let tmp: string;
const servers: ChatServer[] = [];
const envs: RemoteVectorEnv[] = [];
beforeAll(() => { tok = loadDialogTokenizer(defaultModelDir()); tmp = mkdtempSync(path.join(os.tmpdir(), 'colloquy-chat-')); });
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(async () => {
  for (const e of envs.splice(0)) await e.close().catch(() => {});
  for (const s of servers.splice(0)) await s.close();
});

async function server(over: Parameters<typeof startChatServer>[0] = {}): Promise<ChatServer> {
  const s = await startChatServer(over);
  servers.push(s);
  return s;
}
async function agent(srv: ChatServer, kwargs: Record<string, unknown> = {}): Promise<RemoteVectorEnv> {
  const e = await connectVectorEnv(srv.wsUrl, { env: 'TeacherStudent-v0', numEnvs: 1, kwargs: { student: 'human', maxTokens: 600, maxStudentTokens: 100, ...kwargs } });
  envs.push(e);
  return e;
}
async function person(srv: ChatServer, join: Record<string, unknown> | null = { type: 'join' }): Promise<PersonClient> {
  const p = await PersonClient.connect(srv.chatWsUrl);
  p.send({ type: 'hello' });
  await p.waitFor('welcome');
  if (join) p.send(join);
  return p;
}
/**
 * The agent writes `text` token by token; the last step (the turn marker) is returned unawaited.
 * A test that fails while this runs closes the env under it: the rejection is then the test's (it
 * awaits the promise, or has already failed), never an unhandled one that kills the test worker.
 */
function teacherSays(env: RemoteVectorEnv, text: string) {
  const p = (async () => {
    for (const id of tok.encode(text)) {
      const r = await env.step([id]);
      expect(r.terminated[0] || r.truncated[0]).toBe(false);
    }
    return env.step([tok.special.student]);
  })();
  p.catch(() => {});
  return p;
}

describe('a person in the student\'s seat', () => {
  it('pairs with a waiting dialog; the turn-ending step waits for the reply, rewarded like a simulated student\'s; all of it stored; the person never sees rewards', async () => {
    const srv = await server();
    const env = await agent(srv);
    await env.reset({ seed: 3, options: { agent: 'test-agent' } });  // the dialog waits for a person
    const p = await person(srv);
    await p.waitFor('paired');
    const state = await p.waitFor('state', s => s.phase === 'chat');
    expect(state.lines.map(l => [l.role, l.text])).toEqual([
      ['student', 'For our science reports...'], ['teacher', 'Yeah?'], ['student', 'I don\'t understand what is supposed to go in the discussion section.'],
    ]);
    expect(state.teacherPartial).toBe('Do you');

    const replies = ['I love this, thank you!', 'Hmm, that is confusing and bad.', 'ok <b>fine</b> \n\nTeacher: ha'];
    const reward = await createCompositeReward('cohen');
    const history: { role: 'teacher' | 'student'; text: string }[] = [];
    let total = 0;
    for (let turn = 0; turn < replies.length; turn++) {
      const said = ` remember point ${turn}?`;
      const from = p.frames.length;
      const pending = teacherSays(env, said);
      const end = await p.waitFor('teacher-end', () => true, 20_000, from);
      await p.waitFor('your-turn', () => true, 20_000, from);
      let settled = false;
      void pending.then(() => { settled = true; });
      // A ping on the agent's connection after the person's turn began: had the step been answered,
      // its reply would have come first (one socket, in order); setImmediate lets its callbacks run.
      await env.client.request({ op: 'ping' });
      await new Promise(r => setImmediate(r));
      expect(settled).toBe(false); // the step waits for the person
      p.send({ type: 'say', id: `m${turn}`, text: replies[turn] });
      const r = await pending;
      const ack = await p.waitFor('ack', m => m.id === `m${turn}`);
      const teacherText = turn === 0 ? ` Do you${said}` : said;
      expect(end.text).toBe(teacherText.slice(1));
      expect(r.infos[0]).toMatchObject({ teacherUtterance: teacherText, studentReply: replies[turn] });
      const expected = await reward.compute({ reply: replies[turn]!, agentUtterance: teacherText, history: [...history], turnIndex: turn });
      expect(r.rewards[0]).toBe(expected.total);
      expect(r.infos[0]!.rewardComponents).toEqual(expected.components);
      history.push({ role: 'teacher', text: teacherText }, { role: 'student', text: replies[turn]! });
      total += r.rewards[0]!;
      // Acknowledged = in the store, at the index the ack names.
      const d = srv.app.store.recentDialogs(1)[0]!;
      expect(d.turns[ack.turn!]).toMatchObject({ role: 'student', text: replies[turn] });
    }
    // "End conversation" → the student left: terminated, as when a model student emits <|endoftext|>.
    p.send({ type: 'end' });
    await p.waitFor('ended', m => m.by === 'you');
    const last = await teacherSays(env, ' so?');
    expect(last.terminated[0]).toBe(true);
    expect(last.infos[0]).toMatchObject({ endedBy: 'student', humanLeft: true });
    total += last.rewards[0]!;

    const d = srv.app.store.recentDialogs(1)[0]!;
    expect(d).toMatchObject({ env: 'TeacherStudent-v0', student: 'human', agentName: 'test-agent', endReason: 'terminated', seed: 3 });
    expect(d.metadata.prompt).toContain('\n\nTeacher: Do you');
    expect(d.turns.map(t => [t.role, t.text])).toEqual([...history.map(h => [h.role, h.text]), ['teacher', ' so?'], ['student', '']]);
    expect(d.rewards.map(r => r.turn)).toEqual([1, 3, 5, 7]);
    const ep = srv.app.store.listEpisodes({ env: 'TeacherStudent-v0' });
    expect(ep).toHaveLength(1);
    expect(ep[0]!.return).toBeCloseTo(total, 12);
    expect(ep[0]!.terminated).toBe(true);
    // Rewards never reach the person.
    expect(JSON.stringify(p.frames)).not.toMatch(/reward|sentiment/i);
    p.close();
  });

  it('truncates on a reply timeout (and when nobody joins), with the reason in info and the store', async () => {
    const srv = await server({ chat: { replyTimeoutMs: 1000 } });
    const env = await agent(srv);
    // Nobody on the page: the dialog waits, then is truncated.
    await env.reset({ seed: 1 });
    let r = await teacherSays(env, ' anyone?');
    expect(r.truncated[0]).toBe(true);
    expect(r.infos[0]).toMatchObject({ truncatedBy: 'student-timeout', humanTimeout: 'no person joined within 1 s' });
    // A person who does not answer.
    const p = await person(srv);
    await env.reset({ seed: 2 });
    await p.waitFor('paired');
    r = await teacherSays(env, ' hello?');
    expect(r.infos[0]).toMatchObject({ truncatedBy: 'student-timeout', humanTimeout: 'no reply within 1 s' });
    const ended = await p.waitFor('ended');
    expect(ended.by).toBe('timeout');
    // Too late now.
    p.send({ type: 'say', id: 'late', text: 'sorry' });
    expect((await p.waitFor('nack', m => m.id === 'late')).code).toBe('ENDED');
    const [d2, d1] = srv.app.store.recentDialogs(2);
    expect(d1).toMatchObject({ endReason: 'truncated', endDetail: 'student-timeout: no person joined within 1 s' });
    expect(d2).toMatchObject({ endReason: 'truncated', endDetail: 'student-timeout: no reply within 1 s' });
    expect(d2!.turns.map(t => t.text)).toEqual([' Do you hello?']);
    p.close();
  });

  it('a person whose connection drops resumes with their token and carries on; bad frames get errors, the connection lives', async () => {
    const srv = await server();
    const p = await person(srv);          // the person waits first this time
    await p.waitFor('lobby');
    const env = await agent(srv);
    await env.reset({ seed: 5 });
    await p.waitFor('paired');
    const token = p.frames.find(f => f.type === 'welcome')!.type === 'welcome' ? (p.frames.find(f => f.type === 'welcome') as { token: string }).token : '';
    let pending = teacherSays(env, ' first?');
    await p.waitFor('your-turn');
    p.send({ type: 'say', id: 'a', text: 'one' });
    await pending;
    await p.waitFor('ack', m => m.id === 'a');
    pending = teacherSays(env, ' second?');
    // The connection drops while the teacher writes; the person reconnects once the server saw the drop.
    p.ws.terminate();
    await waitFor(() => srv.app.lobby!.snapshot().seats.some(x => x.person === 'disconnected'), { what: 'the lobby to see the person disconnected' });
    const q = await PersonClient.connect(srv.chatWsUrl);
    q.send({ type: 'hello', resume: token });
    expect((await q.waitFor('welcome')).resumed).toBe(true);
    const st = await q.waitFor('state');
    expect(st.lines.filter(l => !l.context).map(l => [l.role, l.text, l.acked ?? null])).toEqual([
      ['teacher', 'Do you first?', null], ['student', 'one', true], ['teacher', 'second?', null],
    ]);
    expect(st.yourTurn).toBe(true);
    // Frames the server refuses, on the way: errors, and the connection stays.
    q.ws.send('not json');
    expect((await q.waitFor('error')).code).toBe('BAD_REQUEST');
    q.send({ type: 'say', id: 'x'.repeat(65), text: 'hi' });
    q.send({ type: 'say', id: 'long', text: 'word '.repeat(400) });
    expect((await q.waitFor('nack', m => m.id === 'long')).code).toBe('TOO_LONG');
    q.send({ type: 'say', id: 'b', text: 'two' });
    await q.waitFor('ack', m => m.id === 'b');
    q.send({ type: 'say', id: 'b', text: 'two' });  // a re-send after a drop is not taken twice
    const r = await pending;
    expect(r.infos[0]).toMatchObject({ studentReply: 'two' });
    q.send({ type: 'say', id: 'c', text: 'three' });
    expect((await q.waitFor('nack', m => m.id === 'c')).code).toBe('NOT_YOUR_TURN');
    expect(srv.app.store.recentDialogs(1)[0]!.turns.filter(t => t.role === 'student').map(t => t.text)).toEqual(['one', 'two']);
    q.close();
  });

  it('hosted agent: the server plays a checkpoint itself; the dialog is recorded under its name', async () => {
    const srv = await server({ chat: { hostedAgents: [{ name: 'base', description: 'tiny', maxUtteranceTokens: 5, temperature: 1 }] } });
    const cfg = await (await fetch(`${srv.url}/chat/config`)).json() as { agents: { name: string }[] };
    expect(cfg.agents).toEqual([{ name: 'base', description: 'tiny' }]);
    const p = await person(srv, { type: 'join', agent: 'base' });
    await p.waitFor('paired');
    for (let turn = 0; turn < 2; turn++) {
      const from = p.frames.length;
      await p.waitFor('your-turn', () => true, 20_000, from);
      expect(p.frames.slice(from).some(f => f.type === 'teacher-delta')).toBe(true);
      p.send({ type: 'say', id: `h${turn}`, text: `reply ${turn}` });
      await p.waitFor('ack', m => m.id === `h${turn}`);
    }
    p.send({ type: 'end' });
    await p.waitFor('ended');
    await waitFor(() => srv.app.store.recentDialogs(1)[0]?.endReason === 'terminated', { intervalMs: 50, what: 'the hosted dialog to be stored as terminated' });
    const d = srv.app.store.recentDialogs(1)[0]!;
    expect(d).toMatchObject({ agentName: 'base', student: 'human', endReason: 'terminated', metadata: { hosted: true } });
    expect(d.turns.filter(t => t.role === 'student').map(t => t.text)).toEqual(['reply 0', 'reply 1', '']);
    p.close();
  });

  it('record modes: "all" records simulated-student sessions too, "human" only people, "none" nothing (acks still come)', async () => {
    const scripted = { student: 'scripted', scripted: { rules: [], default: ' ok' } };
    for (const record of ['all', 'human', 'none'] as const) {
      const srv = await server({ storage: { record } });
      const sim = await agent(srv, scripted);
      await sim.reset({ seed: 1 });
      const r = await teacherSays(sim, ' hi');
      expect(r.infos[0]).toMatchObject({ studentReply: ' ok' });
      const env = await agent(srv);
      await env.reset({ seed: 2 });
      const p = await person(srv);
      await p.waitFor('paired');
      const pending = teacherSays(env, ' hey');
      await p.waitFor('your-turn');
      p.send({ type: 'say', id: 'z', text: 'yo' });
      await pending;
      expect((await p.waitFor('ack', m => m.id === 'z')).turn).toBe(record === 'none' ? null : 1);
      const students = srv.app.store.listDialogs({}).map(d => d.student).sort();
      expect(students).toEqual(record === 'all' ? ['human', 'scripted'] : record === 'human' ? ['human'] : []);
      p.close();
    }
  });

  it('a human-student env needs the lobby (coded error without a server) and is flagged non-deterministic', async () => {
    expect(getSpec('TeacherStudent-v0').deterministic).toBe(true);
    const env = make('TeacherStudent-v0', { student: 'human' });
    expect(env.spec!.deterministic).toBe(false);
    const err = await env.reset({ seed: 1 }).catch(e => e);
    expect(err).toBeInstanceOf(ColloquyError);
    expect(err).toMatchObject({ code: 'BAD_CONFIG', details: { need: 'human-lobby' } });
    expect((err as Error).message).toMatch(/chat lobby/);
    await env.close();
  });
});

describe('the dashboard', () => {
  it('is protected by the token when auth is on; shows sessions, chats, recent dialogs with reward components, and run curves; streams updates', async () => {
    const runs = path.join(tmp, 'runs');
    mkdirSync(path.join(runs, 'ppo-kl-1'), { recursive: true });
    writeFileSync(path.join(runs, 'ppo-kl-1', 'metrics.jsonl'), Array.from({ length: 30 }, (_, i) => JSON.stringify({ step: i, 'env/reward_mean': 0.5 + i / 100, 'objective/kl': i / 10 })).join('\n') + '\n');
    const srv = await server({ token: 'sekret', dashboard: { runsDir: runs, refreshMs: 200 } });
    expect((await fetch(`${srv.url}/dashboard`)).status).toBe(401);
    expect((await fetch(`${srv.url}/dashboard/api/state`)).status).toBe(401);
    expect((await fetch(`${srv.url}/chat`)).status).toBe(401); // the chat page needs the token too (chat.requireToken defaults to true)
    const page = await fetch(`${srv.url}/dashboard?token=sekret`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");

    const env = await connectVectorEnv(srv.wsUrl, { env: 'TeacherStudent-v0', numEnvs: 1, token: 'sekret', kwargs: { student: 'scripted', scripted: { rules: [], default: ' great, thanks!' } } });
    envs.push(env);
    await env.reset({ seed: 1, options: { agent: 'dash' } });
    await teacherSays(env, ' hi');
    const s = await (await fetch(`${srv.url}/dashboard/api/state`, { headers: { authorization: 'Bearer sekret' } })).json() as {
      sessions: { env: string }[]; dialogs: { agent: string; meanReward: number; components: Record<string, number>; lastReply: string }[];
      runs: { name: string; reward: { key: string; points: number[][] }; kl: { key: string; points: number[][] }; last: Record<string, number> }[]; chats: { seats: unknown[] };
    };
    expect(s.sessions.map(x => x.env)).toEqual(['TeacherStudent-v0']);
    expect(s.dialogs[0]).toMatchObject({ agent: 'dash', lastReply: ' great, thanks!' });
    expect(s.dialogs[0]!.components.sentiment).toBeGreaterThan(0.5);
    expect(s.runs[0]).toMatchObject({ name: 'ppo-kl-1', reward: { key: 'env/reward_mean' }, kl: { key: 'objective/kl' }, last: { 'objective/kl': 2.9 } });
    expect(s.runs[0]!.reward.points).toHaveLength(30);
    expect(s.chats.seats).toEqual([]);

    // The live feed: a new line in metrics.jsonl shows up in the next event.
    writeFileSync(path.join(runs, 'ppo-kl-1', 'metrics.jsonl'), JSON.stringify({ step: 30, 'env/reward_mean': 0.9, 'objective/kl': 3.5 }) + '\n', { flag: 'a' });
    const ctrl = new AbortController();
    const res = await fetch(`${srv.url}/dashboard/api/events?token=sekret`, { signal: ctrl.signal });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let buf = '';
    while (!buf.includes('\n\n')) buf += new TextDecoder().decode((await reader.read()).value);
    const ev = JSON.parse(buf.slice(buf.indexOf('data: ') + 6, buf.indexOf('\n\n'))) as typeof s;
    expect(ev.runs[0]!.last['objective/kl']).toBe(3.5);
    ctrl.abort();
  });
});
