/**
 * bench/train: end-to-end training throughput of the RL agents on TeacherStudent-v0 (dialogs in
 * process, the base model as base policy and student), against a PyTorch 2.13 reference of the same
 * ppo-kl loop in the same run, and against today's measured baseline (bench/baseline/train.json).
 *
 *   node bin/run.mjs bench/train.ts [--algo ppo-kl|kl-budget|both] [--updates 3] [--num-envs 16,64]
 *        [--model DIR] [--set JSON] [--no-torch] [--torch-threads 1] [--baseline FILE]
 *        [--student base] [--rss-updates 20 [--rss-envs 64]] [--json]
 *
 * For each number of dialogs and each algorithm (its shipped config configs/agents/<algo>.json, only
 * the number of dialogs and of updates set by the bench, and the env's student: `--student`, default
 * `base`, the base model at the env's temperature as in Cohen et al., which the reference mirrors):
 * - ours: agent token-steps per second end to end (wall) and per CPU-second of this process (less
 *   sensitive to other processes on a shared machine), the split of wall time between the env
 *   (student replies, rewards), the agent's forward passes during rollouts (policy + base model,
 *   KV-cached), rollout bookkeeping and updates (values, PPO epochs), and the process's RSS;
 * - ppo-kl only: the PyTorch reference (bench/reference/rl_reference.py, torch 2.13 CPU from the
 *   bench venv .venv-bench, see bench/reference/venv.ts) on the same checkpoint, prompt, env
 *   settings and PPO config, its steps/s by wall and per CPU-second, and the ratios ours / PyTorch.
 *   The reference's reward is a stub of ~zero cost (VADER is not modelled): the bench measures the
 *   cost of our reward per reply beside it, so that the share it takes of ours is known;
 * - the ratio to the baseline figure of the same algorithm and number of dialogs.
 * `--rss-updates N` instead runs ppo-kl at `--rss-envs` dialogs (default 64) for N updates and
 * prints the RSS after each (min, max, growth), to show whether memory stays flat.
 * The load average is printed beside every figure: on a shared machine other processes slow them.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../models/backend.ts';
import { makeVec } from '../env/index.ts';
import { loadDialogModel, sampleRows } from '../env/dialog-model.ts';
import { kvShareStats } from '../models/sampler.ts';
import { COHEN_PROMPT, TeacherStudentKwargs } from '../env/teacher-student.ts';
import { createDialogReward } from '../env/dialog-rewards.ts';
import { resolveEnvContext } from '../env/context.ts';
import { resolveAgentConfig, type Algo, type PpoKlConfig } from '../configs/agents/schema.ts';
import { deepMerge, validateConfig } from '../core/config.ts';
import { Rng } from '../core/rng.ts';
import type { Metrics } from '../agents/rl/run.ts';
import { PROJECT_ROOT, defaultModelDir } from '../core/paths.ts';
import { METRICS as M } from '../agents/metrics.ts';
import { benchPython } from './reference/venv.ts';

const { values } = parseArgs({
  options: {
    algo: { type: 'string', default: 'both' }, updates: { type: 'string', default: '3' }, 'num-envs': { type: 'string', default: '16,64' },
    model: { type: 'string' }, set: { type: 'string' }, backend: { type: 'string', default: 'auto' },
    'no-torch': { type: 'boolean' }, 'torch-threads': { type: 'string', default: '1' },
    baseline: { type: 'string', default: path.join(PROJECT_ROOT, 'bench', 'baseline', 'train.json') },
    student: { type: 'string', default: 'base' }, 'rss-updates': { type: 'string', default: '0' }, 'rss-envs': { type: 'string', default: '64' }, json: { type: 'boolean' },
  },
});
const info = await initBackend(values.backend as 'auto');
const modelDir = path.resolve(values.model ?? defaultModelDir());
const { lm, tokenizer } = await loadDialogModel(modelDir);
const algos: Algo[] = values.algo === 'both' ? ['ppo-kl', 'kl-budget'] : [values.algo as Algo];
const updates = Number(values.updates);
const envCounts = values['num-envs'].split(',').map(Number);
const torchThreads = Number(values['torch-threads']);
const load = () => os.loadavg().map(x => x.toFixed(2)).join(' ');
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const log = (s: string) => { if (!values.json) console.log(s); };
log(`bench/train: TeacherStudent-v0 (student: ${values.student}), ${updates} updates per run, base ${modelDir} (${lm.numParams.toLocaleString('en')} parameters), backend ${info.name}, ${os.cpus().length} cores, load average ${load()}`);

interface BaselineFigure { algo: string; numEnvs: number; stepsPerSec: number; stepsPerCpuSec?: number; loadAverage: number[] }
interface Baseline { command: string; commit: string; date: string; figures: BaselineFigure[]; rerun?: { figures: BaselineFigure[] } }
const baseline: Baseline | null = existsSync(values.baseline) ? JSON.parse(readFileSync(values.baseline, 'utf8')) as Baseline : null;
if (baseline) log(`baseline: ${path.relative(PROJECT_ROOT, values.baseline)} (commit ${baseline.commit.slice(0, 7)}, ${baseline.date}: \`${baseline.command}\`)`);

function configFor(algo: Algo, numEnvs: number, nUpdates: number) {
  // The shipped config of the algorithm (configs/agents/<algo>.json), with the bench's sizes.
  const file = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'configs', 'agents', `${algo}.json`), 'utf8')) as object;
  // --rss-updates: the updates end the run, so the env-step budget is set far above what they take
  // (otherwise the shipped budget, which kl-budget's schedules are shares of, stays).
  const steps = Number(values['rss-updates']) > 0 ? { steps: nUpdates * numEnvs * 1024 } : {};
  return resolveAgentConfig(deepMerge(file, { algo, numEnvs, updates: nUpdates, ...steps, minutes: 0, samples: 0, env: { kwargs: { student: values.student } }, ...(values.set ? JSON.parse(values.set) as object : {}) }), algo);
}

interface OurRun { algo: Algo; numEnvs: number; steps: number; wall: number; cpu: number; history: Metrics[]; rss: number[]; load: string; sharedTokens: number }

/** Our trainer on the shipped config; RSS after each update. */
async function runOurs(algo: Algo, numEnvs: number, nUpdates: number, onUpdate?: (m: Metrics, rss: number) => void): Promise<OurRun> {
  const config = configFor(algo, numEnvs, nUpdates);
  const envs = makeVec(config.env.id, { numEnvs: config.numEnvs, kwargs: { ...config.env.kwargs, model: modelDir }, autoresetMode: 'same-step' });
  const out = path.join(os.tmpdir(), `colloquy-bench-train-${algo}-${process.pid}`);
  const history: Metrics[] = [], rss: number[] = [];
  const t0 = performance.now(), c0 = process.cpuUsage();
  const shared0 = kvShareStats.tokens;
  const ctx = {
    envs, base: lm, baseDir: modelDir, tokenizer, out, progressBar: false, log: () => {},
    onUpdate: (m: Metrics) => { history.push(m); rss.push(process.memoryUsage().rss); onUpdate?.(m, rss[rss.length - 1]!); },
  };
  try {
    if (config.algo === 'ppo-kl') await (await import('../agents/rl/ppo-kl.ts')).trainPpoKl(config, ctx);
    else await (await import('../agents/rl/kl-budget.ts')).trainKlBudget(config, ctx);
  } finally {
    await envs.close();
    rmSync(out, { recursive: true, force: true });
  }
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { algo, numEnvs, steps: history[history.length - 1]![M.agentSteps]!, wall, cpu: (c.user + c.system) / 1e6, history, rss, load: load(), sharedTokens: kvShareStats.tokens - shared0 };
}

