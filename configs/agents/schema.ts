/**
 * Configs of the RL agents (`configs/agents/ppo-kl.json`, `configs/agents/kl-budget.json`): one
 * TypeBox schema per algorithm, which is the JSON Schema of its file, the TypeScript type the
 * trainer reads and the hyperparameters logged with a run. Every field has a one-line description;
 * `resolve*Config` is the single place that derives sizes and rejects inconsistent settings.
 */
import { Type, type Static } from '@sinclair/typebox';
import { BadConfig } from '../../core/errors.ts';
import { validateConfig } from '../../core/config.ts';

const Env = Type.Object({
  id: Type.String({ default: 'TeacherStudent-v0', description: 'env id (registry / server)' }),
  kwargs: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'env kwargs (e.g. reward: "jaques", student, prompt, maxTokens)' }),
}, { additionalProperties: false, default: {} });

const Run = {
  env: Env,
  numEnvs: Type.Integer({ minimum: 1, maximum: 1024, default: 16, description: 'dialogs run in parallel (one vector env)' }),
  seed: Type.Integer({ default: 1, description: 'seed of the envs, of sampling and of minibatch order' }),
  steps: Type.Integer({ minimum: 0, default: 50000, description: 'the budget, in env steps: sub-env steps summed over the N envs (one agent token each in token mode, one utterance in utterance mode); training stops after the update that reaches it, and the schedules (kl-budget\'s ramp) follow it, so the same command and seed give the same run anywhere (0: none; then updates is the budget)' }),
  minutes: Type.Number({ minimum: 0, default: 0, description: 'wall-clock cap in minutes (0: none): stops a run early, never moves its schedule (a capped run is a prefix of the uncapped one)' }),
  updates: Type.Integer({ minimum: 0, default: 0, description: 'cap in updates (0: none); with steps 0 the budget and the schedules follow updates' }),
  episodesPerUpdate: Type.Integer({ minimum: 0, default: 0, description: 'finished dialogs per update (0: numEnvs)' }),
  maxUtteranceTokens: Type.Integer({ minimum: 1, maximum: 1024, default: 64, description: 'utterance action mode: most tokens the agent writes per teacher turn' }),
  bootstrapTruncated: Type.Boolean({ default: false, description: 'bootstrap V(s) at truncation; off because the token budget is part of the task (the agent sees the time left, as in Cohen et al.)' }),
  logEvery: Type.Integer({ minimum: 1, default: 1, description: 'write a metrics line every N updates' }),
  samplesEvery: Type.Integer({ minimum: 1, default: 5, description: 'write sample transcripts every N updates' }),
  samples: Type.Integer({ minimum: 0, default: 2, description: 'transcripts written each time' }),
  checkpointEvery: Type.Integer({ minimum: 1, default: 10, description: 'write a checkpoint every N updates (and at the end)' }),
  keepCheckpoints: Type.Boolean({ default: false, description: 'also keep a copy of each checkpoint written along training in checkpoint-UPDATE/ (checkpoint/ is always the latest): points along training for a reward–KL curve' }),
};

