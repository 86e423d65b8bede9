/**
 * Study 3 of issue 13: online against offline at matched KL (Tang et al. 2024, "Understanding the
 * performance gap between online and offline alignment algorithms"), with a gold reward showing
 * over-optimisation (Gao et al. 2023, "Scaling laws for reward model overoptimization").
 *
 * Stages (agents/eval/stages.ts: reused when their settings did not change; an interrupted study
 * resumes at the first unfinished one):
 *   1. logged/base.jsonl — dialogs of the base policy on their own env seeds, in the export format
 *      batch-kl reads (messages, per-reply rewards, metadata.prompt; `loggedChat` below);
 *   2. rl/<family>-s<seed> — ppo-kl and kl-budget (online, their shipped configs with the study's
 *      settings, `keepCheckpoints`: checkpoint-UPDATE/ along training) and batch-kl on the logged
 *      dialogs (offline, `checkpointEvery`: checkpoint-STEP/), one run per family and seed;
 *   3. eval/<family>-s<seed>-<step> — every kept checkpoint and the base policy on the same
 *      fixed-seed dialogs: per dialog the proxy return (the env's reward, the one trained on), the
 *      gold return (env kwargs.goldReward: a second scorer no agent sees) and the exact KL to the base.
 *
 * Each (family, checkpoint step) is a point (KL, proxy, gold), each with a 95% interval over seeds
 * (seeds resampled, then each drawn seed's dialogs; the base policy: over dialogs). The claims:
 *   1. online beats offline at matched KL: each batch-kl point against the online family's point
 *      nearest in KL whose KL interval overlaps it (no overlap: not matched), on proxy and on gold;
 *   2. over-optimisation: per family, the gold reward rises with KL and then falls — its peak lies
 *      above the base policy's and above the gold of the family's highest-KL point.
 * A comparison is "reproduced" when the intervals are disjoint in the claimed direction,
 * "contradicted" when disjoint the other way, "undecided" otherwise (stats.ts `compareIntervals`).
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeVec } from '../../env/index.ts';
import type { BpeTokenizer } from '../../models/tokenizer.ts';
import { resolveKlBudgetConfig, resolvePpoKlConfig } from '../../configs/agents/schema.ts';
import { resolveBatchKlConfig } from '../../configs/agents/batch-kl.ts';
import type { OnlineOfflineStudyConfig } from '../../configs/experiments/online-offline-schema.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';
import { backendInfo } from '../../models/backend.ts';
import { ModelAgent } from './agents.ts';
import type { DialogRow } from './evaluate.ts';
import { loadModel } from './load.ts';
import { loadRlAgent } from './rl-agent.ts';
import { evalAgents, openVecEnv, slug, type AgentRun } from './run.ts';
import type { SilenceClaim } from './silence.ts';
import { openStudy, deepMergeAll, jsonNumbers, readMeta, type StageTiming } from './stages.ts';
import { bootstrapOverSeeds, compareIntervals, type Interval } from './stats.ts';

export const FAMILIES = ['ppo-kl', 'kl-budget', 'batch-kl'] as const;
export type Family = (typeof FAMILIES)[number];
export const ONLINE: readonly Family[] = ['ppo-kl', 'kl-budget'];

/** One point of a family's curve: its checkpoints at one step over the seeds (step 0: the base policy). */
export interface CurvePoint {
  family: Family | 'base';
  /** Update (online) or gradient step (batch-kl) of the checkpoint; 0 for the base policy. */
  step: number;
  seeds: number[];
  /** Per episode, over seeds: KL to the base (nats), proxy return, gold return. */
  kl: Interval;
  proxy: Interval;
  gold: Interval;
  perSeed: { seed: number; kl: number; proxy: number; gold: number }[];
}

export type OnlineOfflineClaim = SilenceClaim & { family: Family; metric: 'proxy' | 'gold' };

export interface OnlineOfflineResults {
  format: 'colloquy-online-offline-results';
  version: 1;
  title: string;
  created: string;
  config: OnlineOfflineStudyConfig;
  backend: string | null;
  loadAverage: number[];
  stages: Record<string, StageTiming>;
  seeds: number[];
  /** Logged dialogs batch-kl trained on, and their mean proxy return. */
  logged: { dialogs: number; proxy: Interval; gold: Interval };
  base: CurvePoint;
  points: CurvePoint[];
  claims: OnlineOfflineClaim[];
}

