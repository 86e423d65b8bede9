/**
 * A training run's reward statistics (issue 12, item 4). A z-scored reward term (configs/rewards/
 * jaques.json) is scored with running statistics held by the env's reward object, one per sub-env
 * of the run's session — the run's own, local or over the wire. The agent rebuilds them exactly
 * from what every scored exchange reports in `info.rewardComponents` (the raw value `name` beside
 * its z-score `name:z`, pushed in the order the env pushed them), merges the sub-envs' into one
 * set, and saves it with each checkpoint as `checkpoint/reward.json`: the run's reward config with
 * those statistics as `frozenStats`. An env given that file (`kwargs.reward`) z-scores with the
 * run's statistics and never moves them, so evaluation scores do not depend on what ran before.
 */
import { existsSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RunningStats, loadRewardConfig, type FrozenStat, type RewardConfig } from '../../rewards/composite.ts';

export const REWARD_FILE = 'reward.json';

export class RewardStatsTracker {
  private readonly perEnv: Map<string, RunningStats>[] = [];

  /** The reward components an exchange of sub-env `env` reported (`info.rewardComponents`). */
  push(env: number, components: unknown): void {
    if (!components || typeof components !== 'object') return;
    const c = components as Record<string, unknown>;
    const m = (this.perEnv[env] ??= new Map());
    for (const k of Object.keys(c)) {
      if (!k.endsWith(':z')) continue;
      const name = k.slice(0, -2), raw = c[name];
      if (typeof raw !== 'number') continue;
      let st = m.get(name);
      if (!st) { st = new RunningStats(); m.set(name, st); }
      st.push(raw);
    }
  }

  /** The sub-envs' statistics merged (in sub-env order), by component name; null when no term is z-scored. */
  merged(): Record<string, FrozenStat> | null {
    const all = new Map<string, RunningStats>();
    for (const m of this.perEnv) for (const [k, st] of m ?? []) all.set(k, RunningStats.merge(all.get(k) ?? new RunningStats(), st));
    if (!all.size) return null;
    const out: Record<string, FrozenStat> = {};
    for (const [k, st] of all) out[k] = { count: st.count, mean: st.mean, std: st.std };
    return out;
  }
}

/**
 * Write `checkpoint/reward.json`: the run's reward config (`kwargs.reward`: a shipped name or a
 * path readable here) with its statistics frozen. Returns the file, or null when the reward has no
 * z-scored term or its config is not readable here (a config only the server has).
 */
export async function writeRewardFile(checkpointDir: string, reward: unknown, tracker: RewardStatsTracker): Promise<string | null> {
  const stats = tracker.merged();
  if (!stats) return null;
  let cfg: RewardConfig;
  try { cfg = loadRewardConfig(typeof reward === 'string' ? reward : 'cohen'); } catch { return null; }
  const file = path.join(checkpointDir, REWARD_FILE), tmp = `${file}.tmp-${process.pid}`;
  // A run trained against frozen statistics keeps them (its env never moved them).
  const out: RewardConfig = cfg.frozenStats ? cfg : { ...cfg, frozenStats: stats };
  await writeFile(tmp, JSON.stringify(out, null, 2) + '\n');
  await rename(tmp, file);
  return file;
}

/** A run folder's saved reward statistics file, when it has one. */
export function runRewardFile(runDir: string): string | null {
  const f = path.join(runDir, 'checkpoint', REWARD_FILE);
  return existsSync(f) ? f : null;
}
