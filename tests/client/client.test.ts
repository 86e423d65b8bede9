import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectEnv, connectVectorEnv, ProtocolClient, SingleEnvAdapter } from '../../agents/client.ts';
import {
  ColloquyError, Discrete, register, type Env, type EnvSpec, type ResetArgs, InvalidAction, NameNotFound, ResetNeeded, Rng, checkEnv, makeVec, registeredIds, type AutoresetMode, type VectorEnv,
} from '../../env/index.ts';
import type { ObsEncoding } from '../../protocol/v1.ts';
import { rawClient, startTestServer, type TestServer } from '../server/helpers.ts';

/** A tiny env with a Discrete observation space (not packable). */
class CoinEnv implements Env<number, number> {
  readonly observationSpace = new Discrete(2);
  readonly actionSpace = new Discrete(2);
  spec: EnvSpec | null = null;
  private rng = new Rng(0);
  private coin = 0;
  private t = 0;
  async reset(args: ResetArgs = {}) { if (args.seed !== undefined) this.rng = new Rng(args.seed); this.t = 0; this.coin = this.rng.int(2); return { observation: this.coin, info: {} }; }
  async step(a: number) {
    const reward = a === this.coin ? 1 : 0;
    this.coin = this.rng.int(2);
    return { observation: this.coin, reward, terminated: ++this.t >= 5, truncated: false, info: {} };
  }
  async close() {}
}
register({ id: 'DiscreteObs-v0', entryPoint: () => new CoinEnv(), maxEpisodeSteps: 100, description: 'test env with a Discrete observation space' });

let srv: TestServer;
// Replies kept for replay cover the 50 requests pipelined in the resume test.
beforeAll(async () => { srv = await startTestServer({ sessions: { replayBuffer: 64 } }); });
afterAll(async () => { await srv.close(); });

/** Run a vector env with seeded random actions; the JSON of every result, in order. */
async function trajectory(env: VectorEnv, seed: number, steps: number, resets: number[] = []): Promise<string[]> {
  const rng = new Rng(seed + 1000);
  const out = [JSON.stringify(await env.reset({ seed }))];
  const ended = new Array<boolean>(env.numEnvs).fill(false);
  for (let t = 0; t < steps; t++) {
    if (env.autoresetMode === 'disabled' && ended.some(Boolean)) {
      out.push(JSON.stringify(await env.reset({ options: { resetMask: ended.slice() } })));
      ended.fill(false);
    }
    if (resets.includes(t)) out.push(JSON.stringify(await env.reset({ seed: seed + t })));
    const actions = Array.from({ length: env.numEnvs }, () => env.singleActionSpace.sample(rng));
    const r = await env.step(actions);
    r.terminated.forEach((x, i) => { if (x || r.truncated[i]) ended[i] = true; });
    out.push(JSON.stringify(r));
  }
  return out;
}

describe('RemoteVectorEnv', () => {
  it.each<[AutoresetMode, ObsEncoding]>([['next-step', 'json'], ['same-step', 'json'], ['disabled', 'json'], ['next-step', 'f64'], ['same-step', 'f64']])('gives the same trajectories as the env in process (%s, %s)', async (mode, obsEncoding) => {
    const kwargs = { obsSize: 5, episodeLength: 7 };
    const remote = await connectVectorEnv(srv.wsUrl, { env: 'Echo-v0', numEnvs: 4, kwargs, autoresetMode: mode, obsEncoding });
    expect(remote.numEnvs).toBe(4);
    expect(remote.autoresetMode).toBe(mode);
    expect(remote.singleObservationSpace.toJSON()).toEqual(makeVec('Echo-v0', { kwargs }).singleObservationSpace.toJSON());
    expect(remote.spec).toMatchObject({ id: 'Echo-v0', kwargs: { obsSize: 5, episodeLength: 7, nActions: 16 } });
    const local = makeVec('Echo-v0', { numEnvs: 4, kwargs, autoresetMode: mode });
    const a = await trajectory(remote, 11, 40, [25]);
    const b = await trajectory(local, 11, 40, [25]);
    expect(a).toEqual(b);
    await remote.close();
    await remote.close();
  });

  it("sends packed observations with obsEncoding 'f64', for Box spaces only", async () => {
    const c = await rawClient(srv.wsUrl);
    const mk = await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 3, obsEncoding: 'f64' });
    expect(mk.result.obsEncoding).toBe('f64');
    const r = await c.call({ op: 'reset', session: mk.result.session, seed: 1 });
    expect(r.result.observations).toMatchObject({ dtype: 'float64', shape: [3, 8] });
    expect(typeof r.result.observations.data).toBe('string');
    await c.call({ op: 'close', session: mk.result.session });
    c.close();
    const bad = await connectVectorEnv(srv.wsUrl, { env: 'DiscreteObs-v0', obsEncoding: 'f64' }).catch(e => e);
    expect(bad).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/Box/) });
  });

  it('turns errors back into the typed classes', async () => {
    const env = await connectVectorEnv(srv.wsUrl, { env: 'Echo-v0', numEnvs: 2 });
    await expect(env.step([0, 0])).rejects.toBeInstanceOf(ResetNeeded);
    await env.reset({ seed: 1 });
    await expect(env.step([0, 99])).rejects.toBeInstanceOf(InvalidAction);
    await env.close();
    const err = await connectVectorEnv(srv.wsUrl, { env: 'Ecoh-v0' }).catch(e => e);
    expect(err).toBeInstanceOf(NameNotFound);
    expect(err.message).toMatch(/did you mean 'Echo-v0'/);
    const cap = await connectVectorEnv(srv.wsUrl, { env: 'Echo-v0', numEnvs: 100_000 }).catch(e => e);
    expect(cap).toBeInstanceOf(ColloquyError);
    expect(cap.code).toBe('CAPACITY');
  });

  it('shares one connection between sessions and pipelines them', async () => {
    const client = await ProtocolClient.connect(srv.wsUrl);
    const envs = await Promise.all([1, 2, 3].map(n => connectVectorEnv(srv.wsUrl, { env: 'Echo-v0', numEnvs: n, client })));
    const locals = [1, 2, 3].map(n => makeVec('Echo-v0', { numEnvs: n }));
    const [ra, rb] = await Promise.all([Promise.all(envs.map((e, i) => trajectory(e, i, 20))), Promise.all(locals.map((e, i) => trajectory(e, i, 20)))]);
    expect(ra).toEqual(rb);
    for (const e of envs) await e.close();
    expect(client.connected).toBe(true);
    await client.close();
  });
});

