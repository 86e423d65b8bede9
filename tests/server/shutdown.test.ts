/** Graceful shutdown: in-flight requests get their replies, sessions are closed, the process exits 0. */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Type } from '@sinclair/typebox';
import { Discrete, register, type Env, type EnvSpec } from '../../env/index.ts';
import { rawClient, sleep, startTestServer } from './helpers.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let closedEnvs = 0;
class SlowEnv implements Env<number, number> {
  readonly observationSpace = new Discrete(2);
  readonly actionSpace = new Discrete(2);
  spec: EnvSpec | null = null;
  constructor(private readonly delayMs: number) {}
  async reset() { return { observation: 0, info: {} }; }
  async step() { await sleep(this.delayMs); return { observation: 1, reward: 1, terminated: false, truncated: false, info: {} }; }
  async close() { closedEnvs++; }
}
register({
  id: 'TestSlowShutdown-v0',
  entryPoint: kw => new SlowEnv(kw.delayMs as number),
  kwargsSchema: Type.Object({ delayMs: Type.Integer({ minimum: 0, default: 0 }) }, { additionalProperties: false }),
  description: 'test env with slow steps',
});

describe('graceful shutdown', () => {
  it('in process: a step in flight gets its reply, later requests get CLOSED, sessions are closed, sockets get 1001', async () => {
    const srv = await startTestServer();
    const c = await rawClient(srv.wsUrl);
    const s = (await c.call({ op: 'make', env: 'TestSlowShutdown-v0', kwargs: { delayMs: 300 }, numEnvs: 2 })).result.session;
    await c.call({ op: 'reset', session: s });
    const inflight = c.call({ op: 'step', session: s, actions: [0, 1] });
    await sleep(50);
    const closing = srv.close();
    await sleep(20);
    const late = await c.call({ op: 'ping' });
    expect(late.error!.code).toBe('CLOSED');
    expect((await inflight).ok).toBe(true);
    await closing;
    expect((await c.closed).code).toBe(1001);
    expect(closedEnvs).toBe(2);
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
    const t0 = Date.now();
    while (!/listening on http:\/\/127\.0\.0\.1:(\d+)/.test(out)) {
      if (Date.now() - t0 > 30_000) throw new Error(`server did not start:\n${out}`);
      await sleep(50);
    }
    const port = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1];
    const c = await rawClient(`ws://127.0.0.1:${port}/v1/env`);
    const s = (await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 64 })).result.session;
    await c.call({ op: 'reset', session: s, seed: 1 });
    const n = 2000;
    const actions = JSON.stringify(new Array(64).fill(0));
    for (let i = 0; i < n; i++) c.raw(`{"id":${i},"op":"step","session":"${s}","actions":${actions}}`);
    await sleep(5);
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
