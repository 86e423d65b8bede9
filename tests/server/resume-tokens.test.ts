/**
 * Issue 14, item 7, over real sockets: a resume token works once (every resume answers a new
 * one), and a token does not take a session from an owner that still answers heartbeats; one
 * that stopped answering loses it to the next resume.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectVectorEnv } from '../../agents/client.ts';
import { rawClient, startTestServer, type RawClient, type TestServer } from './helpers.ts';

let srv: TestServer | null = null;
const clients: RawClient[] = [];
afterEach(async () => { for (const c of clients.splice(0)) c.ws.terminate(); await srv?.close(); srv = null; });
async function client(opts: Parameters<typeof rawClient>[1] = {}): Promise<RawClient> { const c = await rawClient(srv!.wsUrl, opts); clients.push(c); return c; }

describe('resume tokens (item 7)', () => {
  it('a token is used up by its resume: replaying it later takes nothing', async () => {
    srv = await startTestServer();
    const a = await client();
    const made = (await a.call({ op: 'make', env: 'Echo-v0' })).result;
    a.ws.terminate();
    await a.closed;
    await expect.poll(() => [...srv!.app.sessions.values()][0]?.owner ?? 'detached').toBe('detached');

    const c = await client();
    const r1 = await c.call({ op: 'resume', session: made.session, token: made.resumeToken });
    expect(r1.ok).toBe(true);
    expect(r1.result.resumeToken).not.toBe(made.resumeToken);
    c.ws.terminate();
    await c.closed;
    await expect.poll(() => [...srv!.app.sessions.values()][0]?.owner ?? 'detached').toBe('detached');

    // D replays the token C used: refused, as an unknown token is.
    const d = await client();
    const replay = await d.call({ op: 'resume', session: made.session, token: made.resumeToken });
    expect(replay.error?.code).toBe('UNKNOWN_SESSION');
    // The token C got still works (once).
    const r2 = await d.call({ op: 'resume', session: made.session, token: r1.result.resumeToken });
    expect(r2.ok).toBe(true);
    expect((await d.call({ op: 'reset', session: made.session, seed: 1 })).ok).toBe(true);
  });

  it('a token does not take a session from an owner that answers; it does from one that stopped', async () => {
    srv = await startTestServer({ heartbeat: { intervalMs: 400, timeoutMs: 60_000 } });
    const owner = await client();
    const made = (await owner.call({ op: 'make', env: 'Echo-v0' })).result;
    const thief = await client();
    for (let i = 0; i < 3; i++) {
      const r = await thief.call({ op: 'resume', session: made.session, token: made.resumeToken });
      expect(r.error?.code, `attempt ${i}`).toBe('CAPACITY');
      await new Promise(res => setTimeout(res, 500));
    }
    // The owner never lost it.
    expect((await owner.call({ op: 'reset', session: made.session, seed: 1 })).ok).toBe(true);

    // An owner whose connection went half-open (it answers no ping and sends nothing).
    const deaf = await client({ autoPong: false });
    const m2 = (await deaf.call({ op: 'make', env: 'Echo-v0' })).result;
    const heir = await client();
    let r = await heir.call({ op: 'resume', session: m2.session, token: m2.resumeToken });
    for (let i = 0; i < 20 && !r.ok; i++) {
      expect(r.error?.code).toBe('CAPACITY');
      await new Promise(res => setTimeout(res, 200));
      r = await heir.call({ op: 'resume', session: m2.session, token: m2.resumeToken });
    }
    expect(r.ok).toBe(true);
    expect((await heir.call({ op: 'reset', session: m2.session, seed: 1 })).ok).toBe(true);
  });

  it('the TypeScript client keeps the rotated token: it resumes again after a second drop', async () => {
    srv = await startTestServer();
    const env = await connectVectorEnv<number[], number>(srv.wsUrl, { env: 'Echo-v0', numEnvs: 2, reconnect: { initialDelayMs: 20 } });
    try {
      await env.reset({ seed: 5 });
      for (let drop = 0; drop < 3; drop++) {
        env.client.dropConnection();
        const r = await env.step([0, 1]);
        expect(r.rewards).toHaveLength(2);
      }
    } finally { await env.close(); }
  });
});
