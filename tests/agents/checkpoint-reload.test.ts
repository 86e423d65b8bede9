/**
 * `eval --agent checkpoint:RUN` runs the policy that was trained (issue 12, item 3). For each
 * algorithm (ppo-kl, kl-budget) and KL reference (the base model; the conservative reference of an
 * imitator ensemble, renormalised for kl-budget), a run trains two updates; the checkpoint of
 * update 1 is kept, whose policy sampled update 2's rollout (recorded with the behaviour
 * log-probabilities in samples.jsonl); the evaluation agent loaded from the kept checkpoint, driven
 * over the same dialogs token by token, gives the same log-probability to every agent token. kl-budget trains with a non-default target horizon (null: the tokens left), sampled
 * budget accounting and a budget still ramping, which the checkpoint must carry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { makeVec } from '../../env/index.ts';
import { loadDialogModel, type DialogModel } from '../../env/dialog-model.ts';
import { resolveAgentConfig, type AgentConfig } from '../../configs/agents/schema.ts';
import { trainPpoKl } from '../../agents/rl/ppo-kl.ts';
import { trainKlBudget } from '../../agents/rl/kl-budget.ts';
import type { TrainContext } from '../../agents/rl/run.ts';
import type { ReferenceSpec } from '../../agents/rl/policy-file.ts';
import { loadCheckpoint, saveCheckpoint } from '../../models/checkpoint.ts';
import { ENSEMBLE_FORMAT, type EnsembleFile } from '../../agents/imitation/imitators.ts';
import { ConservativeReference } from '../../agents/imitation/reference.ts';
import { loadAgent } from '../../agents/eval/load.ts';
import { SessionPool } from '../../agents/eval/agents.ts';
import type { RolloutPolicyAgent } from '../../agents/eval/rl-agent.ts';
import type { Rng } from '../../core/rng.ts';
import type { TransformerLM } from '../../models/lm.ts';
import { run as trainCli } from '../../cli/train.ts';
import { buildToyModel, toyKwargs } from './toy.ts';

const root = path.join(os.tmpdir(), `colloquy-reload-${process.pid}`);
let dir: string;
let model: DialogModel;
let members: TransformerLM[];
const ensDir = path.join(root, 'ensemble');

beforeAll(async () => {
  dir = await buildToyModel();
  model = await loadDialogModel(dir);
  rmSync(root, { recursive: true, force: true });
  // A two-member imitator ensemble: the toy model and a copy with noise on every weight.
  const tok = (await loadCheckpoint(dir)).tokenizer;
  cpSync(dir, path.join(ensDir, 'member-0'), { recursive: true });
  const other = (await loadCheckpoint(dir)).model;
  tf.tidy(() => other.variables.forEach((v, i) => v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.3, 'float32', 100 + i)))));
  await saveCheckpoint(other, path.join(ensDir, 'member-1'), { tokenizer: tok });
  other.dispose();
  const file: EnsembleFile = {
    format: ENSEMBLE_FORMAT, version: 1, settings: { alpha: 0.01, posteriorScale: 1 }, weights: [0.5, 0.5], plausible: [0, 1], single: 0,
    trainTranscripts: 0, heldOutTranscripts: 0,
    members: [0, 1].map(k => ({ dir: `member-${k}`, seed: k, bootstrap: k > 0, heldOutNll: 1, steps: 0, seconds: 0 })),
  };
  writeFileSync(path.join(ensDir, 'ensemble.json'), JSON.stringify(file));
  members = await Promise.all([0, 1].map(async k => (await loadCheckpoint(path.join(ensDir, `member-${k}`))).model));
});
afterAll(() => {
  for (const m of members ?? []) m.dispose();
  rmSync(root, { recursive: true, force: true });
});

function config(algo: 'ppo-kl' | 'kl-budget', updates: number): AgentConfig {
  // Every finished dialog of an update goes to samples.jsonl.
  const run = { numEnvs: 4, episodesPerUpdate: 8, steps: 0, updates, seed: 21, env: { kwargs: toyKwargs(dir) }, samples: 100, samplesEvery: 1, checkpointEvery: 1 };
  return algo === 'ppo-kl'
    ? resolveAgentConfig({ ...run, algo, learningRate: 3e-3, epochs: 2, minibatches: 2, kl: { beta: 0.1, estimator: 'k1' } })
    // A large learning rate, so that update 1 moves the head far from the base; the ramp still climbing at update 2.
    : resolveAgentConfig({ ...run, algo, learningRateActor: 0.05, epochs: 2, minibatchSize: 64, criticHidden: 8, budget: 8, budgetRampFraction: 0.9, targetHorizon: null, budgetAccounting: 'sampled' });
}

async function train(c: AgentConfig, out: string, ref: { reference?: ConservativeReference; referenceSpec?: ReferenceSpec }, onUpdate: () => void): Promise<void> {
  const envs = makeVec('TeacherStudent-v0', { numEnvs: c.numEnvs, kwargs: c.env.kwargs, autoresetMode: 'same-step' });
  const ctx: TrainContext = { envs, base: model.lm, baseDir: dir, tokenizer: model.tokenizer, out, progressBar: false, log: () => {}, onUpdate, ...ref };
  try {
    if (c.algo === 'ppo-kl') await trainPpoKl(c, ctx);
    else await trainKlBudget(c, ctx);
  } finally {
    await envs.close();
  }
}

interface Sample { update: number; tokens: number[]; pos: number[]; logp: number[]; startedAt: number }

/** A random stream that draws the given token (the dialog is replayed, not sampled). */
const drawing = (action: number) => ({ categorical: () => action }) as unknown as Rng;

