/** Limits and lifetimes: capacity, request timeout, idle reaping, resume window, heartbeats, auth. */
import { afterEach, describe, expect, it } from 'vitest';
import { Type } from '@sinclair/typebox';
import { connectVectorEnv, ProtocolClient } from '../../agents/client.ts';
import { ColloquyError, Discrete, register, type Env, type EnvSpec } from '../../env/index.ts';
import { rawClient, sleep, startTestServer, type TestServer } from './helpers.ts';

/** An env whose reset and step take `delayMs`. */
class SlowEnv implements Env<number, number> {
  readonly observationSpace = new Discrete(2);
  readonly actionSpace = new Discrete(2);
  spec: EnvSpec | null = null;
  constructor(private readonly delayMs: number) {}
  async reset() { await sleep(this.delayMs); return { observation: 0, info: {} }; }
  async step() { await sleep(this.delayMs); return { observation: 1, reward: 1, terminated: false, truncated: false, info: {} }; }
  async close() {}
}
register({
  id: 'TestSlow-v0',
  entryPoint: kw => new SlowEnv(kw.delayMs as number),
  kwargsSchema: Type.Object({ delayMs: Type.Integer({ minimum: 0, default: 0 }) }, { additionalProperties: false }),
  description: 'test env with slow steps',
});

let srv: TestServer | null = null;
afterEach(async () => { await srv?.close(); srv = null; });

describe('capacity', () => {
  it('limits sessions per connection, on the server, envs per session, and connections', async () => {
    srv = await startTestServer({ limits: { maxSessionsPerConnection: 2, maxSessions: 3, maxEnvsPerSession: 8, maxConnections: 3 } });
    const a = await rawClient(srv.wsUrl);
    const mk = () => a.call({ op: 'make', env: 'Echo-v0' });
    const s1 = (await mk()).result.session;
    await mk();
    expect((await mk()).error).toMatchObject({ code: 'CAPACITY' });
    expect((await a.call({ op: 'make', env: 'Echo-v0', numEnvs: 9 })).error!.code).toBe('CAPACITY');
    const b = await rawClient(srv.wsUrl);
    expect((await b.call({ op: 'make', env: 'Echo-v0', numEnvs: 8 })).ok).toBe(true);
    expect((await b.call({ op: 'make', env: 'Echo-v0' })).error!.message).toMatch(/server holds its maximum of 3 sessions/);
    await a.call({ op: 'close', session: s1 });
    expect((await b.call({ op: 'make', env: 'Echo-v0' })).ok).toBe(true);
    // A fourth connection is told why, then closed.
    const c = await rawClient(srv.wsUrl);
    const d = await rawClient(srv.wsUrl);
    expect(await d.next()).toMatchObject({ id: null, ok: false, error: { code: 'CAPACITY' } });
    expect((await d.closed).code).toBe(1013);
    expect((await c.call({ op: 'ping' })).ok).toBe(true);
    for (const x of [a, b, c]) x.close();
  });

  it('limits pending pipelined requests per connection', async () => {
    srv = await startTestServer({ limits: { maxPendingPerConnection: 3 } });
    const c = await rawClient(srv.wsUrl);
    const s = (await c.call({ op: 'make', env: 'TestSlow-v0', kwargs: { delayMs: 50 } })).result.session;
    const replies = await Promise.all(Array.from({ length: 5 }, () => c.call({ op: 'reset', session: s })));
    expect(replies.map(r => r.ok ? 'ok' : r.error!.code)).toEqual(['ok', 'ok', 'ok', 'CAPACITY', 'CAPACITY']);
    c.close();
  });
});