/** What the finished dialogs looked like (the two loops should agree on these, up to sampling). */
function dialogShape(turns: number, tokens: number, agentTokens: number, replyTokens: number): string {
  return `per dialog ${turns.toFixed(2)} turns, ${tokens.toFixed(0)} tokens, ${agentTokens.toFixed(0)} agent tokens, ${replyTokens.toFixed(1)} tokens per reply`;
}

function printOurs(r: OurRun): void {
  const sum = (k: string) => r.history.reduce((s, m) => s + (m[k] ?? 0), 0);
  const env = sum(M.envSeconds), fwd = sum(M.agentForwardSeconds), upd = sum(M.updateSeconds), roll = sum(M.rolloutSeconds);
  const pct = (x: number) => `${(100 * x / r.wall).toFixed(1)}%`;
  const last = r.history[r.history.length - 1]!;
  log(`\n${r.algo} @ ${r.numEnvs} dialogs, ours: ${r.steps} agent token-steps in ${r.wall.toFixed(1)} s = ${(r.steps / r.wall).toFixed(1)} steps/s end to end, ` +
    `${(r.steps / r.cpu).toFixed(1)} steps per CPU-s (${r.cpu.toFixed(1)} CPU-s; ${r.history.length} updates, ${last[M.episodes]} dialogs, ` +
    `${dialogShape(sum(M.turnsMean) / r.history.length, sum(M.episodeTokens) / r.history.length, sum(M.agentTokens) / r.history.length, sum(M.studentTurnTokens) / r.history.length)}) [load ${r.load}]`);
  log(`  env (student replies, rewards)   ${env.toFixed(1).padStart(7)} s  ${pct(env)}`);
  log(`  agent forward (policy + base)    ${fwd.toFixed(1).padStart(7)} s  ${pct(fwd)}`);
  log(`  rollout bookkeeping              ${(roll - env - fwd).toFixed(1).padStart(7)} s  ${pct(roll - env - fwd)}`);
  log(`  updates (values + PPO epochs)    ${upd.toFixed(1).padStart(7)} s  ${pct(upd)}`);
  log(`  other (setup, checkpoint)        ${(r.wall - roll - upd).toFixed(1).padStart(7)} s  ${pct(r.wall - roll - upd)}`);
  log(`  RSS after each update: ${r.rss.map(mib).join(', ')}`);
  log(`  keys and values copied between the student's and the KL reference's rows instead of computed: ${r.sharedTokens.toLocaleString('en')} token positions`);
  const same = (f: BaselineFigure) => f.algo === r.algo && f.numEnvs === r.numEnvs;
  const b = baseline?.figures.find(same), bc = [...(baseline?.figures ?? []), ...(baseline?.rerun?.figures ?? [])].find(f => same(f) && f.stepsPerCpuSec);
  const at = (f: BaselineFigure) => `load ${f.loadAverage.map(x => x.toFixed(2)).join(' ')}`;
  if (b) log(`  against the baseline: ${((r.steps / r.wall) / b.stepsPerSec).toFixed(2)}x by wall (${b.stepsPerSec.toFixed(1)} steps/s at ${at(b)})` +
    (bc ? `, ${((r.steps / r.cpu) / bc.stepsPerCpuSec!).toFixed(2)}x per CPU-second (${bc.stepsPerCpuSec!.toFixed(1)} at ${at(bc)})` : ''));
}

