/**
 * The reward a dialog env gives for a student's reply: a composite reward from `configs/rewards/`
 * (by name or path). Each env builds its own: a z-scored term keeps running statistics, and one
 * env's dialogs must not move another's rewards. Only the sentiment scorer, which is expensive to
 * load and a pure function of the text, is shared, through the cache of the env's context.
 */
import { createCompositeReward, loadRewardConfig, type CompositeReward } from '../rewards/composite.ts';
import type { EnvCache } from './context.ts';

export function createDialogReward(nameOrPath: string, cache: EnvCache): Promise<CompositeReward> {
  return createCompositeReward(nameOrPath, { scorers: cache });
}

/**
 * Whether the reward of an exchange depends on the exchanges before it (a z-scored term's running
 * statistics): then the same seed and actions do not reproduce a trajectory once the env has
 * seen others. Frozen statistics (a run's saved `frozenStats`) do not move: no memory. A config
 * that cannot be loaded counts as having memory (the env's reset will say why).
 */
export function rewardHasMemory(nameOrPath: string): boolean {
  try {
    const cfg = loadRewardConfig(nameOrPath);
    return cfg.frozenStats === undefined && cfg.terms.some(t => t.zscore ?? cfg.zscore);
  } catch {
    return true;
  }
}
