/**
 * Every key the trainers write to a run's metrics.jsonl, named once. ppo-kl, kl-budget (agents/rl)
 * and batch-kl (agents/batch-kl.ts) import their keys from here, and so do the readers (the
 * learning curves, the compare report, the dashboard), so a renamed metric cannot silently drop out
 * of a plot. One namespace style, CleanRL's / TRL's:
 *
 *   env/        the dialogs of an update (returns, turns, turn lengths, empty teacher turns)
 *   objective/  what the KL-regularised objective is made of (KL to the base, β, the KL budget)
 *   policy/     statistics of the policy being trained (approximate KL to the old policy, clipping, entropy)
 *   losses/     the losses optimised and their gradients
 *   charts/     everything else: value estimates, throughput, counters, timings (seconds: `_s`)
 *
 * Each line also carries `update` (UPDATE_KEY), the 1-based update (batch-kl: gradient step) it
 * was written after, and `time` (ISO) where the trainer records it.
 */

export const METRICS = {
  // ---- env/: finished dialogs of the update (agents/rl/run.ts dialogMetrics)
  /** Mean episode return: the sum of the student's rewards over a dialog. */
  rewardMean: 'env/reward_mean',
  rewardStd: 'env/reward_std',
  /** Mean reward per completed student reply. */
  replyRewardMean: 'env/reply_reward_mean',
  turnsMean: 'env/turns_mean',
  episodeTokens: 'env/episode_tokens',
  agentTokens: 'env/agent_tokens',
  terminatedShare: 'env/terminated_share',
  /** Share of teacher turns with no word before the marker (`empty`, agents/eval/turns.ts). */
  emptyTeacherTurnShare: 'env/empty_teacher_turn_share',
  /** Share of teacher turns of at most 4 content tokens, the marker not counted (`short`). */
  shortTeacherTurnShare: 'env/short_teacher_turn_share',
  teacherTurnTokens: 'env/teacher_turn_tokens',
  studentTurnTokens: 'env/student_turn_tokens',

  // ---- objective/
  /** Exact KL to the base per episode: Σ over the agent's tokens of KL(π‖p) at each state. */
  klExact: 'objective/kl_exact',
  /** The KL estimate the trainer optimises (ppo-kl: its estimator per episode; kl-budget: sampled log-ratio; batch-kl: exact, per logged state). */
  kl: 'objective/kl',
  klCoef: 'objective/kl_coef',
  nonScoreReward: 'objective/non_score_reward',
  rlhfReward: 'objective/rlhf_reward',
  /** Mean episode gold reward (the env's kwargs.goldReward: a scorer the agent never optimises), when one is configured. */
  goldReward: 'objective/gold_reward',
  /** Sampled entropy of the agent's tokens per episode (−Σ log π). */
  entropy: 'objective/entropy',
  /** kl-budget: the budget of this update (it ramps up), its mean over episodes, KL spent, worst overspend. */
  klBudget: 'objective/kl_budget',
  klBudgetEpisodeMean: 'objective/kl_budget_episode_mean',
  klSpentMean: 'objective/kl_spent_mean',
  klOverspendMax: 'objective/kl_overspend_max',

  // ---- policy/
  approxKl: 'policy/approxkl',
  clipFrac: 'policy/clipfrac',
  /** Mean per-token entropy of the policy over the update's minibatches. */
  policyEntropy: 'policy/entropy',
  /** kl-budget: mean mixture weight α of the proposal, and mean per-token KL target k. */
  mixtureAlphaMean: 'policy/mixture_alpha_mean',
  klTargetMean: 'policy/kl_target_mean',

  // ---- losses/
  policyLoss: 'losses/policy_loss',
  valueLoss: 'losses/value_loss',
  /** kl-budget: (KL(a‖b) − k)² when the proposal is under its target (gapCoef). */
  gapLoss: 'losses/gap_loss',
  valueClipFrac: 'losses/value_clipfrac',
  gradNorm: 'losses/grad_norm',
  /** batch-kl: Huber TD loss of Ψ. */
  tdLoss: 'losses/td_loss',

  // ---- charts/
  /** Mean value prediction and mean value target (return) over the update's tokens. */
  valueMean: 'charts/value_mean',
  valueTargetMean: 'charts/value_target_mean',
  /** batch-kl: mean Ψ of the logged actions and mean TD target. */
  qMean: 'charts/q_mean',
  qTargetMean: 'charts/q_target_mean',
  /** Agent token-steps per second of the update. */
  sps: 'charts/sps',
  episodes: 'charts/episodes',
  agentSteps: 'charts/agent_steps',
  /** Env steps so far: sub-env steps summed over the N envs (the budget `steps` and the schedules count these). */
  envSteps: 'charts/env_steps',
  offPolicyShare: 'charts/off_policy_share',
  rolloutSeconds: 'charts/rollout_s',
  envSeconds: 'charts/env_s',
  agentForwardSeconds: 'charts/agent_forward_s',
  updateSeconds: 'charts/update_s',
  /** Training time so far (resumed runs include the time before). */
  elapsedSeconds: 'charts/elapsed_s',
} as const;

export type MetricKey = (typeof METRICS)[keyof typeof METRICS];

/** Every metric key, in the order above. */
export const METRIC_KEYS: readonly MetricKey[] = Object.values(METRICS);

/** The namespaces a metric key may start with. */
export const METRIC_NAMESPACES = ['env', 'objective', 'policy', 'losses', 'charts'] as const;

/** The key of the update counter on every metrics line (x of the learning curves). */
export const UPDATE_KEY = 'update';
