/**
 * Schema of the "silence under a KL budget" study (`configs/experiments/silence*.json`, read by
 * `colloquy study`; issue 13, study 1): kl-budget agents at several budgets and episode lengths,
 * each trained with several seeds, evaluated against the base policy on fixed-seed dialogs.
 */
import { Type, type Static } from '@sinclair/typebox';
import { loadConfig, validateConfig } from '../../core/config.ts';
import { StudyBackend, StudyEnv, StudyEval, StudyJudge, checkStudyEnv } from './study-schema.ts';

export const SilenceStudySchema = Type.Object({
  description: Type.Optional(Type.String()),
  study: Type.Literal('silence', { description: 'which study this config runs' }),
  backend: StudyBackend,
  out: Type.String({ default: 'runs/silence', description: 'output folder (relative to the project root): runs, eval rows, results.json, report.html' }),
  env: StudyEnv('env kwargs of every run and evaluation (maxTokens comes from episodeTokens)'),
  base: Type.String({ default: 'data/models/base', description: 'the base model folder: the KL reference, the policies\' initialisation and the env\'s student model' }),
  budgets: Type.Array(Type.Number({ exclusiveMinimum: 0 }), { minItems: 1, default: [10, 20], description: 'KL budgets per episode in nats' }),
  episodeTokens: Type.Array(Type.Integer({ minimum: 16 }), { minItems: 1, default: [256, 512], description: 'episode lengths in tokens (the env\'s maxTokens), prompt included' }),
  seeds: Type.Array(Type.Integer(), { minItems: 1, default: [1, 2, 3], description: 'training seeds (one run per seed, budget and episode length)' }),
  numEnvs: Type.Integer({ minimum: 1, default: 16, description: 'dialogs per rollout' }),
  klBudget: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'kl-budget settings (configs/agents/schema.ts): steps, learning rates, …' }),
  eval: StudyEval(200, 'evaluation dialogs per agent and episode length', 'first env seed of the evaluation dialogs (the same for every agent)'),
  judge: Type.Optional(StudyJudge),
  title: Type.String({ default: 'Silence under a KL budget (Cohen, Hutter, Bengio & Russell 2024)', description: 'report title' }),
}, { additionalProperties: false });
export type SilenceStudyConfig = Static<typeof SilenceStudySchema>;

export function resolveSilenceStudy(value: unknown, what = 'silence study config'): SilenceStudyConfig {
  const c = validateConfig(SilenceStudySchema, value, what);
  checkStudyEnv(c.env.kwargs, what);
  return c;
}

export function loadSilenceStudy(file: string, overrides: Record<string, unknown> = {}): SilenceStudyConfig {
  return resolveSilenceStudy(loadConfig(SilenceStudySchema, file, overrides), file);
}