export const PpoKlConfigSchema = Type.Object({
  algo: Type.Literal('ppo-kl', { default: 'ppo-kl' }),
  description: Type.Optional(Type.String()),
  ...Run,
  trainLayers: Type.Union([Type.Integer({ minimum: 0 }), Type.Literal('all')], { default: 'all', description: 'transformer blocks trained, from the top (lower ones frozen and computed once per update); "all" also trains the embeddings' }),
  learningRate: Type.Number({ exclusiveMinimum: 0, default: 1e-4, description: 'Adam learning rate' }),
  adamEps: Type.Number({ exclusiveMinimum: 0, default: 1e-5, description: 'Adam epsilon' }),
  maxGradNorm: Type.Number({ minimum: 0, default: 1, description: 'clip the global gradient norm (0: off)' }),
  epochs: Type.Integer({ minimum: 1, default: 4, description: 'PPO epochs over each batch' }),
  minibatches: Type.Integer({ minimum: 1, default: 4, description: 'minibatches per epoch (split by episodes)' }),
  clip: Type.Number({ exclusiveMinimum: 0, default: 0.2, description: 'PPO ratio clip ε' }),
  valueClip: Type.Number({ minimum: 0, default: 0.2, description: 'value clipping around the old value (0: off)' }),
  vfCoef: Type.Number({ minimum: 0, default: 0.1, description: 'value loss coefficient' }),
  entCoef: Type.Number({ minimum: 0, default: 0, description: 'entropy bonus coefficient' }),
  gamma: Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'discount per dialog turn (1 as in Cohen et al.; Jaques et al. used < 1)' }),
  lambda: Type.Number({ minimum: 0, maximum: 1, default: 0.95, description: 'GAE λ, per token' }),
  whitenAdvantages: Type.Boolean({ default: true, description: 'normalise advantages over the batch' }),
  kl: Type.Object({
    estimator: Type.Union([Type.Literal('k1'), Type.Literal('k3'), Type.Literal('exact')], { default: 'k1', description: 'per-token KL in the reward: k1 = log π − log p, k3 = (r−1) − log r, exact = Σ π log(π/p)' }),
    beta: Type.Number({ minimum: 0, default: 0.05, description: 'KL coefficient β (initial value when adaptive)' }),
    target: Type.Union([Type.Number({ exclusiveMinimum: 0 }), Type.Null()], { default: null, description: 'adaptive β: target KL per episode in nats; null: fixed β' }),
    horizon: Type.Number({ exclusiveMinimum: 0, default: 10000, description: 'adaptive β horizon, in episodes (ziegler: β ← β(1 + e·n/horizon); pi: the integral term\'s time constant)' }),
    controller: Type.Union([Type.Literal('ziegler'), Type.Literal('pi')], { default: 'ziegler', description: 'adaptive β rule: ziegler (Ziegler et al.: e = clip(KL/target − 1, ±0.2), β ← β(1 + e·n/horizon)) or pi (a PI controller of ln β on e = clip(ln(KL/target), −0.2, 1): I ← I + e·n/horizon, ln β = I + kp·e; agents/rl/kl.ts)' }),
    kp: Type.Number({ minimum: 0, default: 1, description: 'pi controller: proportional gain on ln(KL/target)' }),
    measure: Type.Union([Type.Literal('estimator'), Type.Literal('exact')], { default: 'estimator', description: 'the per-episode KL the adaptive rule reads: the estimator\'s (the penalised one) or the exact Σ KL(π‖p) over the agent\'s states (lower variance)' }),
  }, { additionalProperties: false, default: {} }),
}, { additionalProperties: false });
export type PpoKlConfig = Static<typeof PpoKlConfigSchema>;

