/**
 * The experiment behind `colloquy compare`: the "mightn't do" imitation baseline against
 * KL-controlled RL agents, top to bottom.
 *
 *   1. base model (the env's student, the shared tokenizer): reuse, or pretrain it;
 *   2. demonstrator D: trained on MathDial by the pretraining code (known probabilities);
 *   3. D plays N dialogs in the env: the imitators' training and held-out transcripts;
 *   4. K imitators on D's tokens only (member 0 = the single imitator); posterior weights from the
 *      held-out NLL, plausible set, conservative reference;
 *   5. RL: ppo-kl (β) and kl-budget (B) against the single imitator and against the conservative
 *      reference, for every seed (agents/rl trainers);
 *   6. evaluation of every agent (D, the imitator, the conservative baseline, each RL run) on the
 *      same dialogs: rows + summaries with bootstrap intervals over dialogs;
 *   7. results.json and report.html: per RL setting its per-seed results and intervals over seeds
 *      (resampling seeds, then dialogs), per-token KL histograms, KL on empty turns against the
 *      rest, per-episode KL against return.
 *
 * Each stage writes into the output folder and records a hash of the settings it depends on
 * (`stages.json`); a rerun reuses every stage whose settings did not change (`fresh` redoes all).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { VectorEnv } from '../../env/core.ts';
import { makeVec } from '../../env/index.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import type { ExperimentConfig } from '../../configs/experiments/schema.ts';
import { resolveKlBudgetConfig, resolvePpoKlConfig } from '../../configs/agents/schema.ts';
import type { TransformerLM } from '../../models/lm.ts';
import { isCheckpoint, loadCheckpoint } from '../../models/checkpoint.ts';
import { pretrain } from '../../models/pretrain.ts';
import { backendInfo } from '../../models/backend.ts';
import { readTranscripts, sampleDemonstrator, trainDemonstrator } from '../imitation/demonstrator.ts';
import { loadEnsemble, trainImitators, type LoadedEnsemble } from '../imitation/imitators.ts';
import { ConservativeAgent, ModelHelper } from '../imitation/conservative.ts';
import { ConservativeReference, type ReferencePolicy } from '../imitation/reference.ts';
import { ModelAgent, type EvalAgent } from './agents.ts';
import { evalAgents, openVecEnv, slug, type AgentResult } from './run.ts';
import { loadRlAgent } from './rl-agent.ts';
import type { EvalReference, DialogRow } from './evaluate.ts';
import type { EvalSummary, SeedsSummary } from './summary.ts';
import { summarize, summarizeOverSeeds } from './summary.ts';
import { unpackF32 } from './turns.ts';
import { bootstrapOverSeeds, type Interval } from './stats.ts';
import { Stages, deepMergeAll, hash, jsonNumbers, readJson, readMeta } from './stages.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';
import { METRICS as M, UPDATE_KEY } from '../metrics.ts';

export interface CompareOptions {
  config: ExperimentConfig;
  /** Output folder (default: config.out under the project root). */
  out?: string;
  dataDir: string | null;
  /** Redo every stage. */
  fresh?: boolean;
  log?: (line: string) => void;
}

export interface RlRunInfo {
  name: string;
  algo: 'ppo-kl' | 'kl-budget';
  reference: 'imitator' | 'conservative';
  /** β for ppo-kl, B (nats per episode) for kl-budget. */
  coef: number;
  seed: number;
  dir: string;
  /** Whether the trainer recorded that it used the requested reference (see reference.ts). */
  referenceHonoured: boolean | null;
  updates: number;
  /** Env steps the run took (its budget is the agent config's `steps`), and why it stopped. */
  envSteps: number | null;
  stoppedBy: string | null;
  seconds: number;
}

export interface AgentEntry {
  name: string;
  /** demonstrator | imitator | conservative | ppo-kl | kl-budget */
  group: string;
  reference: string | null;
  coef: number | null;
  seed: number | null;
  summary: EvalSummary & { seconds: number };
}

