/**
 * Schema of the "online against offline at matched KL" study (`configs/experiments/online-offline*.json`,
 * read by `colloquy study`; issue 13, study 3; Tang et al. 2024 with Gao et al. 2023's gold reward):
 * ppo-kl and kl-budget (online) and batch-kl on logged base-policy dialogs (offline), several seeds
 * each, checkpoints kept along training, every checkpoint evaluated on the same fixed-seed dialogs
 * for the proxy reward (the env's), a gold reward (a second scorer no agent trains on) and the KL to
 * the base.
 */
import { Type, type Static } from '@sinclair/typebox';
import { BadConfig } from '../../core/errors.ts';
import { loadConfig, validateConfig } from '../../core/config.ts';
import { StudyBackend, StudyEnv, StudyEval, StudyJudge, checkStudyEnv } from './study-schema.ts';

const Settings = (what: string) => Type.Record(Type.String(), Type.Unknown(), { default: {}, description: `${what} settings over its shipped config (configs/agents/): steps, checkpointEvery, learning rates, …` });

export const OnlineOfflineStudySchema = Type.Object({
  description: Type.Optional(Type.String()),
  study: Type.Literal('online-offline', { description: 'which study this config runs' }),
  backend: StudyBackend,
  out: Type.String({ default: 'runs/online-offline', description: 'output folder (relative to the project root): logged dialogs, runs, eval rows, results.json, report.html' }),
  env: StudyEnv('env kwargs of every run, log and evaluation (maxTokens comes from episodeTokens, goldReward from gold); kwargs.reward is the proxy'),
  base: Type.String({ default: 'data/models/base', description: 'the base model folder: the KL reference, the policies\' initialisation, the logging policy and the env\'s student model' }),
  gold: Type.String({ default: 'gold-classifier', description: 'the gold reward: a reward config (a name in configs/rewards/ or a path) that scores every reply beside the proxy and that no agent is trained on (env kwargs.goldReward)' }),
  episodeTokens: Type.Integer({ minimum: 16, default: 256, description: 'episode length in tokens (the env\'s maxTokens), prompt included' }),
  seeds: Type.Array(Type.Integer(), { minItems: 1, default: [1, 2, 3], description: 'training seeds (one run per family and seed)' }),
  numEnvs: Type.Integer({ minimum: 1, default: 16, description: 'dialogs per rollout of the online trainers' }),
  ppoKl: Settings('ppo-kl'),
  klBudget: Settings('kl-budget'),
  batchKl: Settings('batch-kl'),
  logged: Type.Object({
    episodes: Type.Integer({ minimum: 1, default: 400, description: 'dialogs of the base policy logged for batch-kl (its whole data set)' }),
    seed: Type.Integer({ minimum: 0, default: 2000000, description: 'first env seed of the logged dialogs (apart from the evaluation seeds)' }),
  }, { additionalProperties: false, default: {} }),
  eval: StudyEval(100, 'evaluation dialogs per checkpoint', 'first env seed of the evaluation dialogs (the same for every checkpoint)'),
  judge: Type.Optional(StudyJudge),
  title: Type.String({ default: 'Online against offline at matched KL (Tang et al. 2024), with a gold reward (Gao et al. 2023)', description: 'report title' }),
}, { additionalProperties: false });
export type OnlineOfflineStudyConfig = Static<typeof OnlineOfflineStudySchema>;

export function resolveOnlineOfflineStudy(value: unknown, what = 'online-offline study config'): OnlineOfflineStudyConfig {
  const c = validateConfig(OnlineOfflineStudySchema, value, what);
  checkStudyEnv(c.env.kwargs, what);
  if (c.env.kwargs.goldReward !== undefined) throw new BadConfig(`${what}: set the gold reward in gold, not env.kwargs.goldReward`);
  for (const [k, s] of [['ppoKl', c.ppoKl], ['klBudget', c.klBudget], ['batchKl', c.batchKl]] as const) {
    for (const key of ['seed', 'env', 'numEnvs', 'data', 'base', 'out', 'keepCheckpoints']) {
      if (s[key] !== undefined) throw new BadConfig(`${what}: ${k}.${key} is set by the study (seeds, env, numEnvs, base, out), not in ${k}`);
    }
  }
  return c;
}

export function loadOnlineOfflineStudy(file: string, overrides: Record<string, unknown> = {}): OnlineOfflineStudyConfig {
  return resolveOnlineOfflineStudy(loadConfig(OnlineOfflineStudySchema, file, overrides), file);
}