export interface OnlineOfflineOptions {
  config: OnlineOfflineStudyConfig;
  out?: string;
  fresh?: boolean;
  log?: (line: string) => void;
}

/** An export-format record (what batch-kl's `readLoggedDialogs` reads) of an eval row kept with its transcript. */
export function loggedChat(row: DialogRow, tokenizer: BpeTokenizer): Record<string, unknown> {
  if (!row.tokens || !row.agentPositions) throw new TypeError('loggedChat: the row has no transcript (evaluate with transcripts: true)');
  const messages: { role: 'teacher' | 'student'; content: string }[] = [];
  const rewards: { turn: number; total: number }[] = [];
  row.teacherTexts.forEach((t, k) => {
    messages.push({ role: 'teacher', content: t });
    if (k < row.studentTexts.length) {
      messages.push({ role: 'student', content: row.studentTexts[k]! });
      const r = row.replyRewards[k];
      if (r !== undefined) rewards.push({ turn: messages.length - 1, total: r });
    }
  });
  return {
    dialogId: `base-${row.envSeed}`, messages, rewards,
    metadata: { prompt: tokenizer.decode(row.tokens.slice(0, row.agentPositions[0] ?? row.tokens.length)), envSeed: row.envSeed },
    endReason: row.terminated ? 'terminated' : 'truncated',
    ...(row.terminated ? { endDetail: row.endedBy === 'teacher' ? 'teacher' : 'student' } : {}),
  };
}

/** The kept checkpoints of a run folder, by step: checkpoint-STEP/. */
export function keptCheckpoints(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map(f => /^checkpoint-(\d+)$/.exec(f)).filter((m): m is RegExpExecArray => m !== null).map(m => Number(m[1])).sort((a, b) => a - b);
}

const BOOT = { resamples: 2000, seed: 0 };
const perDialog = (bySeed: readonly (readonly DialogRow[])[], f: (r: DialogRow) => number): Interval =>
  bootstrapOverSeeds(bySeed.map(rows => ({ num: rows.map(f), den: rows.map(() => 1) })), BOOT);
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const klOf = (r: DialogRow) => r.kl.base ?? NaN;
/** A dialog's gold return: the sum over its rewarded replies (0 when it had none, as its proxy return; the env reports gold only with a reply). */
export const goldOf = (r: DialogRow) => (Number.isFinite(r.goldReward) ? r.goldReward : 0); // NaN in memory, null once read back from JSON

function point(family: CurvePoint['family'], step: number, seeds: number[], bySeed: DialogRow[][]): CurvePoint {
  return {
    family, step, seeds,
    kl: perDialog(bySeed, klOf), proxy: perDialog(bySeed, r => r.reward), gold: perDialog(bySeed, goldOf),
    perSeed: bySeed.map((rows, k) => ({ seed: seeds[k]!, kl: mean(rows.map(klOf)), proxy: mean(rows.map(r => r.reward)), gold: mean(rows.map(goldOf)) })),
  };
}

const overlaps = (a: Interval, b: Interval) => a.lo <= b.hi && b.lo <= a.hi;

/** The paper's claims from the curves (see the header). */
export function onlineOfflineClaims(base: CurvePoint, points: readonly CurvePoint[]): OnlineOfflineClaim[] {
  const claims: OnlineOfflineClaim[] = [];
  const curve = (f: Family) => points.filter(p => p.family === f);
  for (const off of curve('batch-kl')) {
    for (const f of ONLINE) {
      const on = curve(f);
      if (!on.length) continue;
      const near = on.reduce((a, b) => (Math.abs(b.kl.mean - off.kl.mean) < Math.abs(a.kl.mean - off.kl.mean) ? b : a));
      const matched = overlaps(near.kl, off.kl);
      for (const metric of ['proxy', 'gold'] as const) {
        claims.push({
          family: f, metric, claim: `online beats offline at matched KL (${metric} reward)`,
          comparison: `${metric}: ${f} step ${near.step} (KL ${near.kl.mean.toFixed(2)}) vs batch-kl step ${off.step} (KL ${off.kl.mean.toFixed(2)})${matched ? '' : ' — KL intervals do not overlap: not matched'}`,
          a: near[metric], b: off[metric], verdict: matched ? compareIntervals(near[metric], off[metric]) : 'undecided',
        });
      }
    }
  }
  for (const f of FAMILIES) {
    const c = curve(f);
    if (!c.length) continue;
    const all = [base, ...c];
    const peak = all.reduce((a, b) => (b.gold.mean > a.gold.mean ? b : a));
    const last = c.reduce((a, b) => (b.kl.mean > a.kl.mean ? b : a));
    claims.push({
      family: f, metric: 'gold', claim: 'gold reward first rises with KL (its peak above the base policy)',
      comparison: `gold: ${f} peak (step ${peak.step}, KL ${peak.kl.mean.toFixed(2)}) vs base`, a: peak.gold, b: base.gold,
      verdict: peak === base ? 'contradicted' : compareIntervals(peak.gold, base.gold),
    });
    claims.push({
      family: f, metric: 'gold', claim: 'then falls (over-optimisation): its peak above the gold at the highest KL',
      comparison: `gold: ${f} peak (step ${peak.step}, KL ${peak.kl.mean.toFixed(2)}) vs highest KL (step ${last.step}, KL ${last.kl.mean.toFixed(2)})${peak === last ? ' — the peak is at the highest KL' : ''}`,
      a: peak.gold, b: last.gold, verdict: peak === last ? 'undecided' : compareIntervals(peak.gold, last.gold),
    });
  }
  return claims;
}

