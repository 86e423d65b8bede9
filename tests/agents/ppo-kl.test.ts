import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { makeVec } from '../../env/index.ts';
import { loadDialogModel, type DialogModel } from '../../env/dialog-model.ts';
import { resolvePpoKlConfig, type PpoKlConfig } from '../../configs/agents/schema.ts';
import { trainPpoKl, loadPpoKlPolicy } from '../../agents/rl/ppo-kl.ts';
import type { Metrics } from '../../agents/rl/run.ts';
import { buildToyModel, toyKwargs } from './toy.ts';

let model: DialogModel;
let dir: string;
const out = path.join(os.tmpdir(), `colloquy-ppo-kl-test-${process.pid}`);

beforeAll(async () => {
  dir = await buildToyModel();
  model = await loadDialogModel(dir);
  rmSync(out, { recursive: true, force: true });
});
afterAll(() => { rmSync(out, { recursive: true, force: true }); });

function config(over: Record<string, unknown>): PpoKlConfig {
  return resolvePpoKlConfig({
    numEnvs: 16, steps: 0, updates: 20, seed: 3, env: { kwargs: toyKwargs(dir) },
    learningRate: 3e-4, kl: { beta: 0.1, estimator: 'exact' }, samples: 1, samplesEvery: 5, checkpointEvery: 7, ...over,
  });
}

async function train(c: PpoKlConfig, resume = false, onUpdate?: (m: Metrics) => void) {
  const envs = makeVec('TeacherStudent-v0', { numEnvs: c.numEnvs, kwargs: c.env.kwargs, autoresetMode: 'same-step' });
  try {
    return await trainPpoKl(c, { envs, base: model.lm, baseDir: dir, tokenizer: model.tokenizer, out, resume, progressBar: false, log: () => {}, onUpdate });
  } finally {
    await envs.close();
  }
}

const avg = (ms: Metrics[], k: string) => ms.reduce((s, m) => s + m[k]!, 0) / ms.length;

describe('ppo-kl', () => {
  // One 20-update run on the toy task, read by the tests below; they name what failed.
  describe('a 20-update run on the toy task', () => {
    let h: Metrics[];
    const tensors: number[] = [];
    let lines: Record<string, number>[];
    let samples: { update: number; transcript: string }[];
    beforeAll(async () => {
      const res = await train(config({}), false, () => tensors.push(tf.memory().numTensors));
      h = res.history;
      // Read now: the resume test below appends to these files.
      lines = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l) as Record<string, number>);
      samples = readFileSync(path.join(out, 'samples.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l) as { update: number; transcript: string });
    });

    it('runs the 20 updates of its budget', () => {
      expect(h).toHaveLength(20);
    });

    it('learns the toy task: the reply reward rises', () => {
      // 20 updates: the mean reply reward of the last 3 is 0.15-0.18 above that of the first 2 (the
      // margin after 14 updates, ~0.07, was within the spread between float-rounding paths).
      const before = avg(h.slice(0, 2), 'env/reply_reward_mean'), after = avg(h.slice(-3), 'env/reply_reward_mean');
      expect(after).toBeGreaterThan(before + 0.1);
    });

    it('moves the policy away from the base, and the KL penalty is what the reward paid for it', () => {
      expect(h[h.length - 1]!['objective/kl_exact']).toBeGreaterThan(0);
      expect(h[h.length - 1]!['objective/non_score_reward']).toBeCloseTo(-0.1 * h[h.length - 1]!['objective/kl']!, 6);
    });

    it('leaks no tensors per update (the count is flat once the optimizer slots exist, update 2 on)', () => {
      expect(new Set(tensors.slice(1)).size).toBe(1);
    });

    it('logs the TRL/CleanRL metrics to metrics.jsonl, one finite line per update', () => {
      expect(lines).toHaveLength(20);
      for (const key of ['objective/kl', 'objective/non_score_reward', 'env/reward_mean', 'policy/approxkl', 'policy/clipfrac', 'policy/entropy', 'charts/sps',
        'env/empty_teacher_turn_share', 'env/short_teacher_turn_share', 'env/teacher_turn_tokens', 'env/student_turn_tokens']) {
        expect(lines[19]).toHaveProperty([key]);
        expect(Number.isFinite(lines[19]![key]), key).toBe(true);
      }
    });

    it('writes a sample transcript every 5 updates', () => {
      expect(samples.map(s => s.update)).toEqual([5, 10, 15, 20]);
      expect(samples[0]!.transcript.startsWith('A chat.')).toBe(true);
    });

    it('saves an ordinary LM checkpoint plus the value head, holding the trained policy', async () => {
      const ck = path.join(out, 'checkpoint');
      expect(existsSync(path.join(ck, 'model.json'))).toBe(true);
      const saved = await loadPpoKlPolicy(ck);
      const w0 = saved.lm.param('h0.mlp.fc.w').dataSync()[0];
      saved.dispose();
      expect(w0).not.toBe(model.lm.param('h0.mlp.fc.w').dataSync()[0]);
    });

    it('resumes from the checkpoint and continues the update count', async () => {
      const more = await train(config({ updates: 21 }), true);
      expect(more.updates).toBe(21);
      expect(more.history).toHaveLength(1);
      // It continued from the trained policy (not the base: its KL is already > 0 in the first rollout).
      expect(more.history[0]!['objective/kl_exact']).toBeGreaterThan(0.05);
    });

    it('refuses to start a fresh run in a folder that holds one (without resume)', async () => {
      await expect(train(config({ updates: 22 }), false)).rejects.toMatchObject({ code: 'BAD_CONFIG' });
    });
  });

  it('rejects inconsistent configs with a clear message', () => {
    expect(() => resolvePpoKlConfig({ minibatches: 8, numEnvs: 4 })).toThrow(/minibatches/);
    expect(() => resolvePpoKlConfig({ steps: 0, updates: 0 })).toThrow(/budget/);
    expect(() => resolvePpoKlConfig({ steps: 0, updates: 0, minutes: 5 })).toThrow(/minutes only caps wall time/);
    expect(() => resolvePpoKlConfig({ kl: { estimator: 'k2' } })).toThrow(/estimator/);
    expect(() => resolvePpoKlConfig({ lr: 1 })).toThrow(/lr/);
    expect(resolvePpoKlConfig({ numEnvs: 6 }).episodesPerUpdate).toBe(6);
  });
});
