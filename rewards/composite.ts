/**
 * Composite rewards: a weighted sum of named signals of one exchange, from a validated config
 * (configs/rewards/*.json). Each term may be z-scored with running statistics (Welford; the
 * statistics include the current value). `compute` returns the total and every component, so that
 * environments can put the components in `info`.
 *
 *   total = Σ_k weight_k · v_k,   v_k = raw_k, or clip((raw_k − mean_k) / std_k) when z-scored
 *
 * Components: `components[name]` is the raw signal; z-scored terms add `components[name + ':z']`.
 * With z-scoring the reward depends on what this object has seen before (reset it with
 * `resetStats`, or freeze it); without, `compute` is a pure function of its context. A config with
 * `frozenStats` (a training run's saved statistics) starts from them, frozen: a pure function again.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { validateConfig } from '../core/config.ts';
import { BadConfig, ColloquyError } from '../core/errors.ts';
import { ScorerSpecSchema, sharedScorer, type ScorerSpec } from './sentiment.ts';
import {
  laughter, wordsElicited, questionAsked, conversationLength, repetitionPenalty, previousUserMessage, sentimentTransition,
} from './signals.ts';
import type { RewardContext, RewardResult, SentimentScorer } from './types.ts';
import { CONFIG_DIR } from '../core/paths.ts';

export const SIGNALS = [
  'sentiment', 'sentimentSigned', 'sentimentTransition', 'laughter', 'wordsElicited', 'question', 'conversationLength', 'repetition',
] as const;
export type SignalName = (typeof SIGNALS)[number];

export const RewardTermSchema = Type.Object({
  signal: Type.Union(SIGNALS.map(s => Type.Literal(s)), {
    description: 'sentiment: (s+1)/2 of the reply; sentimentSigned: s in [-1,1]; sentimentTransition: change from the user\'s previous message; laughter, wordsElicited, question, conversationLength, repetition: see rewards/signals.ts',
  }),
  weight: Type.Number({ description: 'multiplier of the term in the total' }),
  name: Type.Optional(Type.String({ minLength: 1, description: 'component key (default: the signal name)' })),
  zscore: Type.Optional(Type.Boolean({ description: 'z-score this term with running statistics (default: the config\'s zscore)' })),
}, { additionalProperties: false });

const FrozenStatSchema = Type.Object({
  count: Type.Integer({ minimum: 0, description: 'values seen' }),
  mean: Type.Number(),
  std: Type.Number({ minimum: 0, description: 'sample standard deviation' }),
}, { additionalProperties: false });
export type FrozenStat = Static<typeof FrozenStatSchema>;

export const RewardConfigSchema = Type.Object({
  name: Type.String({ minLength: 1, description: 'config name, logged with results' }),
  description: Type.String({ default: '', description: 'one line on what the reward is' }),
  scorer: Type.Optional(ScorerSpecSchema),
  terms: Type.Array(RewardTermSchema, { minItems: 1, description: 'weighted signals summed into the total' }),
  zscore: Type.Boolean({ default: false, description: 'z-score every term with running statistics (per-term zscore overrides)' }),
  zscoreClip: Type.Number({ default: 5, exclusiveMinimum: 0, description: 'clip z-scores to [-clip, clip]' }),
  zscoreWarmup: Type.Integer({ default: 2, minimum: 1, description: 'use 0 for a z-scored term until this many values were seen' }),
  frozenStats: Type.Optional(Type.Record(Type.String(), FrozenStatSchema, {
    description: 'statistics of the z-scored terms, by component name, frozen: every z-score uses them and they never move (a training run saves its own as checkpoint/reward.json, for its evaluation)',
  })),
}, { additionalProperties: false });
export type RewardConfig = Static<typeof RewardConfigSchema>;
export type RewardTerm = Static<typeof RewardTermSchema>;

/** The folder of the shipped reward configs. */
export const REWARD_CONFIG_DIR = path.join(CONFIG_DIR, 'rewards');