export const KlBudgetConfigSchema = Type.Object({
  algo: Type.Literal('kl-budget', { default: 'kl-budget' }),
  description: Type.Optional(Type.String()),
  ...Run,
  budget: Type.Number({ minimum: 0, default: 10, description: 'total KL budget per episode, in nats (Cohen et al.: 10 or 20)' }),
  budgetRampFraction: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'the budget ramps linearly from 0 to `budget` over this fraction of the run\'s steps (of updates when steps is 0); 0: full budget from the start' }),
  targetHorizon: Type.Union([Type.Number({ minimum: 1 }), Type.Null()], { default: 16, description: 'n in the per-token target k = σ(τ − log n)·B_left: 16 as the paper\'s code (front-loaded spending), or null for the tokens left' }),
  budgetAccounting: Type.Union([Type.Literal('exact'), Type.Literal('sampled')], { default: 'exact', description: 'charge each token its exact KL (the episode KL never exceeds the budget) or the sampled log-ratio, clamped at 0 (the paper\'s code)' }),
  learningRateActor: Type.Number({ exclusiveMinimum: 0, default: 1e-3, description: 'Adam learning rate of the proposal / target head' }),
  learningRateCritic: Type.Number({ exclusiveMinimum: 0, default: 1e-3, description: 'Adam learning rate of the critic' }),
  adamEps: Type.Number({ exclusiveMinimum: 0, default: 1e-5, description: 'Adam epsilon' }),
  maxGradNorm: Type.Number({ minimum: 0, default: 0.5, description: 'clip the actor\'s global gradient norm (0: off; the paper: 0.1)' }),
  epochs: Type.Integer({ minimum: 1, default: 8, description: 'PPO epochs over each batch (the paper: 8)' }),
  minibatchSize: Type.Integer({ minimum: 1, default: 1024, description: 'agent steps per minibatch' }),
  clip: Type.Number({ exclusiveMinimum: 0, default: 0.1, description: 'PPO ratio clip ε (the paper: 0.1)' }),
  entCoef: Type.Number({ minimum: 0, default: 1e-4, description: 'entropy bonus coefficient (the paper: 1e-4)' }),
  gapCoef: Type.Number({ minimum: 0, default: 0, description: 'weight of (KL(a‖b) − k)² when the proposal is under its target (the paper: 1, at lr 2e-5; at the learning rates of a short run it drives the target to 0 and learning stops, so 0 by default)' }),
  gamma: Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'discount per dialog turn (the paper: 1)' }),
  lambda: Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'GAE λ per token (1: Monte-Carlo returns, as the paper)' }),
  whitenAdvantages: Type.Boolean({ default: true, description: 'normalise advantages over the batch' }),
  criticHidden: Type.Integer({ minimum: 1, default: 128, description: 'hidden width of the critic MLP (tanh)' }),
}, { additionalProperties: false });
export type KlBudgetConfig = Static<typeof KlBudgetConfigSchema>;

export type AgentConfig = PpoKlConfig | KlBudgetConfig;
export type Algo = AgentConfig['algo'];
export const ALGOS: readonly Algo[] = ['ppo-kl', 'kl-budget'];

function checkRun(c: { numEnvs: number; episodesPerUpdate: number; steps: number; updates: number; env: { kwargs: Record<string, unknown> } }): void {
  if (c.episodesPerUpdate === 0) c.episodesPerUpdate = c.numEnvs;
  if (c.steps === 0 && c.updates === 0) throw new BadConfig('set a budget: steps > 0 (--steps N, env steps) or updates > 0; minutes only caps wall time');
}

export function resolvePpoKlConfig(value: unknown): PpoKlConfig {
  const c = validateConfig(PpoKlConfigSchema, value, 'ppo-kl config');
  checkRun(c);
  if (c.minibatches > c.episodesPerUpdate) throw new BadConfig(`minibatches (${c.minibatches}) cannot exceed episodesPerUpdate (${c.episodesPerUpdate}): minibatches are split by episodes`);
  if (c.kl.target !== null && c.kl.beta <= 0) throw new BadConfig('adaptive KL (kl.target set) needs kl.beta > 0');
  return c;
}

export function resolveKlBudgetConfig(value: unknown): KlBudgetConfig {
  const c = validateConfig(KlBudgetConfigSchema, value, 'kl-budget config');
  checkRun(c);
  if ((c.env.kwargs.actionMode ?? 'token') !== 'token') throw new BadConfig('kl-budget acts token by token: env.kwargs.actionMode must be "token"');
  return c;
}

/** Validate a config of either algorithm (by its `algo` field, or `algo` when given). */
export function resolveAgentConfig(value: unknown, algo?: Algo): AgentConfig {
  const a = algo ?? ((value as { algo?: unknown } | null)?.algo as Algo | undefined) ?? 'ppo-kl';
  if (a === 'ppo-kl') return resolvePpoKlConfig({ ...(value as object), algo: 'ppo-kl' });
  if (a === 'kl-budget') return resolveKlBudgetConfig({ ...(value as object), algo: 'kl-budget' });
  throw new BadConfig(`unknown algo '${String(a)}' (one of ${ALGOS.join(', ')})`);
}
