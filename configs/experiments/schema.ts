/**
 * Schema of an experiment config (`configs/experiments/*.json`, read by `colloquy compare`): the
 * "mightn't do" imitation baseline against KL-controlled RL agents on a dialog env. One TypeBox
 * schema is the JSON Schema of the file, the TypeScript type and the logged settings; every field
 * has a one-line description. `resolveExperimentConfig` fills defaults and rejects inconsistent
 * settings with a clear message.
 */
import { Type, type Static } from '@sinclair/typebox';
import { BadConfig } from '../../core/errors.ts';
import { validateConfig, loadConfig } from '../../core/config.ts';

const Overrides = (description: string) => Type.Record(Type.String(), Type.Unknown(), { default: {}, description });

export const ExperimentSchema = Type.Object({
  description: Type.Optional(Type.String()),
  out: Type.String({ default: 'runs/mightnt-vs-kl', description: 'output folder (relative to the project root): models, runs, eval rows, results.json, report.html' }),
  backend: Type.Union(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].map(b => Type.Literal(b)), { default: 'auto', description: 'TensorFlow.js backend (auto: GPU, native, wasm, cpu — the first that works)' }),
  env: Type.Object({
    id: Type.String({ default: 'TeacherStudent-v0', description: 'env id (token mode)' }),
    kwargs: Overrides('env kwargs (maxTokens, maxStudentTokens, prompt, reward, …); `model` is set to the base model'),
  }, { additionalProperties: false, default: {} }),
  base: Type.Object({
    dir: Type.String({ default: 'data/models/base', description: 'the base model: the env\'s student simulator and the source of the shared tokenizer' }),
    config: Type.Optional(Type.String({ description: 'model config file used to pretrain it when the folder holds no checkpoint' })),
    corpus: Type.String({ default: 'mathdial,shipped', description: 'corpora when it must be pretrained' }),
    minutes: Type.Number({ minimum: 0, default: 10, description: 'pretraining budget when it must be pretrained' }),
    preferred: Type.Optional(Type.String({ description: 'a stronger base checkpoint (e.g. data/models/dialog, from `colloquy pretrain --config configs/models/dialog.json --out data/models/dialog`) used instead of `dir` when it holds one: the env\'s model, the shared tokenizer, D\'s init, and the imitators\' with imitators.init "preferred-base"' })),
  }, { additionalProperties: false, default: {} }),
  demonstrator: Type.Object({
    init: Type.Union([Type.Literal('scratch'), Type.Literal('base')], { default: 'base', description: 'D starts from the base\'s weights and trains longer on its corpus ("longer-trained"), or from scratch with `model` ("larger")' }),
    model: Overrides('D\'s architecture (init "scratch"): dModel, nLayers, nHeads, dFF, contextLength'),
    train: Overrides('D\'s pretraining settings (corpus default "mathdial"; minutes, epochs, batchSize, seqLength, learningRate, …)'),
  }, { additionalProperties: false, default: {} }),
  samples: Type.Object({
    train: Type.Integer({ minimum: 1, default: 200, description: 'dialogs D plays for the imitators\' training set' }),
    heldOut: Type.Integer({ minimum: 1, default: 40, description: 'dialogs D plays for the held-out NLL (posterior weights)' }),
    seed: Type.Integer({ minimum: 0, default: 500000, description: 'first env seed of D\'s dialogs (disjoint from the evaluation seeds)' }),
    numEnvs: Type.Integer({ minimum: 1, default: 16, description: 'dialogs run at once' }),
  }, { additionalProperties: false, default: {} }),
  imitators: Type.Object({
    k: Type.Integer({ minimum: 1, maximum: 32, default: 4, description: 'ensemble size K (member 0 is the single imitator)' }),
    bootstrap: Type.Boolean({ default: true, description: 'members 1…K−1 train on bootstrap resamples of D\'s transcripts' }),
    seed: Type.Integer({ default: 11, description: 'seed of member 0 (member k: seed + k)' }),
    init: Type.Union([Type.Literal('scratch'), Type.Literal('base'), Type.Literal('preferred-base')], { default: 'scratch', description: 'members start from scratch with `model`, from the base model\'s weights ("base"; `model` ignored), or from them only when base.preferred is in use ("preferred-base")' }),
    model: Overrides('imitator architecture (vocabulary from the tokenizer); contextLength must cover env maxTokens'),
    train: Overrides('fitting settings (batchSize, learningRate, warmupSteps, epochs, minutes, …; the pretraining schema)'),
    alpha: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.1, description: 'plausible set: models with w_k ≥ α·max w' }),
    posteriorScale: Type.Number({ minimum: 0, default: 1, description: 's in w_k ∝ exp(−s·NLL_k), NLL_k per held-out D-token' }),
    helpMode: Type.Union([Type.Literal('token'), Type.Literal('turn')], { default: 'turn', description: 'on a help request D writes the token, or the rest of the teacher turn' }),
    includeDemonstrator: Type.Boolean({ default: false, description: 'D itself joins the ensemble as a last member (the realizable case, in which the mightn\'t-do bound is a theorem); the single imitator stays member 0' }),
  }, { additionalProperties: false, default: {} }),
  rl: Type.Object({
    seeds: Type.Array(Type.Integer(), { minItems: 1, default: [1, 2, 3], description: 'training seeds (one run per seed and setting; at least 3 for an interval over seeds: the report flags fewer)' }),
    references: Type.Array(Type.Union([Type.Literal('imitator'), Type.Literal('conservative')]), { minItems: 1, default: ['imitator', 'conservative'], description: 'KL bases: the single imitator, the conservative reference (ℓ, θ on HELP)' }),
    numEnvs: Type.Integer({ minimum: 1, default: 16, description: 'dialogs per rollout' }),
    ppoKl: Type.Object({
      betas: Type.Array(Type.Number({ minimum: 0 }), { default: [0.05, 0.2], description: 'KL coefficients β (one run each; [] skips ppo-kl)' }),
      config: Overrides('ppo-kl settings (configs/agents/schema.ts): minutes, updates, learningRate, kl.estimator, …'),
    }, { additionalProperties: false, default: {} }),
    klBudget: Type.Object({
      budgets: Type.Array(Type.Number({ minimum: 0 }), { default: [5, 10], description: 'KL budgets per episode in nats (one run each; [] skips kl-budget)' }),
      config: Overrides('kl-budget settings (configs/agents/schema.ts): minutes, updates, learningRateActor, …'),
    }, { additionalProperties: false, default: {} }),
  }, { additionalProperties: false, default: {} }),
  eval: Type.Object({
    episodes: Type.Integer({ minimum: 1, default: 32, description: 'dialogs per agent' }),
    seed: Type.Integer({ minimum: 0, default: 1000000, description: 'first env seed of the evaluation dialogs' }),
    numEnvs: Type.Integer({ minimum: 1, default: 16, description: 'dialogs at once' }),
    ngramMax: Type.Integer({ minimum: 1, maximum: 10, default: 4, description: 'repeated n-gram rates for n = 1…ngramMax (Cohen et al. count up to 10)' }),
    shortTurnTokens: Type.Integer({ minimum: 0, default: 4, description: 'N of the "short" turn measure (≤ N content tokens); "empty" means no word before the marker' }),
    server: Type.Union([Type.String(), Type.Null()], { default: null, description: 'evaluate against this server (ws://host:port/v1/env) instead of in process' }),
  }, { additionalProperties: false, default: {} }),
  report: Type.Object({
    transcripts: Type.Integer({ minimum: 0, default: 3, description: 'evaluation dialogs shown side by side for every agent' }),
    title: Type.String({ default: 'Don\'t do anything I mightn\'t do vs. KL-controlled RL', description: 'report title' }),
  }, { additionalProperties: false, default: {} }),
}, { additionalProperties: false });
export type ExperimentConfig = Static<typeof ExperimentSchema>;

export function resolveExperimentConfig(value: unknown, what = 'experiment config'): ExperimentConfig {
  const c = validateConfig(ExperimentSchema, value, what);
  if (c.rl.ppoKl.betas.length === 0 && c.rl.klBudget.budgets.length === 0) throw new BadConfig(`${what}: no RL runs (rl.ppoKl.betas and rl.klBudget.budgets are both empty)`);
  if (c.imitators.k < 2 && c.rl.references.includes('conservative')) throw new BadConfig(`${what}: the conservative reference needs imitators.k ≥ 2 (with one model θ = 0 and ℓ is the imitator)`);
  if ((c.env.kwargs.actionMode ?? 'token') !== 'token') throw new BadConfig(`${what}: env.kwargs.actionMode must be "token"`);
  return c;
}

/** Read a config file with deep-merged overrides (`--set a.b=1` from the CLI) and resolve it. */
export function loadExperimentConfig(file: string, overrides: Record<string, unknown> = {}): ExperimentConfig {
  return resolveExperimentConfig(loadConfig(ExperimentSchema, file, overrides), file);
}