/** One RL setting (algorithm, coefficient, reference) over its training seeds. */
export interface SettingEntry {
  /** The agents' name without the seed (`ppo-kl β=0.05 [imitator]`). */
  name: string;
  algo: 'ppo-kl' | 'kl-budget';
  reference: 'imitator' | 'conservative';
  coef: number;
  seeds: number[];
  /** The agent entry of each seed, in `seeds` order. */
  agents: string[];
  /** Intervals over seeds (seeds resampled, then dialogs within each). */
  overSeeds: SeedsSummary;
  /**
   * The mightn't-do bound (Cohen, Hutter & Nanda): KL per episode to D minus KL per episode to the
   * reference the setting was constrained to (imitator, or the conservative ℓ with θ on help), over
   * seeds. ≤ 0: the constraint bounds the KL to D; > 0: it does not.
   */
  boundGap: Interval;
}

/** Bin edges (nats) of the per-token KL histograms; the last bin is open. */
export const KL_BINS = [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];

export interface ExperimentResults {
  format: 'colloquy-compare-results';
  version: 2;
  title: string;
  created: string;
  config: ExperimentConfig;
  backend: string | null;
  /** Wall-clock and CPU seconds of each stage (CPU: this process, worker threads included), and the load average at the end. */
  stages: Record<string, { seconds: number; cpuSeconds: number; reused: boolean }>;
  loadAverage: number[];
  models: {
    base: string;
    demonstrator: { dir: string; valPerplexity: number | null };
    imitators: { dir: string; heldOutNll: number[]; demonstratorHeldOutNll: number | null; weights: number[]; plausible: number[]; alpha: number; posteriorScale: number };
  };
  samples: { train: number; heldOut: number; meanReward: number };
  rl: RlRunInfo[];
  agents: AgentEntry[];
  /** Per RL setting: its seeds and intervals over seeds. */
  settings: SettingEntry[];
  /** Per agent, the share of its tokens whose KL to the imitator falls in each bin [lo, hi) of KL_BINS (hi null: open). */
  klHistogram: { agent: string; lo: number; hi: number | null; count: number; share: number }[];
  /** Learning curves: per RL run, per update, a few metrics from its metrics.jsonl. */
  curves: { run: string; algo: string; reference: string; coef: number; seed: number; update: number; reward: number; kl: number; empty: number }[];
  /** Per-dialog values for the ECDF and the side-by-side transcripts. */
  dialogs: { agent: string; dialog: number; reward: number; emptyShare: number; shortShare: number; klImitator: number; klDemonstrator: number; helpRequests: number }[];
  transcripts: { agent: string; dialog: number; reward: number; turns: { role: 'teacher' | 'student'; text: string; helped?: boolean }[] }[];
  referenceNames: string[];
}

/** The base model folder: `preferred` when it holds a checkpoint, else `dir` (relative to the project root). */
export async function selectBase(base: ExperimentConfig['base']): Promise<{ dir: string; preferred: boolean }> {
  if (base.preferred) {
    const dir = path.resolve(PROJECT_ROOT, base.preferred);
    if (await isCheckpoint(dir)) return { dir, preferred: true };
  }
  return { dir: path.resolve(PROJECT_ROOT, base.dir), preferred: false };
}