/** Validate a reward config value (defaults filled; unknown keys and duplicate term names rejected). */
export function validateRewardConfig(value: unknown, what = 'reward config'): RewardConfig {
  const cfg = validateConfig(RewardConfigSchema, value, what);
  const names = new Set<string>();
  for (const t of cfg.terms) {
    const n = t.name ?? t.signal;
    if (names.has(n)) throw new BadConfig(`invalid ${what}: two terms named '${n}' (give one a 'name')`);
    names.add(n);
    if (cfg.frozenStats && (t.zscore ?? cfg.zscore) && !cfg.frozenStats[n]) throw new BadConfig(`invalid ${what}: frozenStats has no statistics for the z-scored term '${n}'`);
  }
  const needsScorer = cfg.terms.some(t => t.signal.startsWith('sentiment'));
  if (needsScorer && !cfg.scorer) cfg.scorer = { name: 'vader' };
  return cfg;
}

/** Load a reward config by name (`cohen` → configs/rewards/cohen.json) or by path to a JSON file. */
export function loadRewardConfig(nameOrPath: string): RewardConfig {
  const looksLikePath = nameOrPath.includes('/') || nameOrPath.includes(path.sep) || nameOrPath.endsWith('.json');
  const file = looksLikePath ? path.resolve(nameOrPath) : path.join(REWARD_CONFIG_DIR, `${nameOrPath}.json`);
  if (!existsSync(file)) {
    throw new ColloquyError('NOT_FOUND', `no reward config '${nameOrPath}' (looked for ${file}); shipped: ${listRewardConfigs().join(', ')}`);
  }
  let value: unknown;
  try { value = JSON.parse(readFileSync(file, 'utf8')); } catch (err) {
    throw new BadConfig(`reward config ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return validateRewardConfig(value, file);
}

/** Names of the shipped reward configs. */
export function listRewardConfigs(): string[] {
  if (!existsSync(REWARD_CONFIG_DIR)) return [];
  return readdirSync(REWARD_CONFIG_DIR).filter(f => f.endsWith('.json')).map(f => f.slice(0, -5)).sort();
}

/** Running mean and variance (Welford). */
export class RunningStats {
  count = 0;
  mean = 0;
  private m2 = 0;
  push(x: number): void {
    this.count++;
    const d = x - this.mean;
    this.mean += d / this.count;
    this.m2 += d * (x - this.mean);
  }
  get variance(): number { return this.count > 1 ? this.m2 / (this.count - 1) : 0; }
  get std(): number { return Math.sqrt(this.variance); }
  toJSON(): { count: number; mean: number; m2: number } { return { count: this.count, mean: this.mean, m2: this.m2 }; }
  static fromJSON(o: { count: number; mean: number; m2: number }): RunningStats {
    const s = new RunningStats(); s.count = o.count; s.mean = o.mean; s.m2 = o.m2; return s;
  }
  /** From a count, mean and sample standard deviation (a frozen statistic). */
  static fromStat(o: FrozenStat): RunningStats {
    return RunningStats.fromJSON({ count: o.count, mean: o.mean, m2: o.std * o.std * Math.max(0, o.count - 1) });
  }
  /** The statistics of the union of two samples (Chan et al.'s pairwise update). */
  static merge(a: RunningStats, b: RunningStats): RunningStats {
    const n = a.count + b.count;
    if (n === 0) return new RunningStats();
    const d = b.mean - a.mean;
    return RunningStats.fromJSON({ count: n, mean: a.mean + d * b.count / n, m2: a.m2 + b.m2 + d * d * a.count * b.count / n });
  }
}

export interface CompositeReward {
  readonly config: RewardConfig;
  compute(ctx: RewardContext): Promise<RewardResult>;
  /** Many exchanges at once (one scorer call for all texts); same results as calling `compute` in order. */
  computeBatch(ctxs: RewardContext[]): Promise<RewardResult[]>;
  /** Running statistics of z-scored terms, by component name. */
  stats(): Record<string, { count: number; mean: number; std: number }>;
  resetStats(): void;
  /** Stop (or resume) updating the running statistics; z-scores then use the frozen ones. */
  freezeStats(frozen?: boolean): void;
}

/** Where a composite reward gets its config's scorer (e.g. the cache of an env context, env/context.ts). */
export interface ScorerSource {
  scorer(spec: ScorerSpec): Promise<SentimentScorer>;
}

export interface CompositeOptions {
  /** Use this scorer instead of loading the config's (tests, or sharing one across rewards). */
  scorer?: SentimentScorer;
  /** Get the config's scorer from here (default: `sharedScorer`, one per spec in this process). */
  scorers?: ScorerSource;
}

/** Build a composite reward from a config object (validated here) or a config name/path. */
export async function createCompositeReward(config: RewardConfig | string, opts: CompositeOptions = {}): Promise<CompositeReward> {
  const cfg = typeof config === 'string' ? loadRewardConfig(config) : validateRewardConfig(config);
  const needsScorer = cfg.terms.some(t => t.signal.startsWith('sentiment'));
  const spec: ScorerSpec = cfg.scorer ?? { name: 'vader' };
  const scorer = needsScorer ? opts.scorer ?? await (opts.scorers ? opts.scorers.scorer(spec) : sharedScorer(spec)) : undefined;
  const stats = new Map<string, RunningStats>();
  // Saved statistics (a run's, for its evaluation) are used as they are and never move.
  for (const [k, st] of Object.entries(cfg.frozenStats ?? {})) stats.set(k, RunningStats.fromStat(st));
  let frozen = cfg.frozenStats !== undefined;
  const termName = (t: RewardTerm) => t.name ?? t.signal;
  const zOf = (t: RewardTerm) => t.zscore ?? cfg.zscore;

  async function computeBatch(ctxs: RewardContext[]): Promise<RewardResult[]> {
    // Score every reply and every previous user message in one call.
    let replyScores: { score: number; signed: number }[] = [];
    let prevScores: ({ score: number; signed: number } | undefined)[] = [];
    if (scorer) {
      const texts: string[] = [];
      const prevIdx: number[] = [];
      for (const c of ctxs) texts.push(c.reply);
      const wantsTransition = cfg.terms.some(t => t.signal === 'sentimentTransition');
      for (const c of ctxs) {
        const prev = wantsTransition ? previousUserMessage(c.history) : undefined;
        prevIdx.push(prev === undefined ? -1 : texts.length);
        if (prev !== undefined) texts.push(prev);
      }
      const scores = await scorer.score(texts);
      replyScores = scores.slice(0, ctxs.length);
      prevScores = prevIdx.map(i => (i < 0 ? undefined : scores[i]));
    }
    return ctxs.map((c, i) => {
      const components: Record<string, number> = {};
      let total = 0;
      for (const t of cfg.terms) {
        const raw = finite(signalValue(t.signal, c, replyScores[i], prevScores[i]));
        const name = termName(t);
        components[name] = raw;
        let v = raw;
        if (zOf(t)) {
          let st = stats.get(name);
          if (!st) { st = new RunningStats(); stats.set(name, st); }
          if (!frozen) st.push(raw);
          const sd = st.std;
          v = st.count < cfg.zscoreWarmup || !(sd > 1e-8) ? 0 : Math.max(-cfg.zscoreClip, Math.min(cfg.zscoreClip, (raw - st.mean) / sd));
          components[`${name}:z`] = v;
        }
        total += t.weight * v;
      }
      return { total: finite(total), components };
    });
  }

  return {
    config: cfg,
    async compute(ctx) { return (await computeBatch([ctx]))[0]!; },
    computeBatch,
    stats() {
      const out: Record<string, { count: number; mean: number; std: number }> = {};
      for (const [k, s] of stats) out[k] = { count: s.count, mean: s.mean, std: s.std };
      return out;
    },
    resetStats() { stats.clear(); },
    freezeStats(f = true) { frozen = f; },
  };
}

function finite(x: number): number { return Number.isFinite(x) ? x : 0; }

function signalValue(signal: SignalName, c: RewardContext, reply: { score: number; signed: number } | undefined, prev: { score: number; signed: number } | undefined): number {
  switch (signal) {
    case 'sentiment': return reply?.score ?? 0.5;
    case 'sentimentSigned': return reply?.signed ?? 0;
    case 'sentimentTransition': return sentimentTransition(reply?.score ?? 0.5, prev?.score);
    case 'laughter': return laughter(c.reply);
    case 'wordsElicited': return wordsElicited(c.reply);
    case 'question': return questionAsked(c.agentUtterance);
    case 'conversationLength': return conversationLength(c.reply);
    case 'repetition': return repetitionPenalty(c.agentUtterance, c.history);
  }
}