// ---- the PyTorch reference of the ppo-kl loop
interface TorchRun {
  torch: string; threads: number; numEnvs: number; agentSteps: number; seconds: number; cpuSeconds: number; stepsPerSec: number; reward: string;
  turnsPerDialog: number; tokensPerDialog: number; agentTokensPerDialog: number; tokensPerReply: number; updates: { agentSteps: number; episodes: number; rolloutSeconds: number; agentForwardSeconds: number; envSeconds: number; updateSeconds: number; rss: number }[];
}
let python: string | null = null, torchNote = '';
if (!values['no-torch'] && algos.includes('ppo-kl')) {
  const p = benchPython(log);
  if ('error' in p) torchNote = `PyTorch reference skipped: ${p.error}`;
  else python = p.python;
}

function runTorch(numEnvs: number, nUpdates: number): TorchRun | string {
  const c = configFor('ppo-kl', numEnvs, nUpdates) as PpoKlConfig;
  const kwargs = validateConfig(TeacherStudentKwargs, { ...c.env.kwargs, model: modelDir }, 'TeacherStudent-v0 kwargs');
  if (kwargs.actionMode !== 'token' || kwargs.prompt !== 'cohen' || kwargs.student !== 'base') return 'the reference covers token mode, the cohen prompt and the base student only';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'colloquy-bench-rl-'));
  try {
    const settings = path.join(dir, 'settings.json');
    writeFileSync(settings, JSON.stringify({
      modelDir, threads: torchThreads, seed: c.seed, numEnvs, updates: nUpdates, episodesPerUpdate: c.episodesPerUpdate,
      env: { promptIds: tokenizer.encode(COHEN_PROMPT), special: tokenizer.special, maxTokens: kwargs.maxTokens, maxStudentTokens: kwargs.maxStudentTokens, studentTemperature: kwargs.studentTemperature },
      ppo: {
        trainLayers: c.trainLayers, learningRate: c.learningRate, adamEps: c.adamEps, epochs: c.epochs, minibatches: c.minibatches, clip: c.clip,
        gamma: c.gamma, lambda: c.lambda, valueClip: c.valueClip, vfCoef: c.vfCoef, entCoef: c.entCoef, maxGradNorm: c.maxGradNorm,
        whitenAdvantages: c.whitenAdvantages, kl: c.kl,
      },
    }));
    const n = String(torchThreads);
    const r = spawnSync(python!, [path.join(PROJECT_ROOT, 'bench', 'reference', 'rl_reference.py'), settings], {
      encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: n, MKL_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n },
    });
    if (r.status !== 0) return `PyTorch reference failed: ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}`;
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchRun;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function printTorch(t: TorchRun, ours: OurRun | undefined, loadNow: string): void {
  const sum = (k: keyof TorchRun['updates'][number]) => t.updates.reduce((s, u) => s + u[k], 0);
  log(`ppo-kl @ ${t.numEnvs} dialogs, PyTorch ${t.torch} (${t.threads} thread${t.threads > 1 ? 's' : ''}): ${t.agentSteps} agent token-steps in ${t.seconds.toFixed(1)} s = ` +
    `${t.stepsPerSec.toFixed(1)} steps/s, ${(t.agentSteps / t.cpuSeconds).toFixed(1)} steps per CPU-s (${dialogShape(t.turnsPerDialog, t.tokensPerDialog, t.agentTokensPerDialog, t.tokensPerReply)}; reward: ${t.reward}) [load ${loadNow}]`);
  log(`  agent forward ${sum('agentForwardSeconds').toFixed(1)} s, env (students) ${sum('envSeconds').toFixed(1)} s, updates ${sum('updateSeconds').toFixed(1)} s; RSS ${t.updates.map(u => mib(u.rss)).join(', ')}`);
  if (ours) {
    log(`  ratio ours / PyTorch: ${((ours.steps / ours.wall) / t.stepsPerSec).toFixed(2)}x by wall time, ${((ours.steps / ours.cpu) / (t.agentSteps / t.cpuSeconds)).toFixed(2)}x per CPU-second`);
  }
}

