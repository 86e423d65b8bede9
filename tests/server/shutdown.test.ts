/** Graceful shutdown: in-flight requests get their replies, sessions are closed, the process exits 0. */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gated, rawClient, registerGatedEnv, startTestServer } from './helpers.ts';
import { waitFor } from '../helpers/wait.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// The step in flight is gated (TestGated-v0): it stays in the env until the test opens the gate.
registerGatedEnv();

describe('graceful shutdown', () => {
  it('in process: a step in flight gets its reply, later requests get CLOSED, sessions are closed, sockets get 1001', async () => {
    const srv = await startTestServer();
    const c = await rawClient(srv.wsUrl);
    const g = gated('shutdown');
    const s = (await c.call({ op: 'make', env: 'TestGated-v0', kwargs: { gate: 'shutdown', resetToo: false }, numEnvs: 2 })).result.session;
    await c.call({ op: 'reset', session: s });
    // (make built one env first to size its replies, and closed it)
    const closedBefore = g.closed;
    const inflight = c.call({ op: 'step', session: s, actions: [0, 1] });
    let inflightDone = false;
    void inflight.then(() => { inflightDone = true; });
    await waitFor(() => g.started === 2, { what: 'the step to enter both sub-envs' });
    const closing = srv.close();
    // Shutdown starts asynchronously; it cannot finish while the step is held in the env, so the
    // first request that gets CLOSED shows it draining (earlier pings are still answered).
    const late = await waitFor(async () => { const r = await c.call({ op: 'ping' }); return r.ok ? null : r; }, { what: 'a ping answered CLOSED after close()' });
    expect(late.error!.code).toBe('CLOSED');
    expect(inflightDone).toBe(false); // still in the env: shutdown waits for it
    g.gate.open();
    expect((await inflight).ok).toBe(true);
    await closing;
    expect((await c.closed).code).toBe(1001);
    expect(g.closed - closedBefore).toBe(2);
  });

  it('colloquy serve: SIGTERM lets pipelined requests finish, then exits 0', async () => {
    // No first-run pretraining of the base model here: Echo-v0 needs none.
    const config = path.join(mkdtempSync(path.join(tmpdir(), 'colloquy-')), 'server.json');
    writeFileSync(config, JSON.stringify({ baseModel: { pretrainIfMissing: false } }));
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/colloquy.mjs'), 'serve', '--port', '0', '--log-level', 'info', '--config', config], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { out += b.toString(); });
    const exited = new Promise<number | null>(ok => child.on('exit', code => ok(code)));
    const port = (await waitFor(() => /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out), { timeoutMs: 30_000, intervalMs: 50, what: () => `the server to listen; output:\n${out}` }))[1];
    const c = await rawClient(`ws://127.0.0.1:${port}/v1/env`);
    const s = (await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 64 })).result.session;
    await c.call({ op: 'reset', session: s, seed: 1 });
    const n = 2000;
    const actions = JSON.stringify(new Array(64).fill(0));
    for (let i = 0; i < n; i++) c.raw(`{"id":${i},"op":"step","session":"${s}","actions":${actions}}`);
    // SIGTERM once the server is answering them (the first step reply), with most still to come.
    await waitFor(() => c.received.some(r => r.id === 0), { what: 'the first pipelined step reply' });
    child.kill('SIGTERM');
    const code = await exited;
    const closed = await c.closed;
    expect(code).toBe(0);
    expect(closed.code).toBe(1001);
    // Every request the server read was answered: replies are ok steps, then CLOSED errors.
    const replies = c.received.filter(r => typeof r.id === 'number' && (r.id as number) < n);
    const firstClosed = replies.findIndex(r => !r.ok);
    const oks = firstClosed < 0 ? replies : replies.slice(0, firstClosed);
    expect(oks.length).toBeGreaterThan(0);
    expect(oks.every((r, i) => r.ok && r.id === i)).toBe(true);
    expect(replies.slice(oks.length).every(r => r.error?.code === 'CLOSED')).toBe(true);
    expect(out).toMatch(/"msg":"shutting down"/);
    expect(out).toMatch(/"reason":"server shutting down","msg":"session closed"/);
    expect(out).toMatch(/"msg":"server stopped"/);
  }, 60_000);
});
