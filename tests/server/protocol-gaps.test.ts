/**
 * The protocol gaps a Python client hit (issue 15, item 2): float32 Box values, actions of
 * sub-envs a next-step autoreset resets, utterance mode's space and the token budget, per-env and
 * large seeds, a second close, and the `state` op.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Box, make, makeVec, Rng, Text, type VectorEnv } from '../../env/index.ts';
import { connectVectorEnv } from '../../agents/client.ts';
import { SEED_MODULUS, wireSeed } from '../../protocol/v1.ts';
import { rawClient, startTestServer, type RawClient, type TestServer } from './helpers.ts';

let srv: TestServer;
let c: RawClient;
beforeAll(async () => { srv = await startTestServer(); c = await rawClient(srv.wsUrl); });
afterAll(async () => { c.close(); await srv.close(); });

const json = (x: unknown) => JSON.parse(JSON.stringify(x)) as unknown;

describe('float32 Box values', () => {
  it('Echo-v0 observations are float32 values, in process and over the wire', async () => {
    const kwargs = { nActions: 16, episodeLength: 15 };
    const local = makeVec('Echo-v0', { numEnvs: 2, kwargs });
    const mk = await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 2, kwargs });
    const s = mk.result.session as string;
    const rows: number[][] = [];
    const lr = await local.reset({ seed: 9 });
    const wr = await c.call({ op: 'reset', session: s, seed: 9 });
    expect(wr.result).toEqual(json(lr));
    rows.push(...(lr.observations as number[][]));
    for (let t = 0; t < 20; t++) {
      const a = [t % 16, (3 * t) % 16];
      const l = await local.step(a);
      expect((await c.call({ op: 'step', session: s, actions: a })).result).toEqual(json(l));
      rows.push(...(l.observations as number[][]));
    }
    // 1/15 and 13/15 are among the values: not float32 unless rounded.
    for (const row of rows) {
      for (const v of row) expect(Math.fround(v)).toBe(v);
      expect(local.singleObservationSpace.contains(row)).toBe(true);
    }
  });

  it('Box.contains checks that values are representable in the dtype', () => {
    const f32 = new Box(0, 1, [2], 'float32');
    expect(f32.contains([0.5, Math.fround(13 / 15)])).toBe(true);
    expect(f32.contains([0.5, 13 / 15])).toBe(false);
    expect(new Box(0, 1, [1], 'float64').contains([13 / 15])).toBe(true);
    const i32 = new Box(-Infinity, Infinity, [1], 'int32');
    expect(i32.contains([2 ** 31 - 1])).toBe(true);
    expect(i32.contains([2 ** 31])).toBe(false);
    expect(i32.contains([1.5])).toBe(false);
    const rng = new Rng(1);
    for (let i = 0; i < 50; i++) expect(f32.contains(f32.sample(rng))).toBe(true);
  });
});

describe('next-step autoreset: the action of a sub-env being reset is ignored', () => {
  it('is not checked against the action space, while a live sub-env\'s still is', async () => {
    const kwargs = { episodeLength: 2 };
    const local = makeVec('Echo-v0', { numEnvs: 2, kwargs });
    const s = (await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 2, kwargs })).result.session as string;
    const script: [string, Record<string, unknown>][] = [
      ['reset', { seed: 4 }], ['step', { actions: [1, 2] }],
      // Sub-env 1 starts over: sub-env 0 ends one step before it.
      ['reset', { options: { resetMask: [false, true] } }], ['step', { actions: [3, 4] }],
    ];
    for (const [op, args] of script) {
      const r = await c.call({ op, session: s, ...args });
      const l = op === 'reset' ? await local.reset(args as never) : await local.step((args as { actions: number[] }).actions);
      expect(r.result).toEqual(json(l));
    }
    expect((await c.call({ op: 'state', session: s })).result.ended).toEqual([true, false]);
    // Sub-env 1 is live: its action is checked.
    const bad = await c.call({ op: 'step', session: s, actions: [999, 999] });
    expect(bad.error).toMatchObject({ code: 'INVALID_ACTION', message: expect.stringMatching(/actions\[1\]/) });
    // Sub-env 0 is reset by this step: its action is ignored, whatever it is.
    const ok = await c.call({ op: 'step', session: s, actions: [999, 5] });
    const l = await local.step([0, 5]);
    expect(ok.result).toEqual(json(l));
    expect(ok.result.infos[0].autoreset).toBe(true);
    expect(ok.result.terminated).toEqual([false, true]);
  });

  it('still checks every action in same-step and disabled modes', async () => {
    for (const autoresetMode of ['same-step', 'disabled']) {
      const s = (await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 2, autoresetMode, kwargs: { episodeLength: 1 } })).result.session;
      await c.call({ op: 'reset', session: s, seed: 1 });
      await c.call({ op: 'step', session: s, actions: [0, 0] });
      const r = await c.call({ op: 'step', session: s, actions: [999, 0] });
      expect(r.error!.code).toBe('INVALID_ACTION');
    }
  });
});

describe('utterance mode: the Text space agrees with the token budget', () => {
  it('declares the most characters a first teacher turn can hold, not a fixed 20000', async () => {
    const env = make('TeacherStudent-v0', { actionMode: 'utterance' });
    const space = env.actionSpace as unknown as Text;
    expect(space).toBeInstanceOf(Text);
    expect(space.maxLength).toBeGreaterThan(0);
    expect(space.maxLength).toBeLessThan(20000);
    const bigger = make('TeacherStudent-v0', { actionMode: 'utterance', maxTokens: 1024 }).actionSpace as unknown as Text;
    expect(bigger.maxLength).toBeGreaterThan(space.maxLength);
    const tiny = make('TeacherStudent-v0', { actionMode: 'utterance', maxTokens: 8, prompt: { text: '\n\nTeacher:' } }).actionSpace as unknown as Text;
    expect(tiny.maxLength).toBeLessThan(space.maxLength);
    expect(space.contains('a'.repeat(space.maxLength))).toBe(true);
    expect(space.contains('a'.repeat(space.maxLength + 1))).toBe(false);
    await env.close();
  });

  it('a random action from the space does not end the first step with the default budget', async () => {
    const rng = new Rng(123);
    for (let k = 0; k < 3; k++) {
      const env = make('TeacherStudent-v0', { actionMode: 'utterance' });
      await env.reset({ seed: k });
      const r = await env.step(env.actionSpace.sample(rng));
      expect(r.truncated).toBe(false);
      await env.close();
    }
  });

  it('the server answers an utterance longer than the space with INVALID_ACTION', async () => {
    const mk = await c.call({ op: 'make', env: 'TeacherStudent-v0', kwargs: { actionMode: 'utterance' } });
    const max = mk.result.actionSpace.maxLength as number;
    await c.call({ op: 'reset', session: mk.result.session, seed: 1 });
    const r = await c.call({ op: 'step', session: mk.result.session, actions: ['x'.repeat(max + 1)] });
    expect(r.error!.code).toBe('INVALID_ACTION');
    await c.call({ op: 'close', session: mk.result.session });
  });
});

describe('reset seeds: one per sub-env, and any non-negative integer', () => {
  it('a list of seeds gives sub-env i the trajectory of seed[i]; null continues its stream', async () => {
    const s = (await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 3 })).result.session;
    const r = await c.call({ op: 'reset', session: s, seed: [11, 5, 11] });
    const single = async (seed: number) => (await make('Echo-v0').reset({ seed })).observation;
    expect(r.result.observations).toEqual([await single(11), await single(5), await single(11)]);
    // The same as the scalar form where it says the same.
    const local = makeVec('Echo-v0', { numEnvs: 3 });
    expect((await c.call({ op: 'reset', session: s, seed: [20, 21, 22] })).result).toEqual(json(await local.reset({ seed: 20 })));
    const t = await c.call({ op: 'reset', session: s, seed: [null, 7, null] });
    expect(t.result).toEqual(json(await local.reset({ seed: [null, 7, null] })));
    expect(t.result.observations[1]).toEqual(await single(7));
    expect((await c.call({ op: 'state', session: s })).result.seeds).toEqual([null, 7, null]);
  });

  it('a list of the wrong length or with bad entries is BAD_REQUEST', async () => {
    const s = (await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 2 })).result.session;
    for (const seed of [[1], [1, 2, 3], [1, -1], [1, 1.5], [1, '1.5'], [[1], 2]]) {
      expect((await c.call({ op: 'reset', session: s, seed })).error!.code).toBe('BAD_REQUEST');
    }
  });

  it('seeds above 2^52 (numbers or decimal strings) are seeds: reduced modulo 2^32, as the RNG reads them', async () => {
    expect(wireSeed(5)).toBe(5);
    expect(wireSeed(2 ** 52)).toBe(2 ** 52);
    expect(wireSeed('18446744073709551621')).toBe(5); // 2^64 + 5
    expect(wireSeed(2 ** 53 + 2 ** 33 + 8)).toBe(8);
    const s = (await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 2 })).result.session;
    const local = makeVec('Echo-v0', { numEnvs: 2 });
    for (const [seed, same] of [[2 ** 52 + 2 ** 32 + 3, 3], ['18446744073709551621', 5], [1e300, Number(BigInt(1e300) % BigInt(SEED_MODULUS))], ['0000', 0]] as const) {
      const r = await c.call({ op: 'reset', session: s, seed });
      expect(r.ok).toBe(true);
      expect(r.result).toEqual(json(await local.reset({ seed: same })));
    }
    // 2^52 itself and below are passed on as they are (the RNG reads them modulo 2^32 the same).
    const r = await c.call({ op: 'reset', session: s, seed: 2 ** 32 + 9 });
    expect(r.result).toEqual(json(await local.reset({ seed: 9 })));
    expect((await c.call({ op: 'state', session: s })).result.seeds).toEqual([2 ** 32 + 9, 2 ** 32 + 10]);
  });

  it('the TypeScript client sends a list of seeds', async () => {
    const remote = await connectVectorEnv(srv.wsUrl, { env: 'Echo-v0', numEnvs: 2 });
    const local = makeVec('Echo-v0', { numEnvs: 2 }) as VectorEnv;
    expect(json(await remote.reset({ seed: [3, 8] }))).toEqual(json(await local.reset({ seed: [3, 8] })));
    await expect(remote.reset({ seed: [3] })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await remote.close();
  });
});

describe('close', () => {
  it('a second close of a session is not an error (pipelined or later)', async () => {
    const s = (await c.call({ op: 'make', env: 'Echo-v0' })).result.session;
    const [a, b] = await Promise.all([c.call({ op: 'close', session: s }), c.call({ op: 'close', session: s })]);
    expect(a.result).toEqual({ closed: true });
    expect(b.result).toEqual({ closed: true, alreadyClosed: true });
    expect((await c.call({ op: 'close', session: s })).result).toEqual({ closed: true, alreadyClosed: true });
    // Any other request on it is still UNKNOWN_SESSION; so is closing a session that never existed.
    expect((await c.call({ op: 'reset', session: s })).error!.code).toBe('UNKNOWN_SESSION');
    expect((await c.call({ op: 'close', session: 'never-made' })).error!.code).toBe('UNKNOWN_SESSION');
  });
});

describe('the state op', () => {
  it('reports episodes, steps, seeds and the RNG facts, in order with the session\'s other requests', async () => {
    const s = (await c.call({ op: 'make', env: 'Echo-v0', numEnvs: 2, kwargs: { episodeLength: 3 } })).result.session;
    const before = await c.call({ op: 'state', session: s });
    expect(before.result).toMatchObject({ session: s, env: 'Echo-v0', numEnvs: 2, autoresetMode: 'next-step', hasReset: false, needsReset: false, resets: 0, steps: 0, episode: [-1, -1], ended: [false, false], seeds: [null, null] });
    expect(before.result.rng).toEqual({ algorithm: 'sfc32', seedModulus: 2 ** 32, perEnvSeed: 'seed + i' });
    expect(before.result.spec).toMatchObject({ id: 'Echo-v0', deterministic: true, maxEpisodeSteps: 1000 });
    // Pipelined: the state comes after the steps sent before it.
    const replies = await Promise.all([
      c.call({ op: 'reset', session: s, seed: 40 }),
      c.call({ op: 'step', session: s, actions: [0, 0] }),
      c.call({ op: 'step', session: s, actions: [0, 0] }),
      c.call({ op: 'state', session: s }),
      c.call({ op: 'step', session: s, actions: [0, 0] }),
      c.call({ op: 'state', session: s }),
      c.call({ op: 'step', session: s, actions: [0, 0] }),
      c.call({ op: 'state', session: s }),
    ]);
    expect(replies[3]!.result).toMatchObject({ hasReset: true, resets: 1, steps: 2, episode: [0, 0], episodeSteps: [2, 2], ended: [false, false], seeds: [40, 41] });
    expect(replies[5]!.result).toMatchObject({ steps: 3, episode: [0, 0], episodeSteps: [3, 3], ended: [true, true] });
    expect(replies[7]!.result).toMatchObject({ steps: 4, episode: [1, 1], episodeSteps: [0, 0], ended: [false, false], seeds: [null, null] });
    expect((await c.call({ op: 'state', session: 'nope' })).error!.code).toBe('UNKNOWN_SESSION');
  });

  it('counts same-step autoresets as new episodes, and is on the TypeScript client', async () => {
    const remote = await connectVectorEnv(srv.wsUrl, { env: 'Echo-v0', numEnvs: 1, autoresetMode: 'same-step', kwargs: { episodeLength: 2 } });
    await remote.reset({ seed: 1 });
    await remote.step([0]);
    await remote.step([0]);
    expect(await remote.state()).toMatchObject({ episode: [1], episodeSteps: [0], ended: [false], steps: 2, autoresetMode: 'same-step' });
    await remote.close();
  });
});
