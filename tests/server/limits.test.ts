/** Limits and lifetimes: capacity, request timeout, idle reaping, resume window, heartbeats, auth. */
import { afterEach, describe, expect, it } from 'vitest';
import { connectVectorEnv, ProtocolClient } from '../../agents/client.ts';
import { ColloquyError } from '../../env/index.ts';
import { gated, openAllGates, rawClient, registerGatedEnv, startTestServer, type TestServer } from './helpers.ts';
import { waitFor } from '../helpers/wait.ts';

// Slow envs are gated (TestGated-v0): a request stays in the env until the test opens its gate.
registerGatedEnv();

let srv: TestServer | null = null;
afterEach(async () => { openAllGates(); await srv?.close(); srv = null; });

const sessionOf = (id: string) => [...srv!.app.sessions.values()].find(x => x.id === id);

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
    const g = gated('pending');
    const s = (await c.call({ op: 'make', env: 'TestGated-v0', kwargs: { gate: 'pending' } })).result.session;
    const calls = Array.from({ length: 5 }, () => c.call({ op: 'reset', session: s }));
    // The 4th and 5th are refused at once, while the first is still held in the env and two wait behind it.
    const refused = await Promise.all(calls.slice(3));
    expect(refused.map(r => r.error?.code)).toEqual(['CAPACITY', 'CAPACITY']);
    expect(g.started).toBe(1);
    g.gate.open();
    const replies = await Promise.all(calls);
    expect(replies.map(r => r.ok ? 'ok' : r.error!.code)).toEqual(['ok', 'ok', 'ok', 'CAPACITY', 'CAPACITY']);
    c.close();
  });
});

describe('timeouts and reaping', () => {
  it('answers TIMEOUT for a request past requestTimeoutMs; the session then needs a reset', async () => {
    srv = await startTestServer({ limits: { requestTimeoutMs: 100 } });
    const c = await rawClient(srv.wsUrl);
    const g = gated('timeout');
    const s = (await c.call({ op: 'make', env: 'TestGated-v0', kwargs: { gate: 'timeout' } })).result.session;
    const [r1, r2] = await Promise.all([c.call({ op: 'reset', session: s }), c.call({ op: 'step', session: s, actions: [0] })]);
    expect(r1.error!.code).toBe('TIMEOUT');
    expect(r2.error!.code).toBe('TIMEOUT');
    // Both TIMEOUTs came while the reset was still inside the env (its gate is closed): the timeout
    // does not wait for the env, and the queued step never reached it.
    expect(g.started).toBe(1);
    expect(g.finished).toBe(0);
    // The reset finishes late (gate opened); its result is dropped and the session needs a reset.
    g.gate.open();
    const session = sessionOf(s)!;
    await waitFor(() => session.needsReset && !session.busy, { what: 'the timed-out reset to finish and mark the session' });
    expect(g.finished).toBe(1);
    expect((await c.call({ op: 'step', session: s, actions: [0] })).error).toMatchObject({ code: 'RESET_NEEDED', message: expect.stringMatching(/timed out/) });
    expect(g.started).toBe(1); // the queued step was dropped, and RESET_NEEDED is answered without the env
    c.close();
  });

  it('closes idle sessions, and detached ones after the resume window', async () => {
    srv = await startTestServer({ sessions: { idleTimeoutMs: 150, resumeWindowMs: 100, reapIntervalMs: 20 } });
    const c = await rawClient(srv.wsUrl);
    const s = (await c.call({ op: 'make', env: 'Echo-v0' })).result.session;
    // Polling the manager does not touch the session (a request would keep it alive).
    await waitFor(() => srv!.app.sessions.size === 0, { what: 'the idle session to be reaped' });
    expect((await c.call({ op: 'reset', session: s })).error).toMatchObject({ code: 'UNKNOWN_SESSION', message: expect.stringMatching(/idle/) });

    const mk = (await c.call({ op: 'make', env: 'Echo-v0' })).result;
    c.close();
    await c.closed;
    await waitFor(() => srv!.app.sessions.size === 0, { what: 'the detached session to be closed after the resume window' });
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
    let pings = 0;
    alive.ws.on('ping', () => { pings++; });
    const mk = (await deaf.call({ op: 'make', env: 'Echo-v0' })).result;
    expect((await deaf.closed).code).toBe(1006);
    // Five more heartbeats (30 ms apart, so past the 100 ms timeout): the connection that answers them stays.
    const seen = pings;
    await waitFor(() => pings >= seen + 5, { what: 'five more heartbeat pings on the live connection' });
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
