/**
 * The OpenEnv endpoint (server/openenv.ts): a conversation written from OpenEnv's message shapes
 * (openenv.core.env_client.EnvClient: `{type, data}` frames on `<base_url>/ws`; replies
 * observation / state / error with WSErrorCode codes), checked against the env in process, and its
 * HTTP endpoints, auth, limits and recording shared with `/v1/env`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { makeVec } from '../../env/index.ts';
import { defaultModelDir } from '../../core/paths.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import { rawClient, startTestServer, type TestServer } from './helpers.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
interface OEFrame { type: string; data: any }

/** OpenEnv's client, as it speaks: one message, then its one reply. */
async function openEnvClient(url: string, opts: WebSocket.ClientOptions = {}) {
  const ws = new WebSocket(url, opts);
  const inbox: OEFrame[] = [];
  const waiters: ((f: OEFrame) => void)[] = [];
  ws.on('message', (b: Buffer) => {
    const f = JSON.parse(b.toString()) as OEFrame;
    const w = waiters.shift();
    if (w) w(f); else inbox.push(f);
  });
  const closed = new Promise<number>(ok => ws.once('close', code => ok(code)));
  await new Promise<void>((ok, bad) => { ws.once('open', () => ok()); ws.once('error', bad); });
  const next = (ms = 10_000) => inbox.length ? Promise.resolve(inbox.shift()!) : new Promise<OEFrame>((ok, bad) => {
    waiters.push(ok);
    setTimeout(() => bad(new Error('no reply')), ms).unref();
  });
  return {
    ws, closed, next,
    async send(msg: unknown): Promise<OEFrame> { ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg)); return next(); },
  };
}

let srv: TestServer;
let base: string;
beforeAll(async () => { srv = await startTestServer({ storage: { record: 'all' } }); base = srv.url.replace('http', 'ws'); });
afterAll(async () => { await srv.close(); });