export async function runOnlineOfflineStudy(opts: OnlineOfflineOptions): Promise<{ results: OnlineOfflineResults; out: string }> {
  const c = opts.config;
  const { out, stages, baseDir, base, tokenizer, baseKey, log } = await openStudy(opts, c);
  const kwargs: Record<string, unknown> = { ...c.env.kwargs, model: baseDir, actionMode: 'token', maxTokens: c.episodeTokens, goldReward: c.gold };
  const t0 = Date.now();
  const elapsed = () => `${((Date.now() - t0) / 60000).toFixed(1)} min`;
  const evalDir = path.join(out, 'eval');
  const readRows = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l) as DialogRow);

  /** Evaluate one agent as a stage on `episodes` dialogs from `seed`; its rows (kept in `file`). */
  const evalStage = async (name: string, key: unknown, e: { episodes: number; seed: number }, file: string, transcripts: boolean,
    make: () => Promise<{ run: AgentRun; dispose: () => void }>): Promise<DialogRow[]> => {
    const st = await stages.run(name, { key, e, kwargs, numEnvs: c.eval.numEnvs, transcripts }, () => existsSync(file), async () => {
      log(`study [${elapsed()}]: ${name}`);
      const { run, dispose } = await make();
      try {
        const [res] = await evalAgents({
          runs: [{ ...run, name: path.basename(file, '.jsonl') }], references: [{ name: 'base', ref: base }], baseDir, demonstrator: null,
          episodes: e.episodes, seed: e.seed, out: path.dirname(file), transcripts, log: () => {},
          openEnv: () => openVecEnv({ env: c.env.id, kwargs, numEnvs: c.eval.numEnvs }),
        });
        return res!.rows;
      } finally { dispose(); }
    }, log);
    return st.value ?? readRows(file);
  };
  const baseAgent = async () => ({ run: { agent: new ModelAgent(base, 'base', { kind: 'base' }) }, dispose: () => {} });

  // ---- 1. logged dialogs of the base policy (batch-kl's data), on their own seeds
  const loggedDir = path.join(out, 'logged');
  const loggedRows = await evalStage('logged/base', baseKey, c.logged, path.join(loggedDir, 'base.jsonl'), true, baseAgent);
  const loggedFile = path.join(loggedDir, 'chats.jsonl');
  writeFileSync(loggedFile, loggedRows.map(r => JSON.stringify(loggedChat(r, tokenizer))).join('\n') + '\n');

  // ---- 2. training: every family × seed, checkpoints kept along training
  const shipped = (algo: string) => {
    const { description: _d, ...rest } = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'configs', 'agents', `${algo}.json`), 'utf8')) as Record<string, unknown>;
    return rest;
  };
  const runDir = (f: Family, s: number) => path.join(out, 'rl', `${f}-s${s}`);
  // The file a finished checkpoint of the family holds last (batch-kl has no trainer state).
  const doneFile = (f: Family) => (f === 'batch-kl' ? 'metadata.json' : 'trainer.json');
  const finished = (f: Family, s: number) => existsSync(path.join(runDir(f, s), 'checkpoint', doneFile(f)));
  const loggedKey = { n: loggedRows.length, e: c.logged, baseKey };
  for (const f of FAMILIES) {
    for (const seed of c.seeds) {
      const dir = runDir(f, seed);
      const online = { seed, numEnvs: c.numEnvs, keepCheckpoints: true, env: { id: c.env.id, kwargs } };
      const agentConfig = f === 'ppo-kl' ? resolvePpoKlConfig(deepMergeAll(deepMergeAll(shipped('ppo-kl'), c.ppoKl), online))
        : f === 'kl-budget' ? resolveKlBudgetConfig(deepMergeAll(deepMergeAll(shipped('kl-budget'), c.klBudget), online))
          : resolveBatchKlConfig({ ...c.batchKl, seed, data: loggedFile, base: baseDir, out: dir });
      const key = { baseKey, agentConfig: { ...agentConfig, out: null, data: null }, ...(f === 'batch-kl' ? { loggedKey } : {}) };
      await stages.run(`rl/${f}-s${seed}`, key, () => finished(f, seed), async () => {
        log(`study [${elapsed()}]: training ${f} seed ${seed}`);
        rmSync(dir, { recursive: true, force: true });
        if (f === 'batch-kl') {
          const { trainBatchKl } = await import('../batch-kl.ts');
          await trainBatchKl(agentConfig as ReturnType<typeof resolveBatchKlConfig>, { log });
          return;
        }
        const envs = makeVec(c.env.id, { numEnvs: c.numEnvs, kwargs, autoresetMode: 'same-step' });
        try {
          const ctx = { envs, base, baseDir, tokenizer, out: dir, progressBar: false, log, meta: { study: 'online-offline' } };
          if (f === 'ppo-kl') await (await import('../rl/ppo-kl.ts')).trainPpoKl(agentConfig as ReturnType<typeof resolvePpoKlConfig>, ctx);
          else await (await import('../rl/kl-budget.ts')).trainKlBudget(agentConfig as ReturnType<typeof resolveKlBudgetConfig>, ctx);
        } finally {
          await envs.close();
        }
      }, log);
    }
  }

  // ---- 3. evaluation: the base policy and every kept checkpoint on the same dialogs
  const baseRows = await evalStage('eval/base', baseKey, c.eval, path.join(evalDir, 'base.jsonl'), false, baseAgent);
  const points: CurvePoint[] = [];
  for (const f of FAMILIES) {
    // The steps every seed kept (the same schedule for all seeds).
    const bySeedSteps = c.seeds.map(s => keptCheckpoints(runDir(f, s)));
    const steps = bySeedSteps[0]!.filter(st => bySeedSteps.every(xs => xs.includes(st)));
    for (const step of steps) {
      const bySeed: DialogRow[][] = [];
      for (const seed of c.seeds) {
        const dir = runDir(f, seed), ck = `checkpoint-${step}`;
        const key = [dir, ck, readMeta(path.join(dir, ck, doneFile(f)))];
        bySeed.push(await evalStage(`eval/${f}-s${seed}-${step}`, key, c.eval, path.join(evalDir, `${slug(`${f}-s${seed}-${step}`)}.jsonl`), false, async () => {
          if (f === 'batch-kl') {
            const m = await loadModel(path.join(dir, ck));
            return { run: { agent: new ModelAgent(m, `${f} s${seed}`, { kind: 'batch-kl' }) }, dispose: () => m.dispose() };
          }
          const agent = await loadRlAgent(dir, base, { name: `${f} s${seed}`, maxTokens: c.episodeTokens, checkpoint: ck });
          return { run: { agent }, dispose: () => agent.dispose() };
        }));
      }
      points.push(point(f, step, [...c.seeds], bySeed));
    }
  }

  const basePoint = point('base', 0, [], [baseRows]);
  const claims = onlineOfflineClaims(basePoint, points);
  const results: OnlineOfflineResults = {
    format: 'colloquy-online-offline-results', version: 1, title: c.title, created: new Date().toISOString(), config: c,
    backend: backendInfo()?.name ?? null, loadAverage: os.loadavg(), stages: stages.timing, seeds: [...c.seeds],
    logged: { dialogs: loggedRows.length, proxy: perDialog([loggedRows], r => r.reward), gold: perDialog([loggedRows], goldOf) },
    base: basePoint, points, claims,
  };
  writeFileSync(path.join(out, 'results.json'), JSON.stringify(results, jsonNumbers, 1) + '\n');
  base.dispose();
  log(`study: ${claims.filter(x => x.verdict === 'reproduced').length} of ${claims.length} comparisons reproduced`);
  return { results, out };
}
