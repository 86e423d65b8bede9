/**
 * The reward a dialog env gives for a student's reply: a composite reward from `configs/rewards/`
 * (by name or path), loaded once per config and shared by every env that uses it.
 */
import { createCompositeReward } from '../rewards/composite.ts';
import type { RewardContext, RewardResult } from '../rewards/types.ts';

export interface CompositeRewardLike { compute(ctx: RewardContext): Promise<RewardResult> }

const cache = new Map<string, Promise<CompositeRewardLike>>();

export function getCompositeReward(nameOrPath: string): Promise<CompositeRewardLike> {
  let p = cache.get(nameOrPath);
  if (!p) {
    p = createCompositeReward(nameOrPath);
    p.catch(() => cache.delete(nameOrPath));
    cache.set(nameOrPath, p);
  }
  return p;
}