describe('OpenEnv protocol at /openenv/<ENV_ID>/ws', () => {
  it('reset (seed, episode_id, kwargs as extra fields), step, state, close: the env in process, step for step', async () => {
    const c = await openEnvClient(`${base}/openenv/Echo-v0/ws`);
    const local = makeVec('Echo-v0', { numEnvs: 1, kwargs: { obsSize: 4, episodeLength: 3 }, autoresetMode: 'disabled' });
    const r0 = await c.send({ type: 'reset', data: { seed: 42, episode_id: 'ep-1', obsSize: 4, episodeLength: 3 } });
    const l0 = JSON.parse(JSON.stringify(await local.reset({ seed: 42 })));
    expect(r0).toEqual({ type: 'observation', data: { observation: { obs: l0.observations[0], terminated: false, truncated: false, info: l0.infos[0] }, reward: null, done: false } });
    expect(r0.data.observation.obs).toHaveLength(4);
    let done = false;
    for (let t = 0; !done; t++) {
      expect(t).toBeLessThan(10);
      const a = (t * 5) % 16;
      const r = await c.send({ type: 'step', data: { action: a, metadata: {} } });
      const l = JSON.parse(JSON.stringify(await local.step([a])));
      expect(r).toEqual({ type: 'observation', data: {
        observation: { obs: l.observations[0], terminated: l.terminated[0], truncated: l.truncated[0], info: l.infos[0] },
        reward: l.rewards[0], done: l.terminated[0] || l.truncated[0],
      } });
      done = r.data.done;
      const st = await c.send({ type: 'state' });
      expect(st).toMatchObject({ type: 'state', data: { episode_id: 'ep-1', step_count: t + 1, env_id: 'Echo-v0', seed: 42, kwargs: { obsSize: 4, episodeLength: 3 } } });
    }
    // After done, a step is refused (OpenEnv's clients reset themselves); a reset starts again.
    const after = await c.send({ type: 'step', data: { action: 0 } });
    expect(after).toMatchObject({ type: 'error', data: { code: 'EXECUTION_ERROR', colloquy_code: 'RESET_NEEDED' } });
    const again = await c.send({ type: 'reset', data: { seed: 42, obsSize: 4, episodeLength: 3 } });
    expect(again.data.observation.obs).toEqual(r0.data.observation.obs);
    const st = await c.send({ type: 'state' });
    expect(st.data.step_count).toBe(0);
    expect(typeof st.data.episode_id).toBe('string');
    expect(st.data.episode_id).not.toBe('ep-1');
    // close: no reply, the socket closes, and the v1 session behind it is gone.
    const sessionsBefore = srv.app.sessions.size;
    c.ws.send(JSON.stringify({ type: 'close' }));
    expect(await c.closed).toBe(1000);
    await expect.poll(() => srv.app.sessions.size).toBe(sessionsBefore - 1);
  });

  it('a reset with other kwargs makes the env again; the same kwargs keep it', async () => {
    const c = await openEnvClient(`${base}/openenv/Echo-v0/ws`);
    const a = await c.send({ type: 'reset', data: { seed: 1, obsSize: 3 } });
    const s1 = (await c.send({ type: 'state' })).data.session;
    expect(a.data.observation.obs).toHaveLength(3);
    await c.send({ type: 'reset', data: { seed: 2, obsSize: 3 } });
    expect((await c.send({ type: 'state' })).data.session).toBe(s1);
    const b = await c.send({ type: 'reset', data: { seed: 1, obsSize: 5 } });
    expect(b.data.observation.obs).toHaveLength(5);
    expect((await c.send({ type: 'state' })).data.session).not.toBe(s1);
    c.ws.close();
    await c.closed;
  });

  it('answers every bad message with an OpenEnv error code and the Colloquy code, and the connection lives on', async () => {
    const c = await openEnvClient(`${base}/openenv/Echo-v0/ws`);
    const err = async (m: unknown) => (await c.send(m)).data as { code: string; colloquy_code?: string; message: string };
    expect(await err('{not json')).toMatchObject({ code: 'INVALID_JSON' });
    expect(await err({ type: 'dance' })).toMatchObject({ code: 'UNKNOWN_TYPE' });
    expect(await err({ type: 'mcp', data: {} })).toMatchObject({ code: 'UNKNOWN_TYPE' });
    expect(await err({ type: 'step', data: { action: 1 } })).toMatchObject({ code: 'EXECUTION_ERROR', colloquy_code: 'RESET_NEEDED' });
    expect(await err({ type: 'reset', data: { seed: -1 } })).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(await err({ type: 'reset', data: { seed: 1.5 } })).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(await err({ type: 'reset', data: { episode_id: 'x'.repeat(256) } })).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(await err({ type: 'reset', data: { obsSize: 'big' } })).toMatchObject({ code: 'FACTORY_ERROR', colloquy_code: 'BAD_CONFIG' });
    expect(await err({ type: 'reset', data: { __proto__x: 1, nested: JSON.parse('{"__proto__": {"polluted": true}}') } })).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(await err({ type: 'reset', extra: 1 })).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(await err({ type: 'reset', data: [1] })).toMatchObject({ code: 'VALIDATION_ERROR' });
    const ok = await c.send({ type: 'reset', data: { seed: 3 } });
    expect(ok.type).toBe('observation');
    expect(await err({ type: 'step', data: { action: 99 } })).toMatchObject({ code: 'VALIDATION_ERROR', colloquy_code: 'INVALID_ACTION' });
    expect(await err({ type: 'step', data: { act: 1 } })).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(await err({ type: 'step' })).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(await err(JSON.stringify({ type: 'step', data: { action: 'x'.repeat(srv.config.limits.maxFrameBytes) } }))).toMatchObject({ code: 'VALIDATION_ERROR', colloquy_code: 'PAYLOAD_TOO_LARGE' });
    // The session survived all of it.
    expect((await c.send({ type: 'step', data: { action: 1 } })).type).toBe('observation');
    expect(({}) as Record<string, unknown>).not.toHaveProperty('polluted');
    c.ws.close();
    await c.closed;
  });

  it('a dialog env over OpenEnv is recorded as over /v1/env', async () => {
    const tok = loadDialogTokenizer(defaultModelDir());
    const c = await openEnvClient(`${base}/openenv/TeacherStudent-v0/ws`);
    const kwargs = { student: 'scripted', scripted: { rules: [], default: ' I see, thanks.' } };
    const r = await c.send({ type: 'reset', data: { seed: 9, ...kwargs } });
    expect(r.type).toBe('observation');
    for (const id of tok.encode(' hello there')) expect((await c.send({ type: 'step', data: { action: id } })).type).toBe('observation');
    const s = await c.send({ type: 'step', data: { action: tok.special.student } });
    expect(s.data.observation.info.studentReply).toBe(' I see, thanks.');
    expect(typeof s.data.reward).toBe('number');
    c.ws.send(JSON.stringify({ type: 'close' }));
    await c.closed;
    await expect.poll(() => srv.app.store.listDialogs({ env: 'TeacherStudent-v0' }).filter(d => d.seed === 9).length).toBe(1);
    const [d] = srv.app.store.listDialogs({ env: 'TeacherStudent-v0' }).filter(x => x.seed === 9);
    const got = srv.app.store.getDialog(d!.id)!;
    expect(got.turns.map(t => [t.role, t.text])).toContainEqual(['student', ' I see, thanks.']);
  });

  it('an unknown env id is 404 over HTTP and refused before a WebSocket upgrade', async () => {
    for (const id of ['Nope-v0', '__proto__', 'constructor', 'hasOwnProperty']) {
      const res = await fetch(`${srv.url}/openenv/${id}/schema`);
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ ok: false, error: { code: 'UNKNOWN_ENV' } });
      await expect(openEnvClient(`${base}/openenv/${id}/ws`)).rejects.toThrow(/404/);
    }
  });
});

