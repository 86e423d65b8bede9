/**
 * Schema of the "silence under a KL budget" study (`configs/experiments/silence*.json`, read by
 * `colloquy study`; issue 13, study 1): kl-budget agents at several budgets and episode lengths,
 * each trained with several seeds, evaluated against the base policy on fixed-seed dialogs.
 */
import { Type, type Static } from '@sinclair/typebox';
import { BadConfig } from '../../core/errors.ts';
import { loadConfig, validateConfig } from '../../core/config.ts';

export const SilenceStudySchema = Type.Object({
  description: Type.Optional(Type.String()),
  study: Type.Literal('silence', { description: 'which study this config runs' }),
  backend: Type.Union(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].map(b => Type.Literal(b)), { default: 'auto', description: 'TensorFlow.js backend (auto: GPU, native, wasm, cpu — the first that works)' }),
  out: Type.String({ default: 'runs/silence', description: 'output folder (relative to the project root): runs, eval rows, results.json, report.html' }),
  env: Type.Object({
    id: Type.String({ default: 'TeacherStudent-v0', description: 'dialog env id (token mode)' }),
    kwargs: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'env kwargs of every run and evaluation (maxTokens comes from episodeTokens)' }),
  }, { additionalProperties: false, default: {} }),
  base: Type.String({ default: 'data/models/base', description: 'the base model folder: the KL reference, the policies\' initialisation and the env\'s student model' }),
  budgets: Type.Array(Type.Number({ exclusiveMinimum: 0 }), { minItems: 1, default: [10, 20], description: 'KL budgets per episode in nats' }),
  episodeTokens: Type.Array(Type.Integer({ minimum: 16 }), { minItems: 1, default: [256, 512], description: 'episode lengths in tokens (the env\'s maxTokens), prompt included' }),
  seeds: Type.Array(Type.Integer(), { minItems: 1, default: [1, 2, 3], description: 'training seeds (one run per seed, budget and episode length)' }),
  numEnvs: Type.Integer({ minimum: 1, default: 16, description: 'dialogs per rollout' }),
  klBudget: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'kl-budget settings (configs/agents/schema.ts): steps, learning rates, …' }),
  eval: Type.Object({
    episodes: Type.Integer({ minimum: 1, default: 200, description: 'evaluation dialogs per agent and episode length' }),
    seed: Type.Integer({ minimum: 0, default: 1000000, description: 'first env seed of the evaluation dialogs (the same for every agent)' }),
    numEnvs: Type.Integer({ minimum: 1, default: 16, description: 'dialogs at once' }),
  }, { additionalProperties: false, default: {} }),
  title: Type.String({ default: 'Silence under a KL budget (Cohen, Hutter, Bengio & Russell 2024)', description: 'report title' }),
}, { additionalProperties: false });
export type SilenceStudyConfig = Static<typeof SilenceStudySchema>;

export function resolveSilenceStudy(value: unknown, what = 'silence study config'): SilenceStudyConfig {
  const c = validateConfig(SilenceStudySchema, value, what);
  if ((c.env.kwargs.actionMode ?? 'token') !== 'token') throw new BadConfig(`${what}: env.kwargs.actionMode must be "token"`);
  if (c.env.kwargs.maxTokens !== undefined) throw new BadConfig(`${what}: set the episode lengths in episodeTokens, not env.kwargs.maxTokens`);
  return c;
}

export function loadSilenceStudy(file: string, overrides: Record<string, unknown> = {}): SilenceStudyConfig {
  return resolveSilenceStudy(loadConfig(SilenceStudySchema, file, overrides), file);
}
