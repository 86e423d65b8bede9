/**
 * Pretraining of the base language model, top to bottom: config → corpora and held-out split →
 * tokenizer → token streams → model (fresh or resumed) → Adam loop with warm-up + cosine schedule,
 * gradient clipping, a progress bar (log lines when not on a terminal), validation perplexity on
 * the held-out dialogs after every epoch, and a checkpoint after every epoch (resumable).
 *
 * The schedule follows whichever budget ends first: `epochs` passes over the training tokens or
 * `minutes` of wall clock. Used by `colloquy pretrain` and by `ensureBaseModel` (npm start).
 */
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import cliProgress from 'cli-progress';
import { Rng } from '../core/rng.ts';
import { BadConfig, ColloquyError, ERROR_CODES, type ErrorCode } from '../core/errors.ts';
import { loadConfig, deepMerge, validateConfig } from '../core/config.ts';
import { ModelFileSchema, type ModelFile, type TrainConfig } from '../configs/models/schema.ts';
import { formatTranscript, loadChatJsonl, loadCorpus, splitDialogs, validationSplitOf, type Dialog } from '../corpora/readers.ts';
import { BpeTokenizer } from './tokenizer.ts';
import { backendInfo, type BackendChoice } from './backend.ts';
import { GradientWorkers } from './parallel.ts';
import { TransformerLM, type LMBatch } from './lm.ts';
import { isCheckpoint, loadCheckpoint, loadOptimizerState, saveCheckpoint, type CheckpointMetadata } from './checkpoint.ts';
import { CONFIG_DIR, DEFAULT_MODEL_DIR, PROJECT_ROOT } from '../core/paths.ts';
import { SHIPPED_MODEL_DIR, hasShippedModel, installShippedModel } from './shipped.ts';

export const DEFAULT_MODEL_CONFIG = path.join(CONFIG_DIR, 'models', 'base.json');
/** What a first start pretrains on the shipped corpus when the shipped reference model has not been built (about 30 s). */
export const FIRST_START_MODEL_CONFIG = path.join(CONFIG_DIR, 'models', 'first-start.json');

export interface PretrainOptions {
  /** Checkpoint folder to write (and to resume from). */
  out: string;
  /** Model config file (default configs/models/base.json). */
  configFile?: string;
  /** Overrides of the config file (e.g. from CLI flags). */
  overrides?: { model?: Record<string, unknown>; tokenizer?: Record<string, unknown>; train?: Partial<TrainConfig> };
  /** Data directory for the real corpora (null: only `shipped` and chat files work). */
  dataDir: string | null;
  /** Continue from the checkpoint in `out` (weights, optimizer state, step, tokenizer). */
  resume?: boolean;
  /** Draw a progress bar (default: when stderr is a terminal). */
  progressBar?: boolean;
  /** Where log lines go (default console.log). */
  log?: (line: string) => void;
}

export interface PretrainResult {
  dir: string;
  steps: number;
  tokensSeen: number;
  epochs: number;
  seconds: number;
  valPerplexity: number | null;
  valPerplexityByCorpus: Record<string, number>;
  history: { epoch: number; step: number; trainLoss: number; valPerplexity: number | null; byCorpus: Record<string, number> }[];
  numParams: number;
}

// ------------------------------------------------------------------------------------------------
// Data

/** Load each comma-separated corpus spec: shipped, mathdial, dailydialog[:split], bridge[:split], chat:FILE or FILE.jsonl. */
export function loadCorpora(spec: string, dataDir: string | null): { name: string; dialogs: Dialog[] }[] {
  const names = spec.split(',').map(s => s.trim()).filter(Boolean);
  if (names.length === 0) throw new BadConfig('no corpus given');
  return names.map(name => {
    const dialogs = name.startsWith('chat:') ? loadChatJsonl(path.resolve(name.slice(5))) : loadCorpus(name, dataDir);
    if (dialogs.length === 0) throw new BadConfig(`corpus '${name}' has no dialogs`);
    return { name: name.startsWith('chat:') ? path.basename(name.slice(5)) : name, dialogs };
  });
}