describe('OpenEnv HTTP endpoints', () => {
  it('health, metadata, schema and the list of envs', async () => {
    expect(await (await fetch(`${srv.url}/openenv/Echo-v0/health`)).json()).toEqual({ status: 'healthy' });
    const meta = await (await fetch(`${srv.url}/openenv/Echo-v0/metadata`)).json();
    expect(meta).toMatchObject({ name: 'Echo-v0', description: expect.any(String) });
    const schema = await (await fetch(`${srv.url}/openenv/Echo-v0/schema`)).json();
    expect(Object.keys(schema).sort()).toEqual(['action', 'observation', 'state']);
    expect(schema.action.properties.action).toEqual({ type: 'integer', minimum: 0, maximum: 15 });
    expect(schema.observation.properties.obs).toMatchObject({ type: 'array', minItems: 8, maxItems: 8, items: { type: 'number' } });
    const list = await (await fetch(`${srv.url}/openenv`)).json();
    expect(list.envs).toContainEqual({ id: 'TeacherStudent-v0', base_url: '/openenv/TeacherStudent-v0' });
    const plain = await fetch(`${srv.url}/openenv/Echo-v0/ws`);
    expect(plain.status).toBe(426);
  });
});

describe('limits and auth are those of /v1/env', () => {
  let s2: TestServer | null = null;
  afterEach(async () => { await s2?.close(); s2 = null; });

  it('the token: refused without it; a bearer header or Basic credentials with it as the password open it; health stays open', async () => {
    s2 = await startTestServer({ token: 'sekrit' });
    const b = s2.url.replace('http', 'ws');
    await expect(openEnvClient(`${b}/openenv/Echo-v0/ws`)).rejects.toThrow(/401/);
    await expect(openEnvClient(`${b.replace('ws://', 'ws://u:wrong@')}/openenv/Echo-v0/ws`)).rejects.toThrow(/401/);
    const viaBasic = await openEnvClient(`${b.replace('ws://', 'ws://anyone:sekrit@')}/openenv/Echo-v0/ws`);
    expect((await viaBasic.send({ type: 'reset', data: { seed: 1 } })).type).toBe('observation');
    viaBasic.ws.close();
    const viaBearer = await openEnvClient(`${b}/openenv/Echo-v0/ws`, { headers: { authorization: 'Bearer sekrit' } });
    expect((await viaBearer.send({ type: 'reset', data: {} })).type).toBe('observation');
    viaBearer.ws.close();
    expect((await fetch(`${s2.url}/openenv/Echo-v0/health`)).status).toBe(200);
    expect((await fetch(`${s2.url}/openenv/Echo-v0/schema`)).status).toBe(401);
  });

  it('connections count against the same maxConnections as /v1/env', async () => {
    s2 = await startTestServer({ limits: { maxConnections: 1 } });
    const v1 = await rawClient(s2.wsUrl);
    const c = await openEnvClient(`${s2.url.replace('http', 'ws')}/openenv/Echo-v0/ws`);
    expect(await c.next()).toMatchObject({ type: 'error', data: { code: 'CAPACITY_REACHED', colloquy_code: 'CAPACITY' } });
    expect(await c.closed).toBe(1013);
    v1.close();
  });

  it('session capacity is shared: a reset beyond maxSessions is CAPACITY_REACHED', async () => {
    s2 = await startTestServer({ limits: { maxSessions: 1 } });
    const b = s2.url.replace('http', 'ws');
    const one = await openEnvClient(`${b}/openenv/Echo-v0/ws`);
    expect((await one.send({ type: 'reset', data: {} })).type).toBe('observation');
    const two = await openEnvClient(`${b}/openenv/Echo-v0/ws`);
    expect(await two.send({ type: 'reset', data: {} })).toMatchObject({ type: 'error', data: { code: 'CAPACITY_REACHED' } });
    one.ws.close();
    await one.closed;
    await expect.poll(async () => (await two.send({ type: 'reset', data: {} })).type).toBe('observation');
    two.ws.close();
  });
});
