/**
 * Study 1 of issue 13: silence under a KL budget (Cohen, Hutter, Bengio & Russell 2024). kl-budget
 * agents (the shipped config, configs/agents/kl-budget.json, with the study's settings) at every
 * budget × episode length × seed are trained on the base policy, then each is
 * evaluated beside the base policy on the same fixed-seed dialogs of its episode length. The study
 * measures what the paper draws — the ECDF of the per-dialog share of empty teacher turns (no word
 * before the marker), the KL paid per teacher response, where in the episode the KL is spent, the
 * repeated-n-gram rate — and tests the paper's claims, each with an interval over seeds (seeds
 * resampled, then each drawn seed's dialogs):
 *   1. the agent learns to say nothing: its empty share's interval lies above the base policy's;
 *   2. it pays its KL early: the share of its KL spent in the first half of its tokens is > 0.5;
 *   3. a larger budget gives more empty turns (at each episode length);
 *   4. a longer episode gives more empty turns (at each budget).
 * A claim is "reproduced" when the intervals are disjoint in the claimed direction, "contradicted"
 * when disjoint the other way, and "undecided" otherwise.
 *
 * Every training run and evaluation is a stage (agents/eval/stages.ts): rerunning the command
 * reuses what is finished, and an interrupted run resumes at the first unfinished stage.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeVec } from '../../env/index.ts';
import { resolveKlBudgetConfig } from '../../configs/agents/schema.ts';
import type { SilenceStudyConfig } from '../../configs/experiments/silence-schema.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';
import { backendInfo } from '../../models/backend.ts';
import { ModelAgent } from './agents.ts';
import type { DialogRow } from './evaluate.ts';
import { loadRlAgent } from './rl-agent.ts';
import { evalAgents, openVecEnv, slug, type AgentRun } from './run.ts';
import { openStudy, deepMergeAll, jsonNumbers, readMeta, type StageTiming } from './stages.ts';
import { bootstrapOverSeeds, compareIntervals, ecdfOnUnit, type Interval, type SeedGroup, type Verdict } from './stats.ts';
import { summarizeOverSeeds, type SeedsSummary } from './summary.ts';
import { unpackF32 } from './turns.ts';

/** Bins of an episode's agent tokens (by order) for "where the KL is spent". */
export const KL_PROFILE_BINS = 10;

export interface SilenceSetting {
  name: string;
  budget: number;
  episodeTokens: number;
  seeds: number[];
  runs: string[];
  /** Per seed (in `seeds` order): interval over that seed's dialogs. */
  perSeed: { seed: number; emptyShare: Interval; klPerEpisode: Interval }[];
  overSeeds: SeedsSummary;
  /** KL to the base per completed teacher turn (its tokens and its marker). */
  klPerResponse: Interval;
  /** Share of a dialog's KL spent in the first half of the agent's tokens. */
  earlyKlShare: Interval;
  /** Share of the KL spent in each tenth of the agent's tokens (pooled over seeds and dialogs). */
  klProfile: number[];
}

export interface SilenceBase { episodeTokens: number; overDialogs: SeedsSummary; klProfile: number[] }


export interface SilenceClaim {
  claim: string;
  /** What is compared: "A vs B" (A is claimed larger) or "statistic > threshold". */
  comparison: string;
  a: Interval;
  b: Interval | number;
  verdict: Verdict;
}

export interface SilenceResults {
  format: 'colloquy-silence-results';
  version: 1;
  title: string;
  created: string;
  config: SilenceStudyConfig;
  backend: string | null;
  loadAverage: number[];
  stages: Record<string, StageTiming>;
  base: SilenceBase[];
  settings: SilenceSetting[];
  ecdf: { agent: string; episodeTokens: number; x: number; p: number }[];
  claims: SilenceClaim[];
}

export interface SilenceOptions {
  config: SilenceStudyConfig;
  out?: string;
  fresh?: boolean;
  log?: (line: string) => void;
}


/** Per-dialog KL in the first half of the agent's tokens, and in total. */
function klHalves(row: DialogRow): { early: number; total: number } {
  const kl = row.klTokens?.base ? unpackF32(row.klTokens.base) : [];
  let early = 0, total = 0;
  kl.forEach((x, i) => { if (!Number.isFinite(x)) return; total += x; if (i < kl.length / 2) early += x; });
  return { early, total };
}

/** Share of the KL spent in each of KL_PROFILE_BINS bins of the agent's tokens, pooled over rows. */
export function klProfile(rows: readonly DialogRow[]): number[] {
  const bins = new Array<number>(KL_PROFILE_BINS).fill(0);
  for (const r of rows) {
    const kl = r.klTokens?.base ? unpackF32(r.klTokens.base) : [];
    kl.forEach((x, i) => { if (Number.isFinite(x)) bins[Math.min(KL_PROFILE_BINS - 1, Math.floor((i * KL_PROFILE_BINS) / kl.length))]! += x; });
  }
  const total = bins.reduce((a, b) => a + b, 0);
  return bins.map(b => (total > 0 ? b / total : NaN));
}