const cases: { algo: 'ppo-kl' | 'kl-budget'; reference: 'base' | 'conservative' }[] = [
  { algo: 'ppo-kl', reference: 'base' }, { algo: 'ppo-kl', reference: 'conservative' },
  { algo: 'kl-budget', reference: 'base' }, { algo: 'kl-budget', reference: 'conservative' },
];

describe('eval checkpoint:RUN acts as the policy did in training', () => {
  for (const { algo, reference } of cases) {
    it(`${algo} against the ${reference} reference`, async () => {
      const out = path.join(root, `${algo}-${reference}`), kept = path.join(root, `${algo}-${reference}-update1`);
      mkdirSync(root, { recursive: true });
      const normalise = algo === 'kl-budget';
      const cons = new ConservativeReference(members, [0, 1], undefined, { normalise });
      const ref = reference === 'base' ? {} : { reference: cons, referenceSpec: { kind: 'conservative', ensemble: ensDir, members: [0, 1], normalise, name: cons.name } as ReferenceSpec };
      // Keep the run as it is when update 2 has run (its checkpoint is still update 1's, whose policy sampled update 2's rollout).
      let updates = 0;
      await train(config(algo, 2), out, ref, () => { if (++updates === 2) cpSync(out, kept, { recursive: true }); });
      // The dialogs update 2's rollout started (those carried over from update 1 began under the older policy).
      const samples = readFileSync(path.join(out, 'samples.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l) as Sample).filter(s => s.update === 2 && s.startedAt === 1);
      expect(samples.length).toBeGreaterThan(0);

      const loaded = await loadAgent(`checkpoint:${kept}`, { baseDir: path.join(root, 'nowhere'), tokenizer: model.tokenizer, maxTokens: 48 });
      const agent = loaded.agent as RolloutPolicyAgent;
      expect((agent.base as { name?: string }).name ?? 'base').toBe(reference === 'base' ? 'base' : cons.name);
      const pool = new SessionPool(1);
      let worst = 0, n = 0, moved = 0;
      try {
        for (const s of samples) {
          agent.begin(0);
          pool.resetRow(0);
          for (let t = 0; t < s.pos.length; t++) {
            const a = s.tokens[s.pos[t]!]!;
            const [d] = await agent.act([0], [s.tokens.slice(0, s.pos[t])], [drawing(a)], pool);
            expect(d!.action).toBe(a);
            worst = Math.max(worst, Math.abs(d!.logProbs[a]! - s.logp[t]!));
            // How far the trained policy is from the base model there (the check is not vacuous).
            moved = Math.max(moved, Math.abs(d!.logProbs[a]! - pool.logProbs(model.lm, [0], [s.tokens.slice(0, s.pos[t])])[0]![a]!));
            n++;
          }
        }
      } finally {
        pool.dispose();
        loaded.dispose();
      }
      expect(n).toBeGreaterThan(10);
      expect(worst).toBeLessThan(2e-4);
      expect(moved).toBeGreaterThan(0.05);
    });
  }
});

describe('colloquy train --reference', () => {
  it('trains kl-budget against the conservative reference of an ensemble folder, which eval checkpoint:RUN rebuilds', async () => {
    const out = path.join(root, 'cli-conservative');
    const log = console.log;
    console.log = () => {};
    try {
      expect(await trainCli(['--algo', 'kl-budget', '--local', '--model', dir, '--kwargs', JSON.stringify(toyKwargs(dir)), '--reference', `conservative:${ensDir}`,
        '--updates', '1', '--steps', '0', '--num-envs', '2', '--set', 'criticHidden=8', '--out', out, '--no-progress'])).toBe(0);
    } finally { console.log = log; }
    const agentFile = JSON.parse(readFileSync(path.join(out, 'checkpoint', 'agent.json'), 'utf8')) as { reference: ReferenceSpec };
    expect(agentFile.reference).toMatchObject({ kind: 'conservative', ensemble: ensDir, members: [0, 1], normalise: true });
    const loaded = await loadAgent(`checkpoint:${out}`, { baseDir: path.join(root, 'nowhere'), tokenizer: model.tokenizer, maxTokens: 48 });
    expect(((loaded.agent as RolloutPolicyAgent).base as { name?: string }).name).toBe(agentFile.reference.name);
    loaded.dispose();
    console.log = () => {};
    try {
      await expect(trainCli(['--algo', 'kl-budget', '--local', '--model', dir, '--reference', 'imitator', '--out', path.join(root, 'cli-bad')]))
        .rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(/--reference imitator: expected base, model:DIR or conservative:DIR/) });
    } finally { console.log = log; }
  });
});