export async function runExperiment(opts: CompareOptions): Promise<{ results: ExperimentResults; out: string }> {
  const c = opts.config;
  const log = opts.log ?? ((l: string) => console.log(l));
  const out = path.resolve(PROJECT_ROOT, opts.out ?? c.out);
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'config.json'), JSON.stringify(c, null, 2) + '\n');
  const stages = new Stages(out, opts.fresh === true);
  const t0 = Date.now();
  const since = () => `${((Date.now() - t0) / 60000).toFixed(1)} min`;

  // ---- 1. base model (base.preferred, e.g. data/models/dialog, when it holds a checkpoint)
  const { dir: baseDir, preferred } = await selectBase(c.base);
  if (preferred) log(`compare: base model ${baseDir} (base.preferred)`);
  if (!(await isCheckpoint(baseDir))) {
    log(`compare: no base model at ${baseDir}: pretraining one on ${c.base.corpus} (${c.base.minutes} min)`);
    const tb = Date.now(), cb = process.cpuUsage();
    await pretrain({
      out: baseDir, configFile: c.base.config ? path.resolve(PROJECT_ROOT, c.base.config) : undefined, dataDir: opts.dataDir,
      overrides: { train: { corpus: c.base.corpus, minutes: c.base.minutes } }, log, progressBar: false,
    });
    const cpu = process.cpuUsage(cb);
    stages.timing.base = { seconds: (Date.now() - tb) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, reused: false };
  } else stages.timing.base = { seconds: 0, cpuSeconds: 0, reused: true };
  const tokenizer = loadDialogTokenizer(baseDir);
  const kwargs: Record<string, unknown> = { ...c.env.kwargs, model: baseDir, actionMode: 'token' };
  const maxTokens = typeof kwargs.maxTokens === 'number' ? kwargs.maxTokens : 256;
  const baseKey = { baseDir, baseMeta: readMeta(baseDir) };

  // ---- 2. demonstrator
  const demoDir = path.join(out, 'models', 'demonstrator');
  await stages.run('demonstrator', { baseKey, d: c.demonstrator }, () => existsSync(path.join(demoDir, 'demonstrator.json')), async () => {
    log(`compare [${since()}]: training the demonstrator D`);
    await trainDemonstrator({ baseDir, out: demoDir, init: c.demonstrator.init, model: c.demonstrator.model, train: c.demonstrator.train, dataDir: opts.dataDir, log });
  }, log);
  const demonstrator = (await loadCheckpoint(demoDir)).model;
  const demoInfo = JSON.parse(readFileSync(path.join(demoDir, 'demonstrator.json'), 'utf8')) as { valPerplexity: number | null };

  // ---- 3. D's transcripts
  const trainFile = path.join(out, 'data', 'demonstrator-train.jsonl');
  const heldFile = path.join(out, 'data', 'demonstrator-heldout.jsonl');
  const sampleKey = { demoHash: hash(readMeta(demoDir)), s: c.samples, env: c.env };
  await stages.run('samples', sampleKey, () => existsSync(trainFile) && existsSync(heldFile), async () => {
    log(`compare [${since()}]: D plays ${c.samples.train} + ${c.samples.heldOut} dialogs`);
    await sampleDemonstrator({ demonstrator, env: c.env.id, kwargs, episodes: c.samples.train, seed: c.samples.seed, numEnvs: c.samples.numEnvs, out: trainFile, log });
    await sampleDemonstrator({ demonstrator, env: c.env.id, kwargs, episodes: c.samples.heldOut, seed: c.samples.seed + c.samples.train + 1000, numEnvs: c.samples.numEnvs, out: heldFile, log });
  }, log);
  const trainT = await readTranscripts(trainFile), heldT = await readTranscripts(heldFile);

  // ---- 4. imitators
  const ensDir = path.join(out, 'models', 'imitators');
  const imKey = { sampleKey, samplesHash: hash([trainT.length, heldT.length, readMeta(demoDir)]), im: { ...c.imitators, alpha: undefined, posteriorScale: undefined, helpMode: undefined } };
  await stages.run('imitators', imKey, () => existsSync(path.join(ensDir, 'ensemble.json')), async () => {
    log(`compare [${since()}]: training ${c.imitators.k} imitators on D's transcripts`);
    const tokJson = JSON.parse(readFileSync(path.join(baseDir, 'tokenizer.json'), 'utf8')) as unknown;
    await trainImitators({
      out: ensDir, k: c.imitators.k, bootstrap: c.imitators.bootstrap, seed: c.imitators.seed,
      model: { contextLength: Math.max(maxTokens, 64), ...c.imitators.model }, train: { seqLength: maxTokens, ...c.imitators.train },
      ...(c.imitators.init === 'base' || (c.imitators.init === 'preferred-base' && preferred) ? { initDir: baseDir } : {}),
      settings: { alpha: c.imitators.alpha, posteriorScale: c.imitators.posteriorScale },
      tokenizer: { json: tokJson, vocabSize: tokenizer.vocabSize, bos: tokenizer.special.endOfText }, demonstrator, log,
      ...(c.imitators.includeDemonstrator ? { demonstratorDir: demoDir } : {}),
    }, trainT, heldT);
  }, log);
  const ens: LoadedEnsemble = await loadEnsemble(ensDir, { alpha: c.imitators.alpha, posteriorScale: c.imitators.posteriorScale });
  const imitator = ens.single;
  const imitatorDir = path.join(ensDir, ens.file.members[ens.file.single]!.dir);
  log(`compare: ensemble: held-out NLL ${ens.file.members.map(m => m.heldOutNll.toFixed(3)).join(', ')}; weights ${ens.file.weights.map(w => w.toFixed(3)).join(', ')}; plausible {${ens.file.plausible.join(', ')}}`);

  // ---- 5. RL runs
  const rlRuns: RlRunInfo[] = [];
  // kl-budget mixes its proposal with the reference, which must be a distribution over the
  // vocabulary: it gets the conservative reference renormalised (ℓ/(1−θ), no HELP); ppo-kl the
  // full one (ℓ, θ on HELP).
  const normalised = new ConservativeReference(ens.models, ens.file.plausible, undefined, { normalise: true });
  const refObj = (r: 'imitator' | 'conservative', algo: 'ppo-kl' | 'kl-budget'): ReferencePolicy | TransformerLM =>
    (r === 'imitator' ? imitator : algo === 'kl-budget' ? normalised : ens.conservative);
  const settings: { algo: 'ppo-kl' | 'kl-budget'; coef: number }[] = [
    ...c.rl.ppoKl.betas.map(b => ({ algo: 'ppo-kl' as const, coef: b })),
    ...c.rl.klBudget.budgets.map(b => ({ algo: 'kl-budget' as const, coef: b })),
  ];
  const imHash = hash([readMeta(path.join(ensDir, 'member-0')), ens.file.plausible, ens.file.settings]);
  for (const s of settings) {
    for (const reference of c.rl.references) {
      for (const seed of c.rl.seeds) {
        const name = `${s.algo} ${s.algo === 'ppo-kl' ? 'β' : 'B'}=${s.coef} [${reference}] s${seed}`;
        const dir = path.join(out, 'rl', slug(`${s.algo}-${reference}-${s.coef}-s${seed}`));
        const agentConfig = s.algo === 'ppo-kl'
          ? resolvePpoKlConfig(deepMergeAll(c.rl.ppoKl.config, { seed, numEnvs: c.rl.numEnvs, env: { id: c.env.id, kwargs }, kl: { ...((c.rl.ppoKl.config.kl as object | undefined) ?? {}), beta: s.coef } }))
          : resolveKlBudgetConfig(deepMergeAll(c.rl.klBudget.config, { seed, numEnvs: c.rl.numEnvs, env: { id: c.env.id, kwargs }, budget: s.coef }));
        const r = await stages.run(`rl/${path.basename(dir)}`, { imHash, agentConfig, reference }, () => existsSync(path.join(dir, 'checkpoint', 'trainer.json')), async () => {
          log(`compare [${since()}]: training ${name}`);
          const { rmSync } = await import('node:fs');
          rmSync(dir, { recursive: true, force: true });
          const envs: VectorEnv = makeVec(c.env.id, { numEnvs: c.rl.numEnvs, kwargs, autoresetMode: 'same-step' });
          try {
            const ctx = {
              envs, base: imitator, baseDir: imitatorDir, tokenizer, out: dir, progressBar: false, log,
              meta: { experiment: path.basename(out), requestedReference: reference },
              reference: refObj(reference, s.algo),
              // What rebuilds this reference (checkpoint/agent.json), so `eval checkpoint:DIR` runs the policy as trained.
              ...(reference === 'conservative' ? {
                referenceSpec: { kind: 'conservative' as const, ensemble: ensDir, members: [...ens.file.plausible], normalise: s.algo === 'kl-budget', name: (refObj(reference, s.algo) as ReferencePolicy).name },
              } : {}),
            };
            const { trainPpoKl } = await import('../rl/ppo-kl.ts');
            const { trainKlBudget } = await import('../rl/kl-budget.ts');
            return s.algo === 'ppo-kl'
              ? await trainPpoKl(agentConfig as Parameters<typeof trainPpoKl>[0], ctx)
              : await trainKlBudget(agentConfig as Parameters<typeof trainKlBudget>[0], ctx);
          } finally {
            await envs.close();
          }
        }, log);
        const runCfg = readJson(path.join(dir, 'config.json')) as { meta?: Record<string, unknown> } | null;
        // The trainer records the reference it used as meta.referenceName (see reference.ts).
        const used = runCfg?.meta?.referenceName;
        const wanted = refObj(reference, s.algo);
        const honoured = reference === 'imitator' || (typeof used === 'string' && used === (wanted as ReferencePolicy).name);
        const trainer = readJson(path.join(dir, 'checkpoint', 'trainer.json')) as { update?: number; seconds?: number; envSteps?: number; stoppedBy?: string } | null;
        rlRuns.push({
          name, algo: s.algo, reference, coef: s.coef, seed, dir, referenceHonoured: honoured, updates: trainer?.update ?? r.value?.updates ?? 0,
          envSteps: trainer?.envSteps ?? null, stoppedBy: trainer?.stoppedBy ?? null, seconds: trainer?.seconds ?? 0,
        });
      }
    }
  }

  // ---- 6. evaluation
  const references: EvalReference[] = [
    { name: 'imitator', ref: imitator }, { name: 'demonstrator', ref: demonstrator }, { name: 'conservative', ref: ens.conservative },
  ];
  const evalDir = path.join(out, 'eval');
  // rows: the version of the rows' fields (2: empty/short turns, per-token and per-turn KL, repetition).
  const evalKey = { e: c.eval, env: c.env, imHash, demo: readMeta(demoDir), helpMode: c.imitators.helpMode, rows: 2 };
  const entries: { name: string; group: string; reference: string | null; coef: number | null; seed: number | null; make: () => Promise<EvalAgent>; key: unknown }[] = [
    { name: 'demonstrator D', group: 'demonstrator', reference: null, coef: null, seed: null, key: 'D', make: async () => new ModelAgent(demonstrator, 'demonstrator D', { kind: 'demonstrator' }) },
    { name: 'imitator', group: 'imitator', reference: null, coef: null, seed: null, key: 'I', make: async () => new ModelAgent(imitator, 'imitator', { kind: 'imitator' }) },
    {
      name: 'conservative', group: 'conservative', reference: null, coef: null, seed: null, key: 'C',
      make: async () => new ConservativeAgent({
        models: ens.models, members: ens.file.plausible, helper: new ModelHelper(demonstrator), helpMode: c.imitators.helpMode,
        turnEnd: [tokenizer.special.student, tokenizer.special.endOfText], name: 'conservative',
      }),
    },
    ...rlRuns.map(r => ({
      name: r.name, group: r.algo, reference: r.reference, coef: r.coef, seed: r.seed, key: [r.dir, readMeta(path.join(r.dir, 'checkpoint', 'trainer.json'))],
      make: async () => loadRlAgent(r.dir, imitator, { name: r.name, maxTokens, reference: r.referenceHonoured ? refObj(r.reference, r.algo) : imitator }),
    })),
  ];
  const results: AgentResult[] = [];
  for (const e of entries) {
    const rowsFile = path.join(evalDir, `${slug(e.name)}.jsonl`);
    const st = await stages.run(`eval/${slug(e.name)}`, { evalKey, key: e.key }, () => existsSync(rowsFile), async () => {
      log(`compare [${since()}]: evaluating ${e.name}`);
      const agent = await e.make();
      try {
        const [res] = await evalAgents({
          runs: [{ agent, name: e.name }], references, baseDir, demonstrator, episodes: c.eval.episodes, seed: c.eval.seed,
          // A server runs its own base model (it must be this one): the local path is not sent.
          openEnv: () => openVecEnv({ env: c.env.id, kwargs: c.eval.server ? withoutModel(kwargs) : kwargs, numEnvs: c.eval.numEnvs, server: c.eval.server ?? undefined }),
          out: evalDir, transcripts: true, shortTurnTokens: c.eval.shortTurnTokens, ngramMax: c.eval.ngramMax, log,
        });
        return res!;
      } finally { agent.dispose?.(); }
    }, log);
    if (st.value) results.push(st.value);
    else {
      const rows = readFileSync(rowsFile, 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l) as DialogRow);
      results.push({ name: e.name, rows, summary: { ...summarize(rows), agent: e.name, seconds: 0, rewardConfig: null } });
    }
  }

  // ---- 7. results
  const byName = new Map(results.map(r => [r.name, r]));
  const agents: AgentEntry[] = entries.map(e => ({ name: e.name, group: e.group, reference: e.reference, coef: e.coef, seed: e.seed, summary: byName.get(e.name)!.summary }));
  const curves: ExperimentResults['curves'] = [];
  for (const r of rlRuns) {
    const f = path.join(r.dir, 'metrics.jsonl');
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n').filter(Boolean)) {
      const m = JSON.parse(line) as Record<string, number | null>;
      curves.push({
        run: r.name, algo: r.algo, reference: r.reference, coef: r.coef, seed: r.seed, update: Number(m[UPDATE_KEY] ?? 0),
        reward: num(m[M.rewardMean]), kl: num(m[M.klExact]), empty: num(m[M.emptyTeacherTurnShare]),
      });
    }
  }
  const settingsOut: SettingEntry[] = [];
  for (const s of settings) {
    for (const reference of c.rl.references) {
      const runs = rlRuns.filter(r => r.algo === s.algo && r.coef === s.coef && r.reference === reference);
      if (!runs.length) continue;
      settingsOut.push({
        name: runs[0]!.name.replace(/ s-?\d+$/, ''), algo: s.algo, reference, coef: s.coef, seeds: runs.map(r => r.seed), agents: runs.map(r => r.name),
        overSeeds: summarizeOverSeeds(runs.map(r => byName.get(r.name)!.rows)),
        boundGap: bootstrapOverSeeds(runs.map(r => {
          const rows = byName.get(r.name)!.rows;
          return { num: rows.map(d => (d.kl.demonstrator ?? NaN) - (d.kl[reference] ?? NaN)), den: rows.map(() => 1) };
        }), { resamples: 2000, seed: 0 }),
      });
    }
  }
  const klHistogram: ExperimentResults['klHistogram'] = [];
  for (const r of results) {
    const counts = KL_BINS.map(() => 0);
    let total = 0;
    for (const d of r.rows) {
      const packed = d.klTokens?.imitator;
      if (!packed) continue;
      for (const x of unpackF32(packed)) {
        if (!Number.isFinite(x)) continue;
        let k = KL_BINS.length - 1;
        while (k > 0 && x < KL_BINS[k]!) k--;
        counts[k]!++; total++;
      }
    }
    if (total) KL_BINS.forEach((lo, k) => klHistogram.push({ agent: r.name, lo, hi: KL_BINS[k + 1] ?? null, count: counts[k]!, share: counts[k]! / total }));
  }
  const dialogs: ExperimentResults['dialogs'] = results.flatMap(r => r.rows.map(d => ({
    agent: r.name, dialog: d.dialog, reward: d.reward, emptyShare: d.emptyShare, shortShare: d.shortShare ?? NaN, klImitator: d.kl.imitator ?? NaN, klDemonstrator: d.kl.demonstrator ?? NaN, helpRequests: d.helpRequests,
  })));
  const transcripts: ExperimentResults['transcripts'] = [];
  for (const r of results) {
    for (const d of r.rows.slice(0, c.report.transcripts)) transcripts.push({ agent: r.name, dialog: d.dialog, reward: d.reward, turns: transcriptTurns(d, tokenizer) });
  }
  const meanReward = trainT.reduce((a, t) => a + t.reward, 0) / Math.max(1, trainT.length);
  const results_: ExperimentResults = {
    format: 'colloquy-compare-results', version: 2, title: c.report.title, created: new Date().toISOString(), config: c,
    backend: backendInfo()?.name ?? null, stages: stages.timing, loadAverage: os.loadavg(),
    models: {
      base: baseDir,
      demonstrator: { dir: demoDir, valPerplexity: demoInfo.valPerplexity },
      imitators: {
        dir: ensDir, heldOutNll: ens.file.members.map(m => m.heldOutNll), demonstratorHeldOutNll: ens.file.demonstratorHeldOutNll ?? null,
        weights: ens.file.weights, plausible: ens.file.plausible, alpha: ens.file.settings.alpha, posteriorScale: ens.file.settings.posteriorScale,
      },
    },
    samples: { train: trainT.length, heldOut: heldT.length, meanReward },
    rl: rlRuns, agents, settings: settingsOut, klHistogram, curves, dialogs, transcripts, referenceNames: references.map(r => r.name),
  };
  writeFileSync(path.join(out, 'results.json'), JSON.stringify(results_, jsonNumbers, 1) + '\n');
  ens.dispose();
  demonstrator.dispose();
  log(`compare [${since()}]: results in ${path.join(out, 'results.json')}`);
  return { results: results_, out };
}

