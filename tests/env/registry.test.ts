import { afterEach, describe, expect, it } from 'vitest';
import {
  Box, ColloquyError, Discrete, EnvCheckError, checkEnv, getSpec, listSpecs, make, makeVec, register,
  registeredIds, suggest, unregister, SyncVectorEnv, type Env, type EnvSpec, type ResetArgs,
} from '../../env/index.ts';

async function code(p: Promise<unknown>): Promise<string> {
  try { await p; return 'no error'; } catch (e) { return e instanceof ColloquyError ? e.code : String(e); }
}

describe('registry', () => {
  afterEach(() => { unregister('Broken-v0'); unregister('Flaky-v0'); });

  it('lists Echo-v0 with its spec and default kwargs', () => {
    expect(registeredIds()).toContain('Echo-v0');
    const spec = getSpec('Echo-v0');
    expect(spec).toMatchObject({ id: 'Echo-v0', maxEpisodeSteps: 1000, deterministic: true, kwargs: { obsSize: 8, nActions: 16, episodeLength: 32 } });
    expect(listSpecs().map(s => s.id)).toContain('Echo-v0');
  });

  it('suggests the nearest id', async () => {
    expect(suggest('Ech-v0')).toBe('Echo-v0');
    expect(suggest('Echo-v7')).toBe('Echo-v0');
    expect(suggest('TotallyDifferentThing-v0')).toBeNull();
    try { make('Ecoh-v0'); expect.unreachable(); } catch (e) {
      expect((e as ColloquyError).code).toBe('UNKNOWN_ENV');
      expect((e as Error).message).toMatch(/did you mean 'Echo-v0'/);
    }
  });

  it('validates kwargs against the schema', () => {
    expect(() => make('Echo-v0', { obsSize: 2 })).toThrow(/obsSize/);
    expect(() => make('Echo-v0', { nope: 1 })).toThrow(/nope/);
    expect(() => make('Echo-v0', [] as never)).toThrow(/object/);
    expect(make('Echo-v0', { obsSize: 5 }).observationSpace.toJSON()).toMatchObject({ shape: [5] });
    expect(() => register({ id: 'bad id', entryPoint: () => make('Echo-v0'), description: '' })).toThrow(/Name-vN/);
  });

  it('make stacks order enforcing, action checking and the time limit', async () => {
    const env = make('Echo-v0', { episodeLength: 5000 });
    expect(await code(env.step(0))).toBe('RESET_NEEDED');
    await env.reset({ seed: 1 });
    expect(await code(env.step(99))).toBe('INVALID_ACTION');
    expect(await code(env.step('x' as never))).toBe('INVALID_ACTION');
    let last;
    for (let i = 0; i < 1000; i++) last = await env.step(0);
    expect(last!.truncated).toBe(true);
    expect(last!.terminated).toBe(false);
    expect(last!.info.truncatedBy).toBe('time-limit');
    expect(await code(env.step(0))).toBe('RESET_NEEDED');
    await env.close();
    await env.close();
    expect(await code(env.reset())).toBe('CLOSED');
  });

  it('terminated is the env\'s own end, distinct from truncation', async () => {
    const env = make('Echo-v0', { episodeLength: 3 });
    await env.reset({ seed: 2 });
    const r = [await env.step(0), await env.step(0), await env.step(0)];
    expect(r.map(x => x.terminated)).toEqual([false, false, true]);
    expect(r.every(x => !x.truncated)).toBe(true);
  });

  it('checkEnv passes for every registered env', async () => {
    for (const id of registeredIds()) {
      const report = await checkEnv(() => make(id), { seed: 7 });
      expect(report.checks).toContain('determinism');
      expect(report.steps).toBeGreaterThan(0);
    }
  });

  it('checkEnv catches an env that ignores its seed and one with a bad observation', async () => {
    class Flaky implements Env<number[], number> {
      observationSpace = new Box(0, 1, [1]);
      actionSpace = new Discrete(2);
      spec: EnvSpec | null = null;
      // float32 values (the Box is float32), so that only the ignored seed is wrong.
      async reset(_a?: ResetArgs) { return { observation: [Math.fround(Math.random())], info: {} }; }
      async step() { return { observation: [Math.fround(Math.random())], reward: 0, terminated: false, truncated: false, info: {} }; }
      async close() {}
    }
    register({ id: 'Flaky-v0', entryPoint: () => new Flaky(), maxEpisodeSteps: 5, description: 'ignores seeds' });
    await expect(checkEnv(() => make('Flaky-v0'))).rejects.toThrow(/same seed/);
    class Broken extends Flaky {
      override async step() { return { observation: [2], reward: Number.NaN, terminated: false, truncated: false, info: {} }; }
    }
    register({ id: 'Broken-v0', entryPoint: () => new Broken(), maxEpisodeSteps: 5, description: 'bad outputs' });
    // Unwrapped, so the checker itself (not the passive wrapper) must see the bad outputs.
    const err = await checkEnv(() => new Broken(), { determinism: false }).catch(e => e);
    expect(err).toBeInstanceOf(EnvCheckError);
    const msgs = (err as EnvCheckError).failures.join('\n');
    expect(msgs).toMatch(/reward is not a finite number/);
    expect(msgs).toMatch(/outside observationSpace/);
    expect(msgs).toMatch(/step\(\) before reset\(\) did not throw/);
    // Wrapped by make: the passive checker turns the breach into an INTERNAL error.
    const env = make('Broken-v0');
    await env.reset({ seed: 1 });
    expect(await code(env.step(0))).toBe('INTERNAL');
  });
});

