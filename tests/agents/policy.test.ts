import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { makeVec } from '../../env/index.ts';
import { loadDialogModel, type DialogModel } from '../../env/dialog-model.ts';
import { RolloutCollector } from '../../agents/rl/rollout.ts';
import { LmPolicy, actionLogProbs, sequenceBatch } from '../../agents/rl/policy.ts';
import { buildToyModel, toyKwargs } from './toy.ts';

let model: DialogModel;
let dir: string;
beforeAll(async () => {
  dir = await buildToyModel();
  model = await loadDialogModel(dir);
});

describe('ppo-kl policy and rollouts', () => {
  it('the training forward pass gives the log-probabilities the KV-cached rollout sampled with (all, frozen and partly frozen blocks)', async () => {
    const envs = makeVec('TeacherStudent-v0', { numEnvs: 6, kwargs: toyKwargs(dir), autoresetMode: 'same-step' });
    const collector = new RolloutCollector(envs, model.lm, model.tokenizer, { seed: 4, actionMode: 'token' });
    for (const trainLayers of ['all', 0, 1] as const) {
      const policy = new LmPolicy(model.lm.clone(), { trainLayers });
      tf.tidy(() => { for (const v of policy.lm.variables) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.05, 'float32', 3))); });
      const { episodes } = await collector.collect(policy, { minEpisodes: 6 });
      const batch = sequenceBatch(episodes, model.tokenizer.special.pad);
      const trunk = policy.frozenTrunk(batch);
      expect(trunk === null).toBe(trainLayers === 'all');
      const lp = tf.tidy(() => Array.from(policy.evaluate(batch, trunk).logp.dataSync()));
      const sampled = episodes.flatMap(e => e.logp);
      expect(lp).toHaveLength(sampled.length);
      lp.forEach((x, i) => expect(Math.abs(x - sampled[i]!)).toBeLessThan(1e-4));
      // The perturbed policy is not the base: KL to it is positive and the base log-probs differ.
      expect(episodes.some(e => e.kl.some(k => k > 1e-3))).toBe(true);
      policy.dispose();
    }
    await collector.close();
  });

  it('records aligned episodes: actions in the transcript, rewards on turn ends, one exchange per turn end', async () => {
    const envs = makeVec('TeacherStudent-v0', { numEnvs: 4, kwargs: toyKwargs(dir), autoresetMode: 'same-step' });
    const collector = new RolloutCollector(envs, model.lm, model.tokenizer, { seed: 9, actionMode: 'token' });
    const policy = new LmPolicy(model.lm.clone(), { trainLayers: 'all' });
    const { episodes, stats } = await collector.collect(policy, { perEnv: 2 });
    expect(episodes).toHaveLength(8);
    expect(stats.agentSteps).toBeGreaterThan(0);
    for (const e of episodes) {
      const n = e.actions.length;
      for (const arr of [e.pos, e.logp, e.baseLogp, e.kl, e.rewards, e.turnEnds, e.timeLeft]) expect(arr).toHaveLength(n);
      e.pos.forEach((p, t) => expect(e.tokens[p]).toBe(e.actions[t]));
      e.rewards.forEach((r, t) => { if (r !== 0) expect(e.turnEnds[t]).toBe(true); });
      expect(e.exchanges).toHaveLength(e.turnEnds.filter(Boolean).length);
      expect(e.return).toBeCloseTo(e.rewards.reduce((a, b) => a + b, 0), 12);
      // The policy is the base model itself: no KL.
      e.kl.forEach(k => expect(k).toBeLessThan(1e-5));
      expect(e.truncated || e.terminated).toBe(true);
    }
    policy.dispose();
    await collector.close();
  });

  it('the action log-probability / entropy op has the gradient of its definition', () => {
    const [N, d, V] = [3, 4, 7];
    const h0 = Array.from({ length: N * d }, (_, i) => Math.sin(i + 1));
    const E = tf.tensor2d(Array.from({ length: V * d }, (_, i) => Math.cos(3 * i)), [V, d]);
    const actions = new Int32Array([1, 5, 0]);
    const w = tf.tensor2d([[0.7, -1.1], [0.2, 0.5], [-0.4, 0.9]]);
    const f = (h: tf.Tensor) => tf.sum(tf.mul(actionLogProbs(h as tf.Tensor2D, E, actions, false), w));
    const reference = (h: tf.Tensor) => {
      const lp = tf.logSoftmax(tf.matMul(h as tf.Tensor2D, E, false, true));
      const taken = tf.sum(tf.mul(lp, tf.oneHot(tf.tensor1d(actions, 'int32'), V)), 1);
      const ent = tf.neg(tf.sum(tf.mul(tf.exp(lp), lp), 1));
      return tf.sum(tf.mul(tf.stack([taken, ent], 1), w));
    };
    const h = tf.tensor2d(h0, [N, d]);
    const g1 = tf.grad(f)(h).dataSync(), g2 = tf.grad(reference)(h).dataSync();
    expect(f(h).dataSync()[0]).toBeCloseTo(reference(h).dataSync()[0]!, 4);
    g1.forEach((x, i) => expect(x).toBeCloseTo(g2[i]!, 4));
    tf.dispose([E, w, h]);
  });
});
