import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeVec } from '../../env/index.ts';
import { rawClient, startTestServer, type RawClient, type TestServer } from './helpers.ts';

let srv: TestServer;
let c: RawClient;
beforeEach(async () => { srv = await startTestServer(); c = await rawClient(srv.wsUrl); });
afterEach(async () => { c.close(); await srv.close(); });

describe('protocol v1 over a real server', () => {
  it('make, reset, step, close as DESIGN.md shows, with ids echoed', async () => {
    const mk = await c.call({ id: 1, op: 'make', env: 'Echo-v0', kwargs: { obsSize: 4 }, numEnvs: 3 });
    expect(mk).toMatchObject({ id: 1, ok: true, result: { numEnvs: 3, autoresetMode: 'next-step', protocol: 1, spec: { id: 'Echo-v0', kwargs: { obsSize: 4 } },
      observationSpace: { type: 'Box', shape: [4] }, actionSpace: { type: 'Discrete', n: 16 } } });
    const session = mk.result.session as string;
    expect(typeof mk.result.resumeToken).toBe('string');
    const rs = await c.call({ id: 'two', op: 'reset', session, seed: 42, options: {} });
    expect(rs.id).toBe('two');
    expect(rs.result.observations).toHaveLength(3);
    expect(rs.result.infos).toHaveLength(3);
    const st = await c.call({ id: 3.5, op: 'step', session, actions: [0, 1, 2] });
    expect(st.id).toBe(3.5);
    expect(Object.keys(st.result).sort()).toEqual(['infos', 'observations', 'rewards', 'terminated', 'truncated']);
    for (const k of Object.keys(st.result)) expect(st.result[k]).toHaveLength(3);
    // Same as the env in process.
    const local = makeVec('Echo-v0', { numEnvs: 3, kwargs: { obsSize: 4 } });
    expect(rs.result).toEqual(JSON.parse(JSON.stringify(await local.reset({ seed: 42 }))));
    expect(st.result).toEqual(JSON.parse(JSON.stringify(await local.step([0, 1, 2]))));
    expect(await c.call({ id: 4, op: 'close', session })).toEqual({ id: 4, ok: true, result: { closed: true } });
    const gone = await c.call({ id: 5, op: 'step', session, actions: [0, 1, 2] });
    expect(gone).toMatchObject({ id: 5, ok: false, error: { code: 'UNKNOWN_SESSION' } });
    expect(gone.error!.message).toMatch(/closed/);
  });

  it('pipelines: replies to a burst of requests come back in order, each with its id', async () => {
    const { result } = await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 2 });
    const session = result.session;
    const local = makeVec('Echo-v0', { numEnvs: 2 });
    const expected: unknown[] = [JSON.parse(JSON.stringify(await local.reset({ seed: 7 })))];
    const ids = ['r'];
    c.raw(JSON.stringify({ id: 'r', op: 'reset', session, seed: 7 }));
    for (let i = 0; i < 100; i++) {
      const actions = [i % 16, (i * 7) % 16];
      c.raw(JSON.stringify({ id: i, op: 'step', session, actions }));
      ids.push(String(i));
      expected.push(JSON.parse(JSON.stringify(await local.step(actions))));
    }
    const replies = [];
    for (let i = 0; i < 101; i++) replies.push(await c.next());
    expect(replies.map(r => String(r.id))).toEqual(ids);
    expect(replies.map(r => r.result)).toEqual(expected);
  });

  it('answers each kind of bad request with its code, and the session lives on', async () => {
    const { result } = await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 2 });
    const s = result.session;
    const code = async (m: Record<string, unknown>) => (await c.call(m)).error?.code;
    c.raw('{not json');
    expect(await c.next()).toMatchObject({ id: null, ok: false, error: { code: 'BAD_JSON' } });
    c.raw('[1,2]');
    expect((await c.next()).error!.code).toBe('BAD_REQUEST');
    c.raw(Buffer.from('{"id":1,"op":"ping"}'), true);
    expect((await c.next()).error!.code).toBe('BAD_REQUEST');
    c.raw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    expect((await c.next()).error!.code).toBe('BAD_JSON');
    expect(await code({ op: 'frobnicate' })).toBe('UNKNOWN_OP');
    expect(await code({ op: 42 })).toBe('BAD_REQUEST');
    expect(await code({ op: 'step', session: s })).toBe('BAD_REQUEST');
    expect(await code({ op: 'step', session: s, actions: [0, 1], extra: 1 })).toBe('BAD_REQUEST');
    expect(await code({ op: 'reset', session: s, seed: -1 })).toBe('BAD_REQUEST');
    expect(await code({ op: 'reset', session: s, seed: 1.5 })).toBe('BAD_REQUEST');
    expect(await code({ op: 'step', session: s, actions: [0, 1] })).toBe('RESET_NEEDED');
    const ue = await c.call({ op: 'make', env: 'Ech-v0' });
    expect(ue.error).toMatchObject({ code: 'UNKNOWN_ENV', details: { suggestion: 'Echo-v0' } });
    expect(ue.error!.message).toMatch(/did you mean 'Echo-v0'/);
    expect(await code({ op: 'make', env: 'Echo-v0', kwargs: { obsSize: 1 } })).toBe('BAD_CONFIG');
    // A literal `__proto__` key can only be written as raw JSON.
    c.raw('{"id":"pp","op":"make","env":"Echo-v0","kwargs":{"a":{"b":{"__proto__":{"polluted":1}}}}}');
    expect(await c.next()).toMatchObject({ id: 'pp', error: { code: 'BAD_REQUEST' } });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(await code({ op: 'step', session: 'nope', actions: [0] })).toBe('UNKNOWN_SESSION');
    await c.call({ op: 'reset', session: s, seed: 1 });
    expect(await code({ op: 'step', session: s, actions: [0] })).toBe('INVALID_ACTION');
    expect(await code({ op: 'step', session: s, actions: [0, 99] })).toBe('INVALID_ACTION');
    expect(await code({ op: 'step', session: s, actions: [0, 'x'] })).toBe('INVALID_ACTION');
    const ok = await c.call({ op: 'step', session: s, actions: [0, 1] });
    expect(ok.ok).toBe(true);
    // The bad action left no trace: the trajectory is the one of a clean run.
    const local = makeVec('Echo-v0', { numEnvs: 2 });
    await local.reset({ seed: 1 });
    expect(ok.result).toEqual(JSON.parse(JSON.stringify(await local.step([0, 1]))));
    for (const r of c.received.filter(r => !r.ok)) {
      expect(Object.keys(r.error!).every(k => ['code', 'message', 'details'].includes(k))).toBe(true);
      expect(r.error!.message).not.toMatch(/\n\s+at /);
    }
  });

  it('answers ping, and a session of another connection is not reachable', async () => {
    const p = await c.call({ op: 'ping' });
    expect(p.result.pong).toBe(true);
    const { result } = await c.call({ op: 'make', env: 'Echo-v0' });
    const other = await rawClient(srv.wsUrl);
    expect((await other.call({ op: 'reset', session: result.session })).error!.code).toBe('UNKNOWN_SESSION');
    other.close();
  });

  it('serves /v1/envs, /health, /metrics, and 426 on a plain GET of /v1/env', async () => {
    const envs = await srv.app.inject({ url: '/v1/envs' });
    expect(envs.statusCode).toBe(200);
    const echo = envs.json().envs.find((e: { id: string }) => e.id === 'Echo-v0');
    expect(echo).toMatchObject({ spec: { id: 'Echo-v0', maxEpisodeSteps: 1000 }, observationSpace: { type: 'Box' }, actionSpace: { type: 'Discrete', n: 16 } });
    expect((await srv.app.inject({ url: '/v1/envs/Echo-v0' })).json().id).toBe('Echo-v0');
    expect((await srv.app.inject({ url: '/v1/envs/Nope-v0' })).statusCode).toBe(404);
    expect((await srv.app.inject({ url: '/health' })).json()).toMatchObject({ status: 'ok', protocol: 1 });
    expect((await srv.app.inject({ url: '/v1/env' })).statusCode).toBe(426);

    const { result } = await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 4 });
    await c.call({ op: 'reset', session: result.session, seed: 1 });
    for (let i = 0; i < 5; i++) await c.call({ op: 'step', session: result.session, actions: [0, 0, 0, 0] });
    await c.call({ op: 'frobnicate' });
    const m = await srv.app.inject({ url: '/metrics' });
    expect(m.headers['content-type']).toMatch(/^text\/plain/);
    const text = m.body;
    expect(text).toMatch(/^# TYPE colloquy_sessions gauge$/m);
    expect(text).toMatch(/^colloquy_sessions 1$/m);
    expect(text).toMatch(/^colloquy_connections 1$/m);
    expect(text).toMatch(/^colloquy_env_steps_total 20$/m);
    expect(text).toMatch(/^colloquy_requests_total\{op="step"\} 5$/m);
    expect(text).toMatch(/^colloquy_errors_total\{code="UNKNOWN_OP"\} 1$/m);
    expect(text).toMatch(/^# TYPE colloquy_step_duration_seconds histogram$/m);
    expect(text).toMatch(/^colloquy_step_duration_seconds_count 5$/m);
    expect(text).toMatch(/^colloquy_step_duration_seconds_bucket\{le="\+Inf"\} 5$/m);
  });
});
