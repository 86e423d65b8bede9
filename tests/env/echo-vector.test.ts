/** EchoVectorEnv (Echo-v0's native vector form) gives exactly what N wrapped EchoEnvs in a SyncVectorEnv give. */
import { describe, expect, it } from 'vitest';
import { EchoEnv, EchoVectorEnv, type EchoKwargs } from '../../env/echo.ts';
import { ColloquyError, Rng, SyncVectorEnv, getSpec, makeVec, wrapEnv, type AutoresetMode, type VectorEnv } from '../../env/index.ts';

function reference(n: number, kw: EchoKwargs, mode: AutoresetMode): VectorEnv<number[], number> {
  const spec = { ...getSpec('Echo-v0'), kwargs: kw };
  return new SyncVectorEnv(Array.from({ length: n }, () => wrapEnv(new EchoEnv(kw), spec)), mode) as VectorEnv<number[], number>;
}

async function run(env: VectorEnv<number[], number>, steps: number): Promise<string[]> {
  const rng = new Rng(5);
  const out = [JSON.stringify(await env.reset({ seed: 100 }))];
  const ended = new Array<boolean>(env.numEnvs).fill(false);
  for (let t = 0; t < steps; t++) {
    if (t === 700) out.push(JSON.stringify(await env.reset({ options: { resetMask: ended.map((_, i) => i % 2 === 0) } })));
    if (t === 900) out.push(JSON.stringify(await env.reset()));
    if (env.autoresetMode === 'disabled' && ended.some(Boolean)) {
      out.push(JSON.stringify(await env.reset({ options: { resetMask: ended.slice() } })));
      ended.fill(false);
    }
    const r = await env.step(Array.from({ length: env.numEnvs }, () => rng.int(16)));
    r.terminated.forEach((x, i) => { ended[i] = x || r.truncated[i]!; });
    out.push(JSON.stringify(r));
  }
  return out;
}

const code = (p: Promise<unknown>) => p.then(() => 'ok', e => (e instanceof ColloquyError ? e.code : String(e)));

describe('EchoVectorEnv', () => {
  it('is what makeVec builds for Echo-v0', () => {
    expect(makeVec('Echo-v0', { numEnvs: 2 })).toBeInstanceOf(EchoVectorEnv);
  });

  it.each<AutoresetMode>(['next-step', 'same-step', 'disabled'])('matches wrapped EchoEnvs in a SyncVectorEnv (%s), time limit included', async mode => {
    // Episodes of 1,500 steps are cut by the 1,000-step time limit; episodes of 7 terminate.
    for (const kw of [{ obsSize: 5, nActions: 16, episodeLength: 7 }, { obsSize: 3, nActions: 16, episodeLength: 1500 }]) {
      const a = await run(new EchoVectorEnv(3, kw, mode), 2000);
      const b = await run(reference(3, kw, mode), 2000);
      expect(a.length).toBe(b.length);
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) expect(a[i]).toBe(b[i]);
      if (kw.episodeLength > 1000) expect(b.some(x => x.includes('"truncatedBy":"time-limit"'))).toBe(true);
    }
  });

  it('raises the same errors', async () => {
    const kw = { obsSize: 3, nActions: 4, episodeLength: 1 };
    for (const env of [new EchoVectorEnv(2, kw, 'disabled'), reference(2, kw, 'disabled')]) {
      expect(await code(env.step([0, 0]))).toBe('RESET_NEEDED');
      expect(await code(env.reset({ options: { resetMask: [true, false] } }))).toBe('RESET_NEEDED');
      expect(await code(env.reset({ options: { resetMask: [true] } }))).toBe('BAD_CONFIG');
      await env.reset({ seed: 1 });
      expect(await code(env.step([0]))).toBe('INVALID_ACTION');
      expect(await code(env.step([0, 9]))).toBe('INVALID_ACTION');
      await env.reset({ seed: 1 });
      await env.step([0, 0]);
      expect(await code(env.step([0, 0]))).toBe('RESET_NEEDED');
      await env.close();
      await env.close();
      expect(await code(env.reset())).toBe('CLOSED');
    }
  });
});