describe('makeVec', () => {
  it('seeds sub-env i with seed + i and matches single envs', async () => {
    const v = makeVec('Echo-v0', { numEnvs: 3 });
    const r = await v.reset({ seed: 10 });
    for (let i = 0; i < 3; i++) {
      const e = make('Echo-v0');
      expect((await e.reset({ seed: 10 + i })).observation).toEqual(r.observations[i]);
    }
    expect(r.observations[0]).not.toEqual(r.observations[1]);
  });

  it('next-step autoreset: the step after the end resets and ignores the action', async () => {
    const v = makeVec('Echo-v0', { numEnvs: 2, kwargs: { episodeLength: 2 } });
    await v.reset({ seed: 1 });
    await v.step([0, 0]);
    const end = await v.step([0, 0]);
    expect(end.terminated).toEqual([true, true]);
    const next = await v.step([99, 99] as never);
    expect(next.rewards).toEqual([0, 0]);
    expect(next.terminated).toEqual([false, false]);
    expect(next.infos.every(i => i.autoreset === true)).toBe(true);
    expect((next.observations[0] as number[])[0]).toBe(0);
    await expect(v.step([99, 0])).rejects.toMatchObject({ code: 'INVALID_ACTION' });
  });

  it('a bad action for one sub-env leaves every sub-env untouched', async () => {
    const three = () => new SyncVectorEnv([0, 1, 2].map(() => make('Echo-v0', { nActions: 4 })), 'same-step');
    const a = three(), b = three();
    await a.reset({ seed: 9 }); await b.reset({ seed: 9 });
    await expect(a.step([1, 2, 7])).rejects.toMatchObject({ code: 'INVALID_ACTION', message: expect.stringMatching(/sub-env 2/) });
    expect(await a.step([1, 2, 3])).toEqual(await b.step([1, 2, 3]));
    // Echo-v0's native vector env keeps the same promise.
    const c = makeVec('Echo-v0', { numEnvs: 3, kwargs: { nActions: 4 }, autoresetMode: 'same-step' });
    await c.reset({ seed: 9 });
    await expect(c.step([1, 2, 7])).rejects.toMatchObject({ code: 'INVALID_ACTION' });
    const d = three();
    await d.reset({ seed: 9 });
    expect(await c.step([1, 2, 3])).toEqual(await d.step([1, 2, 3]));
  });

  it('same-step autoreset returns the reset observation with the final one in info', async () => {
    const v = makeVec('Echo-v0', { numEnvs: 1, kwargs: { episodeLength: 2 }, autoresetMode: 'same-step' });
    await v.reset({ seed: 1 });
    await v.step([0]);
    const end = await v.step([0]);
    expect(end.terminated).toEqual([true]);
    expect((end.observations[0] as number[])[0]).toBe(0);
    expect((end.infos[0]!.finalObservation as number[])[0]).toBe(1);
    const next = await v.step([0]);
    expect(next.terminated).toEqual([false]);
    expect((next.observations[0] as number[])[0]).toBe(0.5);
  });

  it('disabled autoreset needs a masked reset', async () => {
    const v = makeVec('Echo-v0', { numEnvs: 2, kwargs: { episodeLength: 1 }, autoresetMode: 'disabled' });
    await expect(v.step([0, 0])).rejects.toMatchObject({ code: 'RESET_NEEDED' });
    await v.reset({ seed: 3 });
    await v.step([0, 0]);
    await expect(v.step([0, 0])).rejects.toMatchObject({ code: 'RESET_NEEDED' });
    const rr = await v.reset({ options: { resetMask: [true, true] } });
    expect(rr.observations).toHaveLength(2);
    expect((await v.step([0, 0])).terminated).toEqual([true, true]);
    await expect(v.reset({ options: { resetMask: [true] } })).rejects.toMatchObject({ code: 'BAD_CONFIG' });
  });

  it('rejects bad sizes and modes', () => {
    expect(() => makeVec('Echo-v0', { numEnvs: 0 })).toThrow(/numEnvs/);
    expect(() => makeVec('Echo-v0', { autoresetMode: 'sometimes' as never })).toThrow(/autoresetMode/);
  });
});