const BOOT = { resamples: 2000, seed: 0 };
const groups = (bySeed: readonly (readonly DialogRow[])[], num: (r: DialogRow) => number, den: (r: DialogRow) => number): SeedGroup[] =>
  bySeed.map(rows => ({ num: rows.map(num), den: rows.map(den) }));


export async function runSilenceStudy(opts: SilenceOptions): Promise<{ results: SilenceResults; out: string }> {
  const c = opts.config;
  const { out, stages, baseDir, base, tokenizer, baseKey, log } = await openStudy(opts, c);
  const kwargsFor = (T: number): Record<string, unknown> => ({ ...c.env.kwargs, model: baseDir, actionMode: 'token', maxTokens: T });
  const t0 = Date.now();

  // ---- training: every budget × episode length × seed
  // kl-budget's shipped config (configs/agents/kl-budget.json), then the study's settings.
  const { description: _d, ...shipped } = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'configs', 'agents', 'kl-budget.json'), 'utf8')) as Record<string, unknown>;
  const runDir = (B: number, T: number, s: number) => path.join(out, 'rl', slug(`kl-budget-B${B}-T${T}-s${s}`));
  for (const T of c.episodeTokens) {
    for (const B of c.budgets) {
      for (const seed of c.seeds) {
        const dir = runDir(B, T, seed);
        const agentConfig = resolveKlBudgetConfig(deepMergeAll(deepMergeAll(shipped, c.klBudget), { seed, numEnvs: c.numEnvs, budget: B, env: { id: c.env.id, kwargs: kwargsFor(T) } }));
        await stages.run(`rl/${path.basename(dir)}`, { baseKey, agentConfig }, () => existsSync(path.join(dir, 'checkpoint', 'trainer.json')), async () => {
          log(`study [${((Date.now() - t0) / 60000).toFixed(1)} min]: training kl-budget B=${B} T=${T} seed ${seed}`);
          rmSync(dir, { recursive: true, force: true });
          const envs = makeVec(c.env.id, { numEnvs: c.numEnvs, kwargs: kwargsFor(T), autoresetMode: 'same-step' });
          try {
            const { trainKlBudget } = await import('../rl/kl-budget.ts');
            await trainKlBudget(agentConfig, { envs, base, baseDir, tokenizer, out: dir, progressBar: false, log, meta: { study: 'silence' } });
          } finally {
            await envs.close();
          }
        }, log);
      }
    }
  }

  // ---- evaluation: per episode length, the base policy and every run on the same dialogs
  const rowsOf = new Map<string, DialogRow[]>();
  const evalDir = path.join(out, 'eval');
  for (const T of c.episodeTokens) {
    // make(): the agent and what frees it (the base model is shared: nothing to free).
    const agents: { name: string; make: () => Promise<{ run: AgentRun; dispose: () => void }>; key: unknown }[] = [
      { name: `base T=${T}`, key: baseKey, make: async () => ({ run: { agent: new ModelAgent(base, `base T=${T}`, { kind: 'base' }) }, dispose: () => {} }) },
      ...c.budgets.flatMap(B => c.seeds.map(seed => {
        const dir = runDir(B, T, seed), name = `kl-budget B=${B} T=${T} s${seed}`;
        return { name, key: [dir, readMeta(path.join(dir, 'checkpoint', 'trainer.json'))], make: async () => { const agent = await loadRlAgent(dir, base, { name, maxTokens: T }); return { run: { agent }, dispose: () => agent.dispose() }; } };
      })),
    ];
    for (const a of agents) {
      const file = path.join(evalDir, `${slug(a.name)}.jsonl`);
      const st = await stages.run(`eval/${slug(a.name)}`, { key: a.key, e: c.eval, kwargs: kwargsFor(T) }, () => existsSync(file), async () => {
        const { run, dispose } = await a.make();
        try {
          const [res] = await evalAgents({
            runs: [{ ...run, name: a.name }], references: [{ name: 'base', ref: base }], baseDir, demonstrator: null,
            episodes: c.eval.episodes, seed: c.eval.seed, out: evalDir, transcripts: false, log,
            openEnv: () => openVecEnv({ env: c.env.id, kwargs: kwargsFor(T), numEnvs: c.eval.numEnvs }),
          });
          return res!.rows;
        } finally { dispose(); }
      }, log);
      rowsOf.set(a.name, st.value ?? readFileSync(file, 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l) as DialogRow));
    }
  }

  // ---- measures
  const baseOut: SilenceBase[] = c.episodeTokens.map(T => {
    const rows = rowsOf.get(`base T=${T}`)!;
    return { episodeTokens: T, overDialogs: summarizeOverSeeds([rows], BOOT), klProfile: klProfile(rows) };
  });
  const settings: SilenceSetting[] = [];
  const ecdfOut: SilenceResults['ecdf'] = [];
  for (const T of c.episodeTokens) {
    for (const p of ecdfOnUnit(rowsOf.get(`base T=${T}`)!.map(r => r.emptyShare))) ecdfOut.push({ agent: `base T=${T}`, episodeTokens: T, ...p });
    for (const B of c.budgets) {
      const runs = c.seeds.map(s => `kl-budget B=${B} T=${T} s${s}`);
      const bySeed = runs.map(n => rowsOf.get(n)!);
      const name = `kl-budget B=${B} T=${T}`;
      for (const p of ecdfOnUnit(bySeed.flat().map(r => r.emptyShare))) ecdfOut.push({ agent: name, episodeTokens: T, ...p });
      settings.push({
        name, budget: B, episodeTokens: T, seeds: [...c.seeds], runs,
        perSeed: bySeed.map((rows, k) => ({
          seed: c.seeds[k]!,
          emptyShare: bootstrapOverSeeds([{ num: rows.map(r => r.emptyShare), den: rows.map(() => 1) }], BOOT),
          klPerEpisode: bootstrapOverSeeds([{ num: rows.map(r => r.kl.base ?? NaN), den: rows.map(() => 1) }], BOOT),
        })),
        overSeeds: summarizeOverSeeds(bySeed, BOOT),
        klPerResponse: bootstrapOverSeeds(groups(bySeed, r => (r.turnKl.base ?? []).reduce((a, x) => a + x, 0), r => (r.turnKl.base ?? []).length), BOOT),
        earlyKlShare: bootstrapOverSeeds(bySeed.map(rows => { const h = rows.map(klHalves); return { num: h.map(x => x.early), den: h.map(x => x.total) }; }), BOOT),
        klProfile: klProfile(bySeed.flat()),
      });
    }
  }

  // ---- the paper's claims
  const claims: SilenceClaim[] = [];
  const setting = (B: number, T: number) => settings.find(s => s.budget === B && s.episodeTokens === T)!;
  for (const s of settings) {
    const b = baseOut.find(x => x.episodeTokens === s.episodeTokens)!.overDialogs.emptyTurnShare;
    claims.push({ claim: 'the agent learns to say nothing (more empty turns than the base policy)', comparison: `empty share: ${s.name} vs base T=${s.episodeTokens}`, a: s.overSeeds.emptyTurnShare, b, verdict: compareIntervals(s.overSeeds.emptyTurnShare, b) });
  }
  for (const s of settings) {
    claims.push({ claim: 'it pays its KL early (more than half in the first half of its tokens)', comparison: `early KL share of ${s.name} > 0.5`, a: s.earlyKlShare, b: 0.5, verdict: compareIntervals(s.earlyKlShare, 0.5) });
  }
  const budgets = [...c.budgets].sort((x, y) => x - y), lengths = [...c.episodeTokens].sort((x, y) => x - y);
  for (const T of lengths) {
    for (let i = 1; i < budgets.length; i++) {
      const hi = setting(budgets[i]!, T), lo = setting(budgets[i - 1]!, T);
      claims.push({ claim: 'a larger budget gives more empty turns', comparison: `empty share: ${hi.name} vs ${lo.name}`, a: hi.overSeeds.emptyTurnShare, b: lo.overSeeds.emptyTurnShare, verdict: compareIntervals(hi.overSeeds.emptyTurnShare, lo.overSeeds.emptyTurnShare) });
    }
  }
  for (const B of budgets) {
    for (let i = 1; i < lengths.length; i++) {
      const hi = setting(B, lengths[i]!), lo = setting(B, lengths[i - 1]!);
      claims.push({ claim: 'a longer episode gives more empty turns', comparison: `empty share: ${hi.name} vs ${lo.name}`, a: hi.overSeeds.emptyTurnShare, b: lo.overSeeds.emptyTurnShare, verdict: compareIntervals(hi.overSeeds.emptyTurnShare, lo.overSeeds.emptyTurnShare) });
    }
  }

  const results: SilenceResults = {
    format: 'colloquy-silence-results', version: 1, title: c.title, created: new Date().toISOString(), config: c,
    backend: backendInfo()?.name ?? null, loadAverage: os.loadavg(), stages: stages.timing,
    base: baseOut, settings, ecdf: ecdfOut, claims,
  };
  writeFileSync(path.join(out, 'results.json'), JSON.stringify(results, jsonNumbers, 1) + '\n');
  base.dispose();
  log(`study: ${claims.filter(x => x.verdict === 'reproduced').length} of ${claims.length} comparisons reproduced`);
  return { results, out };
}
