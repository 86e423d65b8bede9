import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { makeVec } from '../../env/index.ts';
import { loadDialogModel, type DialogModel } from '../../env/dialog-model.ts';
import { resolveKlBudgetConfig, type KlBudgetConfig } from '../../configs/agents/schema.ts';
import { rampedBudget, trainKlBudget, loadKlBudgetPolicy } from '../../agents/rl/kl-budget.ts';
import { BudgetPolicy, type BudgetAux } from '../../agents/rl/budget-policy.ts';
import { RolloutCollector } from '../../agents/rl/rollout.ts';
import type { Metrics } from '../../agents/rl/run.ts';
import { buildToyModel, toyKwargs } from './toy.ts';

let model: DialogModel;
let dir: string;
const out = path.join(os.tmpdir(), `colloquy-kl-budget-test-${process.pid}`);

beforeAll(async () => {
  dir = await buildToyModel();
  model = await loadDialogModel(dir);
  rmSync(out, { recursive: true, force: true });
});
afterAll(() => { rmSync(out, { recursive: true, force: true }); });

function config(over: Record<string, unknown>): KlBudgetConfig {
  return resolveKlBudgetConfig({
    numEnvs: 16, steps: 0, updates: 18, seed: 5, env: { kwargs: toyKwargs(dir) },
    budget: 10, budgetRampFraction: 0.15, lambda: 0.9, learningRateActor: 1e-2, maxGradNorm: 1, epochs: 4, minibatchSize: 256, samples: 1, samplesEvery: 8, checkpointEvery: 8, ...over,
  });
}

const avg = (ms: Metrics[], k: string) => ms.reduce((s, m) => s + m[k]!, 0) / ms.length;

describe('kl-budget', () => {
  it('never spends more than the episode budget, even with an aggressive proposal and target', async () => {
    const envs = makeVec('TeacherStudent-v0', { numEnvs: 8, kwargs: toyKwargs(dir), autoresetMode: 'same-step' });
    const policy = new BudgetPolicy(model.lm, { criticHidden: 8, seed: 1 });
    // Large random offsets and a target logit of +8: the proposal wants to spend everything now.
    tf.tidy(() => {
      policy.W.assign(tf.randomNormal(policy.W.shape, 0, 3, 'float32', 7));
      policy.b.assign(tf.concat([tf.randomNormal([policy.V], 0, 3, 'float32', 8), tf.tensor1d([8])]));
    });
    policy.budget = 2.5;
    const collector = new RolloutCollector<BudgetAux>(envs, model.lm, model.tokenizer, { seed: 2, actionMode: 'token' });
    const { episodes } = await collector.collect(policy, { minEpisodes: 16 });
    for (const e of episodes) {
      const spent = e.kl.reduce((a, b) => a + b, 0);
      expect(spent).toBeLessThanOrEqual(e.state.budget! + 1e-9);
      expect(e.state.spent).toBeCloseTo(spent, 9);
      // The mixture spends most of it (the target is close to the whole budget left).
      expect(spent).toBeGreaterThan(0.5 * e.state.budget!);
      e.aux.forEach((a, t) => expect(e.kl[t]!).toBeLessThanOrEqual(a.k + 1e-9));
    }
    await collector.close();
    policy.dispose();
  });

  it('ramps the budget over the run', () => {
    const c = { budget: 10, budgetRampFraction: 0.5 };
    expect(rampedBudget(c, 0)).toBe(0);
    expect(rampedBudget(c, 0.25)).toBeCloseTo(5, 12);
    expect(rampedBudget(c, 0.9)).toBe(10);
    expect(rampedBudget({ budget: 10, budgetRampFraction: 0 }, 0)).toBe(10);
  });

  // One 18-update run on the toy task, read by the tests below; they name what failed.
  describe('an 18-update run on the toy task', () => {
    const c = () => config({});
    let h: Metrics[];
    let checkpoint: string;
    const tensors: number[] = [];
    let last: Record<string, number>;
    beforeAll(async () => {
      const envs = makeVec('TeacherStudent-v0', { numEnvs: c().numEnvs, kwargs: c().env.kwargs, autoresetMode: 'same-step' });
      try {
        const res = await trainKlBudget(c(), { envs, base: model.lm, baseDir: dir, tokenizer: model.tokenizer, out, progressBar: false, log: () => {}, onUpdate: () => tensors.push(tf.memory().numTensors) });
        h = res.history;
        checkpoint = res.checkpoint;
      } finally {
        await envs.close();
      }
      // Read now: the resume test below appends to it.
      last = JSON.parse(readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').pop()!) as Record<string, number>;
    });

    it('learns the toy task: the reply reward rises', () => {
      expect(avg(h.slice(-3), 'env/reply_reward_mean')).toBeGreaterThan(avg(h.slice(0, 2), 'env/reply_reward_mean') + 0.07);
    });

    it('stays within the budget in every update', () => {
      h.forEach((m, i) => expect(m['objective/kl_overspend_max']!, `update ${i + 1}`).toBeLessThanOrEqual(1e-9));
    });

    it('ramps the budget: the first update\'s episodes got less than the full budget, the last the full one', () => {
      expect(h[0]!['objective/kl_budget']).toBeLessThan(10);
      expect(h[h.length - 1]!['objective/kl_budget']).toBe(10);
    });

    it('leaks no tensors per update', () => {
      expect(new Set(tensors.slice(1)).size).toBe(1);
    });

    it('logs the TRL/CleanRL metrics to metrics.jsonl, finite', () => {
      for (const key of ['objective/kl', 'objective/non_score_reward', 'env/reward_mean', 'policy/approxkl', 'policy/clipfrac', 'policy/entropy', 'charts/sps', 'env/empty_teacher_turn_share']) {
        expect(Number.isFinite(last[key]), key).toBe(true);
      }
    });

    it('saves a checkpoint with the trained budget head', async () => {
      const loaded = await loadKlBudgetPolicy(checkpoint, model.lm, c());
      expect(Math.abs(loaded.W.dataSync()[0]!) + Math.abs(loaded.b.dataSync()[0]!)).toBeGreaterThan(0);
      loaded.dispose();
    });

    it('resumes from the checkpoint, continuing the update count at the full budget', async () => {
      const envs2 = makeVec('TeacherStudent-v0', { numEnvs: c().numEnvs, kwargs: c().env.kwargs, autoresetMode: 'same-step' });
      try {
        const more = await trainKlBudget(config({ updates: 19 }), { envs: envs2, base: model.lm, baseDir: dir, tokenizer: model.tokenizer, out, resume: true, progressBar: false, log: () => {} });
        expect(more.updates).toBe(19);
        expect(more.history[0]!['objective/kl_budget']).toBe(10);
      } finally {
        await envs2.close();
      }
    });
  });

  it('rejects the utterance action mode', () => {
    expect(() => resolveKlBudgetConfig({ env: { kwargs: { actionMode: 'utterance' } } })).toThrow(/token/);
  });
});