/** Token stream of dialogs: each transcript (ending with <|endoftext|>) one after the other. */
export function encodeDialogs(tok: BpeTokenizer, dialogs: readonly Dialog[]): Int32Array {
  const parts: number[][] = dialogs.map(d => tok.encode(formatTranscript(d)));
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Int32Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/**
 * Mean next-token NLL (nats/token) of a stream, read in non-overlapping windows of T targets
 * (each window starts with a fresh context, as is usual for held-out perplexity).
 */
export function evalStream(model: TransformerLM, stream: Int32Array, T: number, B: number, maxTokens = 0): { nll: number; tokens: number } {
  const n = maxTokens > 0 ? Math.min(stream.length, maxTokens + 1) : stream.length;
  if (n < 2) return { nll: NaN, tokens: 0 };
  const starts: number[] = [];
  for (let s = 0; s + 1 < n; s += T) starts.push(s);
  let total = 0, count = 0;
  for (let i = 0; i < starts.length; i += B) {
    const group = starts.slice(i, i + B);
    const tokens = new Int32Array(group.length * (T + 1));
    const weights = new Float32Array(group.length * T);
    group.forEach((s, b) => {
      const len = Math.min(T + 1, n - s);
      tokens.set(stream.subarray(s, s + len), b * (T + 1));
      for (let t = 0; t < len - 1; t++) weights[b * T + t] = 1;
    });
    const w = weights.reduce((a, x) => a + x, 0);
    const batch: LMBatch = { tokens, batchSize: group.length, seqLength: T, weights };
    total += model.evalLoss(batch) * w;
    count += w;
  }
  return { nll: total / count, tokens: count };
}

/** Learning rate at a point of the run: linear warm-up, then cosine from peak to minLrFraction·peak. */
export function learningRate(cfg: TrainConfig, step: number, progress: number): number {
  if (step < cfg.warmupSteps) return cfg.learningRate * (step + 1) / cfg.warmupSteps;
  const p = Math.min(1, Math.max(0, progress));
  const min = cfg.learningRate * cfg.minLrFraction;
  return min + (cfg.learningRate - min) * 0.5 * (1 + Math.cos(Math.PI * p));
}

/** Global-norm clipping; returns the norm before clipping. Disposes the gradients it replaces. */
export function clipGradients(grads: tf.NamedTensorMap, maxNorm: number): number {
  const norm = tf.tidy(() => {
    const sq = Object.values(grads).map(g => tf.sum(tf.square(g)));
    return Math.sqrt(tf.addN(sq).dataSync()[0]!);
  });
  if (maxNorm > 0 && norm > maxNorm) {
    const f = maxNorm / (norm + 1e-6);
    for (const k of Object.keys(grads)) { const old = grads[k]!; grads[k] = tf.mul(old, f); old.dispose(); }
  }
  return norm;
}

/** Read and validate a model config file with overrides. */
export function readModelFile(file: string | undefined, overrides: PretrainOptions['overrides'] = {}): ModelFile {
  const merged = loadConfig(ModelFileSchema, file ?? DEFAULT_MODEL_CONFIG, overrides as Record<string, unknown>);
  return merged;
}

// ------------------------------------------------------------------------------------------------
// The run

export async function pretrain(opts: PretrainOptions): Promise<PretrainResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const t0 = Date.now();
  const out = path.resolve(opts.out);
  const resuming = opts.resume === true && (await isCheckpoint(out));
  if (opts.resume && !resuming) log(`pretrain: nothing to resume in ${out}; starting fresh`);

  // Config: the file (and overrides); when resuming, the run's own config.json is the base.
  let file: ModelFile;
  if (resuming) {
    const saved = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8').catch(() => '{}')) as Record<string, unknown>;
    file = validateConfig(ModelFileSchema, deepMerge(saved, opts.overrides ?? {}), `${out}/config.json`);
  } else {
    file = readModelFile(opts.configFile, opts.overrides);
  }
  const cfg = file.train;
  if (cfg.seqLength > (file.model.contextLength ?? 256)) throw new BadConfig(`train.seqLength ${cfg.seqLength} exceeds model.contextLength ${file.model.contextLength}`);

  // Corpora and the held-out split (per corpus, so each has its own validation perplexity).
  const corpora = loadCorpora(cfg.corpus, opts.dataDir);
  // With heldOutSplits, a data set's own validation split is its held-out side (e.g. DailyDialog's).
  const splits = corpora.map(c => {
    const own = cfg.heldOutSplits ? validationSplitOf(c.name) : null;
    return own ? { name: c.name, train: c.dialogs, heldOut: loadCorpus(own, opts.dataDir) }
      : { name: c.name, ...splitDialogs(c.dialogs, { heldOut: cfg.heldOut, seed: cfg.splitSeed }) };
  });
  const trainDialogs = splits.flatMap(s => s.train);
  log(`pretrain: corpora ${splits.map(s => `${s.name} (${s.train.length} train / ${s.heldOut.length} held-out dialogs)`).join(', ')}`);

  // Tokenizer: trained on the training side only (unless resuming).
  let tok: BpeTokenizer;
  let model: TransformerLM;
  let meta: CheckpointMetadata | null = null;
  if (resuming) {
    const ck = await loadCheckpoint(out);
    if (!ck.tokenizer) throw new BadConfig(`${out} has no tokenizer.json to resume with`);
    tok = BpeTokenizer.fromJSON(ck.tokenizer as Parameters<typeof BpeTokenizer.fromJSON>[0]);
    model = ck.model;
    meta = ck.metadata;
    log(`pretrain: resuming ${out} at step ${meta?.step ?? 0}`);
  } else {
    const tt = Date.now();
    tok = BpeTokenizer.train(trainDialogs.map(d => formatTranscript(d)), { vocabSize: file.tokenizer.vocabSize, minFrequency: file.tokenizer.minFrequency });
    log(`pretrain: tokenizer trained (${tok.vocabSize} tokens) in ${((Date.now() - tt) / 1000).toFixed(1)} s`);
    model = TransformerLM.create({ ...file.model, vocabSize: tok.vocabSize, bosTokenId: tok.special.endOfText }, cfg.seed);
  }
  if (model.config.vocabSize !== tok.vocabSize) throw new BadConfig(`model vocabulary ${model.config.vocabSize} ≠ tokenizer vocabulary ${tok.vocabSize}`);
  const trainStream = encodeDialogs(tok, trainDialogs);
  const heldStreams = splits.filter(s => s.heldOut.length > 0).map(s => ({ name: s.name, stream: encodeDialogs(tok, s.heldOut) }));
  const T = cfg.seqLength, B = cfg.batchSize;
  const stepsPerEpoch = Math.max(1, Math.floor((trainStream.length - 1) / (B * T)));
  const totalSteps = Math.max(1, Math.round(cfg.epochs * stepsPerEpoch));
  log(`pretrain: ${model.numParams.toLocaleString('en')} parameters (${JSON.stringify(model.config)}); ${trainStream.length.toLocaleString('en')} training tokens, ` +
    `${heldStreams.map(h => `${h.name} ${h.stream.length.toLocaleString('en')}`).join(', ') || 'no'} held-out tokens; ${stepsPerEpoch} steps/epoch of ${B}×${T}; ` +
    `budget ${cfg.epochs} epochs${cfg.minutes > 0 ? ` or ${cfg.minutes} min` : ''}; backend ${backendInfo()?.name ?? tf.getBackend()}`);

  // Optimizer (state restored when resuming).
  const optimizer = tf.train.adam(cfg.learningRate, cfg.beta1, cfg.beta2, 1e-8);
  const setLr = (lr: number) => { (optimizer as unknown as { learningRate: number }).learningRate = lr; };
  let step = meta?.step ?? 0;
  let tokensSeen = meta?.tokensSeen ?? 0;
  const secondsBefore = meta?.trainSeconds ?? 0;
  if (resuming) {
    const state = await loadOptimizerState(out);
    if (state) { await optimizer.setWeights(state); tf.dispose(state.map(s => s.tensor)); }
  }

  const validate = () => {
    const byCorpus: Record<string, number> = {};
    let tot = 0, cnt = 0;
    for (const h of heldStreams) {
      const r = evalStream(model, h.stream, T, B, cfg.evalTokens);
      if (r.tokens > 0) { byCorpus[h.name] = Math.exp(r.nll); tot += r.nll * r.tokens; cnt += r.tokens; }
    }
    const headline = byCorpus.mathdial ?? (cnt > 0 ? Math.exp(tot / cnt) : null);
    return { headline, byCorpus };
  };

  const history: PretrainResult['history'] = [];
  const save = async (valPpl: number | null, byCorpus: Record<string, number>) => {
    const named = await optimizer.getWeights();
    const b = backendInfo();
    await saveCheckpoint(model, out, {
      tokenizer: tok.toJSON(),
      trainConfig: { ...file, model: model.config },
      optimizer: named.map(n => ({ name: n.name.replace(/^lm\d+\//, ''), tensor: n.tensor })),
      metadata: {
        backend: b ? { name: b.name, tfBackend: b.tfBackend, features: b.features } : { name: tf.getBackend(), tfBackend: tf.getBackend(), features: [] },
        step, tokensSeen, epochs: tokensSeen / Math.max(1, trainStream.length), corpus: cfg.corpus,
        valPerplexity: valPpl, valPerplexityByCorpus: byCorpus,
        trainSeconds: secondsBefore + (Date.now() - t0) / 1000,
        history,
      },
    });
  };

  // Progress display.
  const useBar = opts.progressBar ?? Boolean(process.stderr.isTTY);
  const bar = useBar ? new cliProgress.SingleBar({
    format: 'pretrain |{bar}| {percentage}% | step {step} | loss {loss} | {tps} tok/s | epoch {epoch} | ETA {eta_formatted}',
    hideCursor: true, etaBuffer: 50,
  }, cliProgress.Presets.shades_classic) : null;
  const budgetMs = cfg.minutes > 0 ? cfg.minutes * 60_000 : Infinity;
  const startStep = step;
  const progressOf = (s: number) => Math.max(s / totalSteps, (Date.now() - t0) / budgetMs);
  // The bar counts thousandths of the budget (steps or minutes, whichever ends first).
  const barValue = (s: number) => Math.min(1000, Math.round(1000 * progressOf(s)));
  bar?.start(1000, barValue(step), { step, loss: '-', tps: '-', epoch: (step / stepsPerEpoch).toFixed(2) });

  const workers = await GradientWorkers.start(Math.min(cfg.threads, B), model, (backendInfo()?.name ?? 'auto') as BackendChoice);
  if (workers.threads > 1) log(`pretrain: ${workers.threads} threads compute gradients (batch split ${B} rows)`);
  const rng = new Rng(cfg.seed * 7919 + step);
  let lastLog = Date.now(), emaLoss = NaN, lastVal: { headline: number | null; byCorpus: Record<string, number> } = { headline: null, byCorpus: {} };
  const runStart = Date.now();
  let epochLossSum = 0, epochLossN = 0;
  try {
    while (step < totalSteps && progressOf(step) < 1) {
      // One epoch: windows at a random phase, in a random order.
      const phase = rng.int(T);
      const starts: number[] = [];
      for (let s = phase; s + T + 1 <= trainStream.length; s += T) starts.push(s);
      for (let i = starts.length - 1; i > 0; i--) { const j = rng.int(i + 1); [starts[i], starts[j]] = [starts[j]!, starts[i]!]; }
      const stepsThisEpoch = Math.min(stepsPerEpoch, Math.floor(starts.length / B));
      let epochDone = true;
      for (let k = 0; k < stepsThisEpoch; k++) {
        if (step >= totalSteps || progressOf(step) >= 1) { epochDone = false; break; }
        const tokens = new Int32Array(B * (T + 1));
        for (let b = 0; b < B; b++) { const s = starts[k * B + b]!; tokens.set(trainStream.subarray(s, s + T + 1), b * (T + 1)); }
        setLr(learningRate(cfg, step, progressOf(step)));
        const dropoutSeed = model.config.dropout > 0 ? rng.seed() : undefined;
        const { loss, grads } = await workers.lossAndGrads(model, { tokens, batchSize: B, seqLength: T }, dropoutSeed);
        clipGradients(grads, cfg.gradClip);
        optimizer.applyGradients(grads as tf.NamedTensorMap as Parameters<typeof optimizer.applyGradients>[0]);
        tf.dispose(Object.values(grads));
        if (!Number.isFinite(loss)) throw new Error(`pretrain: loss is ${loss} at step ${step}; lower the learning rate`);
        step++; tokensSeen += B * T;
        emaLoss = Number.isNaN(emaLoss) ? loss : 0.95 * emaLoss + 0.05 * loss;
        epochLossSum += loss; epochLossN++;
        const tps = ((step - startStep) * B * T) / ((Date.now() - runStart) / 1000);
        if (bar) bar.update(barValue(step), { step, loss: emaLoss.toFixed(3), tps: tps.toFixed(0), epoch: (step / stepsPerEpoch).toFixed(2) });
        else if (Date.now() - lastLog > 30_000) {
          lastLog = Date.now();
          log(`pretrain: step ${step}/${totalSteps} loss ${emaLoss.toFixed(3)} ${tps.toFixed(0)} tok/s epoch ${(step / stepsPerEpoch).toFixed(2)} elapsed ${((Date.now() - t0) / 60000).toFixed(1)} min`);
        }
      }
      // Validation + checkpoint after each epoch (and when the budget cuts one short).
      lastVal = validate();
      const trainLoss = epochLossN ? epochLossSum / epochLossN : NaN;
      epochLossSum = 0; epochLossN = 0;
      history.push({ epoch: step / stepsPerEpoch, step, trainLoss, valPerplexity: lastVal.headline, byCorpus: lastVal.byCorpus });
      const line = `pretrain: epoch ${(step / stepsPerEpoch).toFixed(2)} step ${step} train loss ${trainLoss.toFixed(3)} (ppl ${Math.exp(trainLoss).toFixed(1)}) ` +
        `val ppl ${Object.entries(lastVal.byCorpus).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ') || '-'}`;
      if (bar) { bar.stop(); log(line); if (epochDone && step < totalSteps && progressOf(step) < 1) bar.start(1000, barValue(step), { step, loss: emaLoss.toFixed(3), tps: '-', epoch: (step / stepsPerEpoch).toFixed(2) }); }
      else log(line);
      await save(lastVal.headline, lastVal.byCorpus);
      if (!epochDone) break;
    }
  } finally {
    bar?.stop();
    optimizer.dispose();
    await workers.close();
  }
  if (history.length === 0) { lastVal = validate(); await save(lastVal.headline, lastVal.byCorpus); }
  const result: PretrainResult = {
    dir: out, steps: step, tokensSeen, epochs: tokensSeen / Math.max(1, trainStream.length), seconds: secondsBefore + (Date.now() - t0) / 1000,
    valPerplexity: lastVal.headline, valPerplexityByCorpus: lastVal.byCorpus, history, numParams: model.numParams,
  };
  model.dispose();
  log(`pretrain: done in ${(result.seconds / 60).toFixed(1)} min: ${step} steps, ${tokensSeen.toLocaleString('en')} tokens (${result.epochs.toFixed(2)} epochs), ` +
    `validation perplexity ${result.valPerplexity?.toFixed(2) ?? '-'}${Object.keys(result.valPerplexityByCorpus).length ? ` (${Object.entries(result.valPerplexityByCorpus).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')})` : ''}; saved ${out}`);
  return result;
}

// ------------------------------------------------------------------------------------------------
// npm start: make sure a base model exists

export interface EnsureBaseModelOptions {
  /** Checkpoint folder (default data/models/base). */
  dir?: string;
  /** Corpora when one must be trained (default 'shipped': fast, needs no data dir). */
  corpus?: string;
  dataDir?: string | null;
  /** Model config file (default configs/models/base.json). */
  configFile?: string;
  /** Training budget in minutes when one must be trained (default 5). */
  minutes?: number;
  /** Train in this process instead of a child process (tests). */
  inProcess?: boolean;
  /** With the default corpus and config, install the shipped checkpoint instead of training (default true). */
  useShipped?: boolean;
  /** Where the shipped checkpoint is built (default models/shipped/base; tests pass a fixture). */
  shippedDir?: string;
  log?: (line: string) => void;
}

/**
 * Use the base checkpoint in `dir` if there is one; otherwise install the shipped one (default corpus
 * and config) or pretrain one (saying so, with progress) and return its folder. By default training runs in a child process
 * (`colloquy pretrain`), so that no training ever runs on a server's event loop.
 */
export async function ensureBaseModel(opts: EnsureBaseModelOptions = {}): Promise<{ dir: string; created: boolean }> {
  const dir = path.resolve(opts.dir ?? DEFAULT_MODEL_DIR);
  const log = opts.log ?? ((s: string) => console.log(s));
  if (await isCheckpoint(dir)) return { dir, created: false };
  const corpus = opts.corpus ?? 'shipped';
  // The default first start needs no training: the shipped checkpoint (models/shipped.ts), SHA-256 checked.
  const shipped = opts.shippedDir ?? SHIPPED_MODEL_DIR;
  if (corpus === 'shipped' && !opts.configFile && opts.useShipped !== false && hasShippedModel(shipped)) {
    log(`No base language model at ${dir}: installing the shipped one (${path.relative(PROJECT_ROOT, shipped)}, SHA-256 checked; pretrain a better one with colloquy pretrain).`);
    await installShippedModel(dir, shipped);
    return { dir, created: true };
  }
  const minutes = opts.minutes ?? 5;
  // Without the built reference, the default first start trains the small first-start model (under a minute).
  const configFile = opts.configFile ?? (corpus === 'shipped' ? FIRST_START_MODEL_CONFIG : undefined);
  const about = configFile === FIRST_START_MODEL_CONFIG
    ? `the first-start model, about 45 s; node bin/run.mjs models/shipped/build.ts builds the reference model the README's figures use`
    : `about ${minutes} min`;
  log(`No base language model at ${dir}: pretraining one on '${corpus}' (${about}; once, later starts reuse it).`);
  if (opts.inProcess) {
    await pretrain({ out: dir, configFile, dataDir: opts.dataDir ?? null, overrides: { train: { corpus, minutes } }, log });
  } else {
    const args = [path.join(PROJECT_ROOT, 'bin', 'colloquy.mjs'), 'pretrain', '--out', dir, '--corpus', corpus, '--minutes', String(minutes)];
    if (configFile) args.push('--config', configFile);
    if (opts.dataDir) args.push('--data-dir', opts.dataDir);
    await new Promise<void>((resolve, reject) => {
      // The child writes its failure line (`error CODE: message`) to fd 3, not to the terminal: it
      // becomes this process's one coded error (cli/args.ts reportError).
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit', 'pipe'], env: { ...process.env, COLLOQUY_ERROR_FD: '3' } });
      let failure = '';
      child.stdio[3]!.on('data', (b: Buffer) => { failure += b.toString(); });
      child.on('error', reject);
      child.on('close', code => {
        if (code === 0) return resolve();
        const m = /^error ([A-Z_]+): (.*)$/m.exec(failure);
        const why = m ? m[2] : `colloquy pretrain exited with ${code}`;
        const errCode = m && (ERROR_CODES as readonly string[]).includes(m[1]!) ? m[1] as ErrorCode : 'INTERNAL';
        reject(new ColloquyError(errCode, `pretraining the base model into ${dir} failed: ${why}`));
      });
    });
  }
  if (!(await isCheckpoint(dir))) throw new Error(`pretraining finished but ${dir} holds no checkpoint`);
  return { dir, created: true };
}
