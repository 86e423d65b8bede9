/**
 * What every RL training run shares: the training context (envs, base model, tokenizer, run
 * folder), the budget (env steps / updates; minutes cap wall time), dialog metrics of a batch of episodes, the run folder's
 * files (`config.json`, `metrics.jsonl`, `samples.jsonl`, `checkpoint/`), named-tensor files for
 * checkpoints, and the progress display (a bar on a terminal, log lines otherwise).
 */
import { appendFileSync, cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import cliProgress from 'cli-progress';
import type { VectorEnv } from '../../env/core.ts';
import { BadConfig } from '../../core/errors.ts';
import { mean } from '../../core/arrays.ts';
import { METRICS as M, UPDATE_KEY } from '../metrics.ts';
import { isEmptyTurn, isShortTurn } from '../eval/turns.ts';
import type { BpeTokenizer } from '../../models/tokenizer.ts';
import type { TransformerLM } from '../../models/lm.ts';
import type { Episode, KlReference } from './rollout.ts';
import type { ReferenceSpec } from './policy-file.ts';

export interface TrainContext {
  envs: VectorEnv<unknown, unknown>;
  /** The base policy (KL prior); the env's student and base model should be the same model. */
  base: TransformerLM;
  /** Folder of the base model (recorded with the run). */
  baseDir: string;
  /**
   * The KL reference (default: the base model). ppo-kl takes any (e.g. the conservative reference
   * of agents/imitation, with HELP as an extra entry the agent never takes); kl-budget needs a
   * normalised one over the vocabulary.
   */
  reference?: KlReference | TransformerLM;
  /**
   * How to rebuild `reference` (recorded in checkpoint/agent.json, so that eval rebuilds the policy
   * as trained); not needed when the reference is the base model.
   */
  referenceSpec?: ReferenceSpec;
  tokenizer: BpeTokenizer;
  /** Run folder (metrics, samples, checkpoints). */
  out: string;
  /** Continue from `out/checkpoint`. */
  resume?: boolean;
  /** Log lines (default console.log); progress bar on a terminal unless false. */
  log?: (line: string) => void;
  progressBar?: boolean;
  /** Metadata recorded in config.json (backend, server url…). */
  meta?: Record<string, unknown>;
  /** Called after each update with its metrics (tests, benches). */
  onUpdate?: (m: Metrics) => void;
}

export type Metrics = Record<string, number>;

export interface TrainResult {
  updates: number;
  /** Env steps (sub-env steps summed over the envs) of the run. */
  envSteps: number;
  /** What ended it: the budget (steps / updates) or the wall-clock cap. */
  stoppedBy: 'budget' | 'minutes';
  seconds: number;
  history: Metrics[];
  checkpoint: string;
}

/**
 * Dialog metrics of finished episodes: returns (`env/reward_mean` is the mean episode return, the
 * sum of the student's rewards), the mean reward per completed student reply, turns, the shares of
 * empty teacher turns (no word) and short ones (≤ 4 content tokens; both as `eval` counts them), teacher / student turn lengths, and the exact KL to the base policy
 * (the sum over the agent's tokens of KL(π‖p) at each state).
 */
export function dialogMetrics(episodes: readonly Episode<unknown>[]): Metrics {
  const turns = episodes.flatMap(e => e.exchanges);
  const teacherLens = turns.map(t => t.teacherTokens);
  const complete = turns.filter(t => t.student !== null && !t.partial);
  const studentLens = complete.map(t => t.studentTokens);
  const replies = complete.map(t => t.reward);
  const klSums = episodes.map(e => e.kl.reduce((a, b) => a + b, 0));
  return {
    [M.rewardMean]: mean(episodes.map(e => e.return)),
    [M.rewardStd]: Math.sqrt(mean(episodes.map(e => (e.return - mean(episodes.map(x => x.return))) ** 2))),
    [M.replyRewardMean]: mean(replies),
    [M.turnsMean]: mean(episodes.map(e => e.exchanges.length)),
    [M.episodeTokens]: mean(episodes.map(e => e.tokens.length)),
    [M.agentTokens]: mean(episodes.map(e => e.actions.length)),
    [M.terminatedShare]: mean(episodes.map(e => (e.terminated ? 1 : 0))),
    [M.emptyTeacherTurnShare]: mean(turns.map(t => (isEmptyTurn(t.teacher) ? 1 : 0))),
    [M.shortTeacherTurnShare]: mean(teacherLens.map(n => (isShortTurn(n) ? 1 : 0))),
    [M.teacherTurnTokens]: mean(teacherLens),
    [M.studentTurnTokens]: mean(studentLens),
    [M.klExact]: mean(klSums),
    // Only when the env reports a gold reward (kwargs.goldReward).
    ...(turns.some(t => t.gold !== undefined) ? { [M.goldReward]: mean(episodes.map(e => e.exchanges.reduce((a, x) => a + (x.gold ?? 0), 0))) } : {}),
  };
}

/**
 * An episode as a readable transcript (prompt included) with its turns, rewards and KL, and what
 * reproduces it: the token ids, the position of each agent token and the behaviour policy's
 * log-probability of it (1e-6 nats), to check that a reloaded checkpoint acts as in training.
 */
export function episodeRecord(ep: Episode<unknown>, tokenizer: BpeTokenizer): Record<string, unknown> {
  return {
    episode: ep.id,
    env: ep.env,
    return: round(ep.return),
    kl: round(ep.kl.reduce((a, b) => a + b, 0)),
    endedBy: ep.endedBy,
    agentTokens: ep.actions.length,
    exchanges: ep.exchanges.map(x => ({ teacher: x.teacher, student: x.student, reward: round(x.reward), teacherTokens: x.teacherTokens })),
    transcript: tokenizer.decode(ep.tokens),
    tokens: ep.tokens,
    pos: ep.pos,
    logp: ep.logp.map(x => Math.round(x * 1e6) / 1e6),
    startedAt: ep.startedAt,
  };
}

function round(x: number): number { return Math.round(x * 1e4) / 1e4; }

// ------------------------------------------------------------------------------------------------
// Budget

/**
 * The run's budget. The schedule is counted in work, never in time: `progress` ∈ [0, 1] is how far
 * the run is through its env steps (sub-env steps summed over the N envs), or through its updates
 * when `steps` is 0 (whichever is further along when both are set), so the same command and seed
 * give the same schedule on any machine at any load. `minutes` only caps wall time: a run cut by it
 * is a prefix of the uncut run.
 */
export class Budget {
  private readonly t0 = performance.now();
  constructor(readonly limits: { steps: number; updates: number; minutes: number }, readonly elapsedBefore = 0) {}
  get seconds(): number { return this.elapsedBefore + (performance.now() - this.t0) / 1000; }
  progress(update: number, envSteps: number): number {
    const { steps, updates } = this.limits;
    const bySteps = steps > 0 ? envSteps / steps : 0;
    const byUpdates = updates > 0 ? update / updates : 0;
    return Math.min(1, Math.max(bySteps, byUpdates));
  }
  /** The wall-clock cap was reached. */
  get timeUp(): boolean { return this.limits.minutes > 0 && this.seconds >= this.limits.minutes * 60; }
  done(update: number, envSteps: number): boolean { return this.progress(update, envSteps) >= 1 || this.timeUp; }
  /** Why a finished run stopped: its budget, or the wall-clock cap. */
  stoppedBy(update: number, envSteps: number): 'budget' | 'minutes' { return this.progress(update, envSteps) >= 1 ? 'budget' : 'minutes'; }
}

// ------------------------------------------------------------------------------------------------
// Run folder

export class RunFolder {
  readonly metricsFile: string;
  readonly samplesFile: string;
  readonly checkpointDir: string;
  private bar: cliProgress.SingleBar | null = null;
  private barValue = 0;
  private readonly log: (line: string) => void;

  constructor(readonly dir: string, opts: { resume?: boolean; log?: (line: string) => void; progressBar?: boolean; total?: number }) {
    this.metricsFile = path.join(dir, 'metrics.jsonl');
    this.samplesFile = path.join(dir, 'samples.jsonl');
    this.checkpointDir = path.join(dir, 'checkpoint');
    this.log = opts.log ?? (line => console.log(line));
    mkdirSync(dir, { recursive: true });
    if (!opts.resume && existsSync(path.join(this.checkpointDir, 'trainer.json'))) {
      throw new BadConfig(`${dir} already holds a run; pass --resume to continue it or choose another --out`);
    }
    if (opts.progressBar ?? Boolean(process.stderr.isTTY)) {
      this.bar = new cliProgress.SingleBar({
        format: 'train |{bar}| {percentage}% | update {update} | reward {reward} | kl {kl} | {sps} steps/s | ETA {eta_formatted}',
        hideCursor: true, etaBuffer: 10,
      }, cliProgress.Presets.shades_classic);
      this.bar.start(1000, 0, { update: 0, reward: '-', kl: '-', sps: '-' });
    }
  }

  writeConfig(config: unknown, meta: Record<string, unknown>): void {
    writeFileSync(path.join(this.dir, 'config.json'), JSON.stringify({ ...(config as object), meta }, null, 2) + '\n');
  }

  metrics(update: number, m: Metrics, progress: number): void {
    const clean: Record<string, number | null> = {};
    for (const [k, v] of Object.entries(m)) clean[k] = Number.isFinite(v) ? Math.round(v * 1e6) / 1e6 : null;
    appendFileSync(this.metricsFile, JSON.stringify({ [UPDATE_KEY]: update, time: new Date().toISOString(), ...clean }) + '\n');
    const reward = (m[M.rewardMean] ?? NaN).toFixed(3), kl = (m[M.klExact] ?? NaN).toFixed(2), sps = (m[M.sps] ?? NaN).toFixed(0);
    this.barValue = Math.round(progress * 1000);
    if (this.bar) this.bar.update(this.barValue, { update, reward, kl, sps });
    else this.log(`update ${update} | reward ${reward} | reply ${(m[M.replyRewardMean] ?? NaN).toFixed(3)} | kl ${kl} | empty ${(m[M.emptyTeacherTurnShare] ?? NaN).toFixed(2)} short ${(m[M.shortTeacherTurnShare] ?? NaN).toFixed(2)} | ${sps} steps/s | ${(progress * 100).toFixed(0)}%`);
  }

  samples(update: number, records: Record<string, unknown>[]): void {
    for (const r of records) appendFileSync(this.samplesFile, JSON.stringify({ update, ...r }) + '\n');
  }

  info(line: string): void {
    if (this.bar) { this.bar.stop(); this.log(line); this.bar.start(1000, this.barValue); } else this.log(line);
  }

  /** Keep a copy of the checkpoint just written as checkpoint-UPDATE/ (`keepCheckpoints`); its path. */
  keep(update: number): string {
    const dir = `${this.checkpointDir}-${update}`;
    rmSync(dir, { recursive: true, force: true });
    cpSync(this.checkpointDir, dir, { recursive: true });
    return dir;
  }

  close(): void { this.bar?.stop(); this.bar = null; }
}

// ------------------------------------------------------------------------------------------------
// Named tensors on disk (checkpoints of heads and optimizer state)

interface TensorEntry { name: string; shape: number[]; offset: number; length: number }

export async function saveTensors(dir: string, name: string, tensors: { name: string; tensor: tf.Tensor }[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const t of tensors) { entries.push({ name: t.name, shape: t.tensor.shape, offset, length: t.tensor.size }); offset += t.tensor.size * 4; }
  const bin = Buffer.alloc(offset);
  tensors.forEach((t, i) => new Float32Array(bin.buffer, bin.byteOffset + entries[i]!.offset, t.tensor.size).set(t.tensor.dataSync() as Float32Array));
  await writeAtomic(path.join(dir, `${name}.bin`), bin);
  await writeAtomic(path.join(dir, `${name}.json`), JSON.stringify({ format: 'colloquy-tensors', tensors: entries }, null, 1) + '\n');
}

export async function loadTensors(dir: string, name: string): Promise<{ name: string; tensor: tf.Tensor }[]> {
  const j = JSON.parse(await readFile(path.join(dir, `${name}.json`), 'utf8')) as { tensors: TensorEntry[] };
  const bin = await readFile(path.join(dir, `${name}.bin`));
  return j.tensors.map(e => {
    const a = new Float32Array(e.length);
    new Uint8Array(a.buffer).set(bin.subarray(e.offset, e.offset + e.length * 4));
    return { name: e.name, tensor: tf.tensor(a, e.shape) };
  });
}

export async function writeAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

/** Assign saved values to variables by position (names may differ between processes). */
export function assignAll(vars: readonly tf.Variable[], saved: readonly { name: string; tensor: tf.Tensor }[]): void {
  if (vars.length !== saved.length) throw new BadConfig(`checkpoint holds ${saved.length} tensors, the model has ${vars.length}`);
  vars.forEach((v, i) => {
    const t = saved[i]!.tensor;
    if (t.shape.join('x') !== v.shape.join('x')) throw new BadConfig(`checkpoint tensor ${saved[i]!.name} has shape ${t.shape.join('×')}, expected ${v.shape.join('×')}`);
    v.assign(t);
  });
}

/** Save Adam's state; restore it with `restoreOptimizer` (by position, like `assignAll`). */
export async function saveOptimizer(dir: string, name: string, opt: tf.Optimizer): Promise<void> {
  const w = await opt.getWeights();
  await saveTensors(dir, name, w);
  disposeIterations(w);
}

/** `getWeights()` makes a fresh scalar for the iteration count (the rest are the optimizer's own variables). */
export function disposeIterations(w: { name: string; tensor: tf.Tensor }[]): void {
  for (const t of w) if (t.name === 'iter') t.tensor.dispose();
}

export async function restoreOptimizer(dir: string, name: string, opt: tf.Optimizer): Promise<void> {
  if (!existsSync(path.join(dir, `${name}.json`))) return;
  const w = await loadTensors(dir, name);
  await opt.setWeights(w);
  tf.dispose(w.map(x => x.tensor));
}