/** The turns of an evaluated dialog after the prompt, teacher tokens the helper wrote marked. */
function transcriptTurns(d: DialogRow, tok: { decode(ids: number[]): string; special: { student: number; teacher: number; endOfText: number } }): { role: 'teacher' | 'student'; text: string; helped?: boolean }[] {
  if (!d.tokens || !d.agentPositions) return d.teacherTexts.map(t => ({ role: 'teacher' as const, text: t }));
  const agent = new Set(d.agentPositions), helped = new Set(d.helpedPositions ?? []);
  const first = d.agentPositions[0] ?? d.tokens.length;
  const out: { role: 'teacher' | 'student'; text: string; helped?: boolean }[] = [];
  let role: 'teacher' | 'student' = 'teacher';
  let buf: number[] = [], anyHelped = false;
  const flush = () => { out.push({ role, text: tok.decode(buf), ...(role === 'teacher' && anyHelped ? { helped: true } : {}) }); buf = []; anyHelped = false; };
  for (let i = first; i < d.tokens.length; i++) {
    const t = d.tokens[i]!;
    if (agent.has(i) && role !== 'teacher') { flush(); role = 'teacher'; }
    if (!agent.has(i) && role !== 'student') { flush(); role = 'student'; }
    if (t === tok.special.student || t === tok.special.teacher || t === tok.special.endOfText) continue;
    if (helped.has(i)) anyHelped = true;
    buf.push(t);
  }
  flush();
  return out.filter((t, i) => t.text.length > 0 || t.role === 'teacher' || i === out.length - 1);
}

function withoutModel(kwargs: Record<string, unknown>): Record<string, unknown> {
  const { model: _model, ...rest } = kwargs;
  return rest;
}



function num(x: number | null | undefined): number { return typeof x === 'number' && Number.isFinite(x) ? x : NaN; }


