import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectEnv, connectVectorEnv, ProtocolClient, SingleEnvAdapter } from '../../agents/client.ts';
import {
  Box, ColloquyError, Discrete, register, type Env, type EnvSpec, type ResetArgs, InvalidAction, NameNotFound, ResetNeeded, Rng, checkEnv, makeVec, registeredIds, type AutoresetMode, type VectorEnv,
} from '../../env/index.ts';
import { infosJson, type ObsEncoding } from '../../protocol/v1.ts';
import { binaryResultFrame, binaryStepFrame, decodeBinaryFrame, replyFromBinary } from '../../protocol/binary.ts';
import WebSocket from 'ws';
import { once } from 'node:events';
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
/** A tiny env with float (Box) actions: the observation is the last action and a step count. */
class NudgeEnv implements Env<number[], number[]> {
  readonly observationSpace = new Box(-10, 10, [3], 'float64');
  readonly actionSpace = new Box(-1, 1, [2], 'float64');
  spec: EnvSpec | null = null;
  private t = 0;
  async reset() { this.t = 0; return { observation: [0, 0, 0], info: {} }; }
  async step(a: number[]) { this.t++; return { observation: [a[0]!, a[1]!, this.t / 3], reward: a[0]! * a[1]!, terminated: this.t >= 4, truncated: false, info: {} }; }
  async close() {}
}
register({ id: 'BoxAct-v0', entryPoint: () => new NudgeEnv(), maxEpisodeSteps: 100, description: 'test env with Box actions' });
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
  it.each<[AutoresetMode, ObsEncoding]>([['next-step', 'json'], ['same-step', 'json'], ['disabled', 'json'], ['next-step', 'f64'], ['same-step', 'f64'], ['next-step', 'binary'], ['same-step', 'binary'], ['disabled', 'binary']])('gives the same trajectories as the env in process (%s, %s)', async (mode, obsEncoding) => {
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

  it("speaks binary frames with obsEncoding 'binary': typed arrays both ways, the numbers of the JSON session", async () => {
    const ws = new WebSocket(srv.wsUrl, { perMessageDeflate: false });
    const frames: { data: Buffer; isBinary: boolean }[] = [];
    ws.on('message', (data: Buffer, isBinary: boolean) => frames.push({ data: Buffer.from(data), isBinary }));
    await once(ws, 'open');
    const call = async (msg: string | Buffer) => {
      const n = frames.length;
      ws.send(msg);
      while (frames.length === n) await new Promise(r => setTimeout(r, 1));
      return frames[n]!;
    };
    const text = async (msg: object) => JSON.parse((await call(JSON.stringify(msg))).data.toString());
    const kwargs = { obsSize: 6, episodeLength: 4 };
    const bin = (await text({ id: 1, op: 'make', env: 'Echo-v0', numEnvs: 3, kwargs, obsEncoding: 'binary' })).result;
    expect(bin.obsEncoding).toBe('binary');
    const json = (await text({ id: 2, op: 'make', env: 'Echo-v0', numEnvs: 3, kwargs })).result;
    const reset = await call(JSON.stringify({ id: 3, op: 'reset', session: bin.session, seed: 5 }));
    expect(reset.isBinary).toBe(true);
    expect(decodeBinaryFrame(reset.data).header).toMatchObject({ id: 3, ok: true, emptyInfos: 3, arrays: [['observations', 'float32', [3, 6]]] });
    expect(replyFromBinary(reset.data)).toEqual(await text({ id: 3, op: 'reset', session: json.session, seed: 5 }));
    const rng = new Rng(3);
    for (let t = 0; t < 10; t++) {
      const actions = [rng.int(16), rng.int(16), rng.int(16)];
      const step = await call(binaryStepFrame(10 + t, bin.session, actions, { ints: true })!);
      expect(step.isBinary).toBe(true);
      expect(decodeBinaryFrame(step.data).header.arrays).toEqual([['observations', 'float32', [3, 6]], ['rewards', 'float64', [3]], ['terminated', 'bool', [3]], ['truncated', 'bool', [3]]]);
      // Key for key and bit for bit what the JSON session answers to the same step as a text frame.
      expect(JSON.stringify(replyFromBinary(step.data))).toBe(JSON.stringify(await text({ id: 10 + t, op: 'step', session: json.session, actions })));
    }
    // A binary step on a JSON session gets a text reply; errors on a binary session are text frames with the request's id.
    const onJson = await call(binaryStepFrame(40, json.session, [0, 1, 2], { ints: true })!);
    expect(onJson.isBinary).toBe(false);
    expect(JSON.parse(onJson.data.toString())).toMatchObject({ id: 40, ok: true });
    const badAction = await call(binaryStepFrame(41, bin.session, [0, 1, 99], { ints: true })!);
    expect(badAction.isBinary).toBe(false);
    expect(JSON.parse(badAction.data.toString())).toMatchObject({ id: 41, ok: false, error: { code: 'INVALID_ACTION' } });
    const whole = binaryStepFrame(42, bin.session, [0, 1, 2], { ints: true })!;
    const truncated = await call(whole.subarray(0, whole.length - 2));
    expect(JSON.parse(truncated.data.toString())).toMatchObject({ id: 42, ok: false, error: { code: 'BAD_REQUEST', message: expect.stringMatching(/^binary frame: array 'actions' .* needs 12 bytes/) } });
    // (The header unread, the reply has no id.)
    expect(JSON.parse((await call(whole.subarray(0, 30))).data.toString())).toMatchObject({ id: null, ok: false, error: { code: 'BAD_REQUEST' } });
    for (const s of [bin, json]) await text({ id: 50, op: 'close', session: s.session });
    ws.close();
  });

  it('sends float actions as binary frames on a binary session; the trajectory is that of the env in process', async () => {
    const remote = await connectVectorEnv(srv.wsUrl, { env: 'BoxAct-v0', numEnvs: 3, obsEncoding: 'binary' });
    const sent: boolean[] = [];
    const ws = (remote.client as unknown as { ws: WebSocket }).ws;
    const send = ws.send.bind(ws);
    ws.send = ((data: unknown, ...rest: unknown[]) => { sent.push(Buffer.isBuffer(data)); return (send as (...a: unknown[]) => void)(data, ...rest); }) as typeof ws.send;
    const local = makeVec('BoxAct-v0', { numEnvs: 3 });
    expect(await trajectory(remote, 6, 12)).toEqual(await trajectory(local, 6, 12));
    expect(sent.filter(Boolean).length).toBe(12); // the 12 steps (resets go as JSON)
    expect(binaryStepFrame(1, 's', [1, 2])).toBeNull(); // integers go as JSON unless asked
    await remote.close();
  });

  it("keeps what does not pack in the binary header: observations of a Discrete space, non-empty infos", async () => {
    const remote = await connectVectorEnv(srv.wsUrl, { env: 'DiscreteObs-v0', numEnvs: 3, obsEncoding: 'binary' });
    const local = makeVec('DiscreteObs-v0', { numEnvs: 3 });
    expect(await trajectory(remote, 4, 12)).toEqual(await trajectory(local, 4, 12));
    await remote.close();
    const r = { observations: ['a', 'b'], rewards: [0.1, -0], terminated: [false, true], truncated: [false, false], infos: [{ x: 1 }, {}] };
    const frame = binaryResultFrame('7', r, null, infosJson);
    expect(decodeBinaryFrame(frame).header.result).toEqual({ observations: ['a', 'b'], infos: [{ x: 1 }, {}] });
    expect(JSON.stringify(replyFromBinary(frame))).toBe(JSON.stringify({ id: 7, ok: true, result: JSON.parse(JSON.stringify(r)) }));
    // float32 only where float32 holds the values exactly; -0 as JSON has it.
    const f64 = binaryResultFrame('8', { observations: [[0.1, 1], [2, -0]], infos: [{}, {}] }, 2, infosJson);
    expect(decodeBinaryFrame(f64).header.arrays).toEqual([['observations', 'float64', [2, 2]]]);
    expect(JSON.stringify(replyFromBinary(f64).result)).toBe('{"observations":[[0.1,1],[2,0]],"infos":[{},{}]}');
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
  it.each<ObsEncoding>(['json', 'binary'])('resumes its session after a dropped connection; the trajectory is unchanged (%s frames)', async obsEncoding => {
    let reconnects = 0;
    // (binary: the replies the server keeps for replay, and the steps the client re-sends, are binary frames.)
    const remote = await connectVectorEnv<number[], number>(srv.wsUrl, {
      env: 'Echo-v0', numEnvs: 3, obsEncoding, reconnect: { initialDelayMs: 5 }, onReconnect: () => { reconnects++; },
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