/** Our reward's cost per student reply (the reference has none): replies sampled from the base model as the env's student would. */
async function rewardCost(): Promise<{ msPerReply: number; kind: string }> {
  const kind = (configFor('ppo-kl', 16, 1).env.kwargs.reward as string | undefined) ?? 'cohen';
  const cache = resolveEnvContext().cache;
  cache.retain();
  try {
    const reward = await createDialogReward(kind, cache);
    const context = [...tokenizer.encode(`${COHEN_PROMPT} know what a discussion section is for?`), tokenizer.special.student];
    const replies = sampleRows(lm, Array.from({ length: 32 }, () => context), {
      maxTokens: new Array(32).fill(64), temperature: 1, stopTokens: [tokenizer.special.teacher, tokenizer.special.endOfText], rngs: Array.from({ length: 32 }, (_, i) => new Rng(i + 1)),
    }).map(ids => tokenizer.decode(ids.filter(t => t !== tokenizer.special.teacher && t !== tokenizer.special.endOfText)));
    const once = async () => { for (const reply of replies) await reward.compute({ reply, agentUtterance: ' know what a discussion section is for?', history: [], turnIndex: 0 }); };
    await once();
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) await once();
    return { msPerReply: (performance.now() - t0) / (5 * replies.length), kind };
  } finally {
    await cache.release();
  }
}

