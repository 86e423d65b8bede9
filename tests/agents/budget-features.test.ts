import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { makeVec } from '../../env/index.ts';
import { loadDialogModel, type DialogModel } from '../../env/dialog-model.ts';
import { BudgetPolicy, type BudgetAux } from '../../agents/rl/budget-policy.ts';
import { RolloutCollector, type Episode } from '../../agents/rl/rollout.ts';
import { windowStart } from '../../models/lm.ts';
import { buildToyModel, toyKwargs } from './toy.ts';

let model: DialogModel;
let dir: string;
beforeAll(async () => {
  dir = await buildToyModel();
  model = await loadDialogModel(dir);
});

/** Episodes of a kl-budget rollout, and how many sessions the base model started for it. */
async function rollout(shared: boolean): Promise<{ episodes: Episode<BudgetAux>[]; sessions: number }> {
  const lm = model.lm;
  const policy = new BudgetPolicy(lm, { criticHidden: 8, seed: 1 });
  tf.tidy(() => { policy.W.assign(tf.randomNormal(policy.W.shape, 0, 0.5, 'float32', 7)); });
  policy.budget = 3;
  let sessions = 0;
  const start = lm.startSession.bind(lm);
  lm.startSession = prefixes => { sessions++; return start(prefixes); };
  const envs = makeVec('TeacherStudent-v0', { numEnvs: 4, kwargs: toyKwargs(dir), autoresetMode: 'same-step' });
  const collector = new RolloutCollector<BudgetAux>(envs, lm, model.tokenizer, { seed: 3, actionMode: 'token', ...(shared ? { reference: policy.baseReference() } : {}) });
  try {
    const first = await collector.collect(policy, { minEpisodes: 4 });
    const second = await collector.collect(policy, { minEpisodes: 2 });
    return { episodes: [...first.episodes, ...second.episodes], sessions };
  } finally {
    await collector.close();
    policy.dispose();
    delete (lm as { startSession?: unknown }).startSession;
  }
}

describe('kl-budget features', () => {
  it("are the base model's final hidden states at each state, read from the rollout's base session when shared", async () => {
    const own = await rollout(false), shared = await rollout(true);
    // The rollout's base session and the policy's own, one start each per rollout vs. one in all.
    expect(own.sessions).toBeGreaterThanOrEqual(3);
    expect(shared.sessions).toBe(1);
    // Same seeds, same features (to rounding: the policy's own session is rebuilt by a full pass at
    // each rollout's start where the shared one goes on with cached steps): the same trajectories.
    expect(shared.episodes.map(e => e.tokens)).toEqual(own.episodes.map(e => e.tokens));
    shared.episodes.forEach((e, i) => e.aux.forEach((a, t) => {
      const b = own.episodes[i]!.aux[t]!.input;
      a.input.forEach((x, j) => expect(Math.abs(x - b[j]!)).toBeLessThan(1e-5));
    }));
    // Each input starts with the full forward pass's hidden state at the token before the action.
    const lm = model.lm, d = lm.config.dModel, C = lm.config.contextLength;
    let checked = 0;
    for (const e of shared.episodes) {
      e.aux.forEach((a, t) => {
        const ctx = e.tokens.slice(0, e.pos[t]!);
        const win = ctx.slice(windowStart(ctx.length, C));
        const T = win.length;
        const h = tf.tidy(() => Array.from(lm.hidden(Int32Array.from(win), 1, T).dataSync()).slice((T - 1) * d, T * d));
        for (let j = 0; j < d; j++) expect(Math.abs(a.input[j]! - h[j]!)).toBeLessThan(1e-5);
        checked++;
      });
    }
    expect(checked).toBeGreaterThan(20);
  });
});