describe('single env over the wire', () => {
  it('passes checkEnv for every registered env', async () => {
    for (const id of registeredIds()) {
      const report = await checkEnv(() => connectEnv(srv.wsUrl, { env: id }), { seed: 3, maxSteps: 16 });
      expect(report.checks).toContain('close-twice');
    }
  }, 120_000);

  it('needs a reset after the episode ends, like a local env', async () => {
    const env = await connectEnv<number[], number>(srv.wsUrl, { env: 'Echo-v0', kwargs: { episodeLength: 2 } });
    expect(env).toBeInstanceOf(SingleEnvAdapter);
    await env.reset({ seed: 5 });
    await env.step(0);
    const last = await env.step(0);
    expect(last.terminated).toBe(true);
    await expect(env.step(0)).rejects.toMatchObject({ code: 'RESET_NEEDED' });
    await env.reset();
    expect((await env.step(0)).terminated).toBe(false);
    await env.close();
  });
});

const metric = (name: string) => async () => Number(/^(\S+) (\S+)$/m.exec((await srv.app.metrics.render()).split('\n').filter(l => l.startsWith(name)).join('\n'))?.[2] ?? 0);
const envSteps = metric('colloquy_env_steps_total ');
const resumes = metric('colloquy_requests_total{op="resume"} ');

describe('reconnect and resume', () => {
  it('resumes its session after a dropped connection; the trajectory is unchanged', async () => {
    let reconnects = 0;
    const remote = await connectVectorEnv<number[], number>(srv.wsUrl, {
      env: 'Echo-v0', numEnvs: 3, reconnect: { initialDelayMs: 5 }, onReconnect: () => { reconnects++; },
    });
    const local = makeVec('Echo-v0', { numEnvs: 3 }) as VectorEnv<number[], number>;
    const rng = new Rng(9);
    expect(JSON.stringify(await remote.reset({ seed: 9 }))).toBe(JSON.stringify(await local.reset({ seed: 9 })));
    for (let t = 0; t < 60; t++) {
      const actions = [rng.int(16), rng.int(16), rng.int(16)];
      if (t % 15 === 5) remote.client.dropConnection();            // drop, then send into the void
      const p = remote.step(actions);
      if (t % 15 === 10) remote.client.dropConnection();           // drop with the request in flight
      if (t % 15 === 12) {                                          // the server drops us
        for (const conn of srv.app.envProtocol.connections) conn.ws.terminate();
      }
      expect(JSON.stringify(await p)).toBe(JSON.stringify(await local.step(actions)));
    }
    expect(reconnects).toBeGreaterThanOrEqual(8);
    expect(await resumes()).toBeGreaterThanOrEqual(8);
    await remote.close();
    expect(srv.app.sessions.size).toBe(0);
  });

  it('pipelined requests in flight during a drop complete exactly once', async () => {
    const remote = await connectVectorEnv<number[], number>(srv.wsUrl, { env: 'Echo-v0', numEnvs: 2, reconnect: { initialDelayMs: 5 } });
    const local = makeVec('Echo-v0', { numEnvs: 2 }) as VectorEnv<number[], number>;
    await remote.reset({ seed: 4 });
    await local.reset({ seed: 4 });
    const acts = Array.from({ length: 50 }, (_, i) => [i % 16, (i * 3) % 16]);
    const stepsBefore = await envSteps();
    const resumesBefore = await resumes();
    const pending = acts.map(a => remote.step(a));
    await new Promise(r => setImmediate(r));
    remote.client.dropConnection();
    const got = await Promise.all(pending);
    for (const [i, a] of acts.entries()) expect(JSON.stringify(got[i])).toBe(JSON.stringify(await local.step(a)));
    expect(await resumes() - resumesBefore).toBe(1);
    expect(await envSteps() - stepsBefore).toBe(100); // 50 steps x 2 envs: none lost, none repeated
    await remote.close();
  });
});

describe('a server that goes away', () => {
  it('fails pending and later requests with CLOSED once reconnecting gives up', async () => {
    const own = await startTestServer();
    const env = await connectVectorEnv(own.wsUrl, { env: 'Echo-v0', reconnect: { attempts: 2, initialDelayMs: 10 } });
    await env.reset({ seed: 1 });
    await own.close();
    await expect(env.step([0])).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(env.step([0])).rejects.toMatchObject({ code: 'CLOSED' });
    await env.close();
  });
});