const results: { ours: OurRun[]; torch: TorchRun[]; reward?: { msPerReply: number; kind: string }; rss?: number[]; note?: string } = { ours: [], torch: [] };
const rssUpdates = Number(values['rss-updates']);
if (rssUpdates > 0) {
  const n = Number(values['rss-envs']);
  log(`\nRSS of ppo-kl @ ${n} dialogs over ${rssUpdates} updates [load ${load()}]:`);
  let k = 0;
  const r = await runOurs('ppo-kl', n, rssUpdates, (m, rss) => {
    const mem = process.memoryUsage(), t = tf.memory();
    log(`  update ${++k}: RSS ${mib(rss)} (JS heap ${mib(mem.heapUsed)}, array buffers ${mib(mem.arrayBuffers)}, ${t.numTensors} TF.js tensors of ${mib(t.numBytes)}), ${m[M.agentSteps]} agent steps so far [load ${load()}]`);
  });
  const first = r.rss[0]!, lo = Math.min(...r.rss), hi = Math.max(...r.rss), end = r.rss[r.rss.length - 1]!;
  log(`  RSS min ${mib(lo)}, max ${mib(hi)}; after update 1 ${mib(first)}, after update ${r.rss.length} ${mib(end)} (${end >= first ? '+' : ''}${mib(end - first)}); ${(r.steps / r.wall).toFixed(1)} steps/s [load ${r.load}]`);
  results.rss = r.rss;
} else {
  if (python) {
    const c = await rewardCost();
    results.reward = c;
    log(`our reward (${c.kind}): ${c.msPerReply.toFixed(3)} ms per student reply (the PyTorch reference's stub costs ~0)`);
  }
  for (const numEnvs of envCounts) {
    for (const algo of algos) {
      const ours = await runOurs(algo, numEnvs, updates);
      results.ours.push(ours);
      printOurs(ours);
      if (algo === 'ppo-kl' && results.reward) {
        const replies = ours.history.reduce((s, m) => s + (m[M.turnsMean] ?? 0) * numEnvs, 0);
        log(`  of which our reward ≈ ${(replies * results.reward.msPerReply / 1000).toFixed(2)} s (≈ ${replies.toFixed(0)} replies × ${results.reward.msPerReply.toFixed(3)} ms)`);
      }
      if (algo === 'ppo-kl' && python) {
        const t = runTorch(numEnvs, updates);
        if (typeof t === 'string') { torchNote = t; log(`  ${t}`); } else { results.torch.push(t); printTorch(t, ours, load()); }
      }
    }
  }
  if (torchNote && !results.torch.length) log(`\n${torchNote}`);
}
results.note = torchNote || undefined;
log(`\nbench/train: load average ${load()} at the end`);
if (values.json) console.log(JSON.stringify({ backend: info, loadAverage: os.loadavg(), ...results, ours: results.ours.map(({ history: _h, ...r }) => ({ ...r, stepsPerSec: r.steps / r.wall })) }));