describe('timeouts and reaping', () => {
  it('answers TIMEOUT for a request past requestTimeoutMs; the session then needs a reset', async () => {
    srv = await startTestServer({ limits: { requestTimeoutMs: 100 } });
    const c = await rawClient(srv.wsUrl);
    const s = (await c.call({ op: 'make', env: 'TestSlow-v0', kwargs: { delayMs: 300 } })).result.session;
    const t0 = Date.now();
    const [r1, r2] = await Promise.all([c.call({ op: 'reset', session: s }), c.call({ op: 'step', session: s, actions: [0] })]);
    expect(r1.error!.code).toBe('TIMEOUT');
    expect(r2.error!.code).toBe('TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(290);
    await sleep(400); // the reset finishes late; the queued step was dropped
    expect((await c.call({ op: 'step', session: s, actions: [0] })).error).toMatchObject({ code: 'RESET_NEEDED', message: expect.stringMatching(/timed out/) });
    c.close();
  });

  it('closes idle sessions, and detached ones after the resume window', async () => {
    srv = await startTestServer({ sessions: { idleTimeoutMs: 150, resumeWindowMs: 100, reapIntervalMs: 20 } });
    const c = await rawClient(srv.wsUrl);
    const s = (await c.call({ op: 'make', env: 'Echo-v0' })).result.session;
    await sleep(300);
    expect((await c.call({ op: 'reset', session: s })).error).toMatchObject({ code: 'UNKNOWN_SESSION', message: expect.stringMatching(/idle/) });

    const mk = (await c.call({ op: 'make', env: 'Echo-v0' })).result;
    c.close();
    await c.closed;
    await sleep(250);
    expect(srv.app.sessions.size).toBe(0);
    const d = await rawClient(srv.wsUrl);
    expect((await d.call({ op: 'resume', session: mk.session, token: mk.resumeToken })).error).toMatchObject({ code: 'UNKNOWN_SESSION', message: expect.stringMatching(/resume window/) });
    d.close();
  });

  it('a client whose session outlived the resume window gets UNKNOWN_SESSION after reconnecting', async () => {
    srv = await startTestServer({ sessions: { resumeWindowMs: 0, reapIntervalMs: 20 } });
    const env = await connectVectorEnv(srv.wsUrl, { env: 'Echo-v0', reconnect: { initialDelayMs: 100 } });
    await env.reset({ seed: 1 });
    env.client.dropConnection();
    await expect(env.step([0])).rejects.toMatchObject({ code: 'UNKNOWN_SESSION' });
    await env.close();
  });

  it('drops a connection that stops answering pings; its sessions wait for a resume', async () => {
    srv = await startTestServer({ heartbeat: { intervalMs: 30, timeoutMs: 100 } });
    const deaf = await rawClient(srv.wsUrl, { autoPong: false });
    const alive = await rawClient(srv.wsUrl);
    const mk = (await deaf.call({ op: 'make', env: 'Echo-v0' })).result;
    expect((await deaf.closed).code).toBe(1006);
    await sleep(100);
    expect(alive.ws.readyState).toBe(alive.ws.OPEN);
    expect(srv.app.sessions.size).toBe(1);
    const back = await rawClient(srv.wsUrl);
    expect((await back.call({ op: 'resume', session: mk.session, token: mk.resumeToken })).ok).toBe(true);
    expect((await back.call({ op: 'reset', session: mk.session, seed: 1 })).ok).toBe(true);
    alive.close(); back.close();
  });
});

describe('auth', () => {
  it('with a token: the protocol, /v1/envs and /metrics need it; /health does not', async () => {
    srv = await startTestServer({ token: 's3cret' });
    const port = new URL(srv.url).port;
    const err = await ProtocolClient.connect(srv.wsUrl).catch(e => e);
    expect(err).toBeInstanceOf(ColloquyError);
    expect(err.code).toBe('UNAUTHORIZED');
    expect(await ProtocolClient.connect(srv.wsUrl, { token: 'wrong' }).catch(e => e.code)).toBe('UNAUTHORIZED');
    const env = await connectVectorEnv(srv.wsUrl, { env: 'Echo-v0', token: 's3cret' });
    await env.reset({ seed: 1 });
    await env.close();
    const q = await rawClient(`ws://127.0.0.1:${port}/v1/env?token=s3cret`);
    expect((await q.call({ op: 'ping' })).ok).toBe(true);
    q.close();

    expect((await srv.app.inject({ url: '/health' })).statusCode).toBe(200);
    const denied = await srv.app.inject({ url: '/v1/envs' });
    expect(denied.statusCode).toBe(401);
    expect(denied.json()).toEqual({ ok: false, error: { code: 'UNAUTHORIZED', message: 'a bearer token is required' } });
    expect((await srv.app.inject({ url: '/metrics' })).statusCode).toBe(401);
    expect((await srv.app.inject({ url: '/v1/envs', headers: { authorization: 'Bearer s3cret' } })).statusCode).toBe(200);
    expect((await srv.app.inject({ url: '/v1/envs?token=s3cret' })).statusCode).toBe(200);
    expect((await srv.app.inject({ url: '/v1/envs', headers: { authorization: 'Bearer s3cre' } })).statusCode).toBe(401);
  });

  it('without a token everything is open', async () => {
    srv = await startTestServer();
    expect((await srv.app.inject({ url: '/v1/envs' })).statusCode).toBe(200);
    expect((await srv.app.inject({ url: '/metrics' })).statusCode).toBe(200);
    const env = await connectVectorEnv(srv.wsUrl, { env: 'Echo-v0' });
    await env.reset({ seed: 1 });
    await env.close();
  });
});

describe('resume', () => {
  it('replays stored replies, reports in-flight and lost ones, and leaves unseen ids to the client', async () => {
    srv = await startTestServer({ sessions: { replayBuffer: 2 } });
    const a = await rawClient(srv.wsUrl);
    const mk = (await a.call({ op: 'make', env: 'Echo-v0' })).result;
    await a.call({ id: 1, op: 'reset', session: mk.session, seed: 1 });
    for (let id = 2; id <= 6; id++) await a.call({ id, op: 'step', session: mk.session, actions: [0] });
    a.ws.terminate();
    const b = await rawClient(srv.wsUrl);
    const r = await b.call({ id: 100, op: 'resume', session: mk.session, token: mk.resumeToken, pending: [3, 4, 5, 6, 7] });
    expect(r.result).toMatchObject({ session: mk.session, replayed: [5, 6], inFlight: [], lost: [3, 4] });
    const replays = [await b.next(), await b.next()];
    expect(replays.map(x => x.id)).toEqual([5, 6]);
    expect(replays[1]!.result).toEqual(a.received.find(x => x.id === 6)!.result);
    expect((await b.call({ id: 7, op: 'step', session: mk.session, actions: [0] })).ok).toBe(true);
    b.close();
  });
});
