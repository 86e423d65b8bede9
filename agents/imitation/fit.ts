/**
 * Maximum likelihood on a list of token transcripts with a per-token loss mask — the two options
 * imitation needs that `pretrain` (models/pretrain.ts) does not have: training from given
 * token sequences (the demonstrator's own samples, exactly as it sampled them, not re-tokenised
 * text) and the loss only on the demonstrator's tokens (the student's turns in those transcripts
 * come from the environment, not from D).
 *
 * It is a thin loop over the pretraining code's pieces — `TransformerLM.loss` with weights,
 * `learningRate` (warm-up + cosine), `clipGradients`, Adam — with one transcript per row (padded;
 * transcripts are at most the env's token budget, which fits the context). Batches follow a seeded
 * shuffle; an optional bootstrap resample replaces the training list before the first epoch.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../core/rng.ts';
import { shuffle } from '../../core/arrays.ts';
import { BadConfig } from '../../core/errors.ts';
import { validateConfig } from '../../core/config.ts';
import { TrainConfigSchema, type TrainConfig } from '../../configs/models/schema.ts';
import { clipGradients, learningRate } from '../../models/pretrain.ts';
import type { LMBatch, TransformerLM } from '../../models/lm.ts';

/** One transcript: its token ids and which of them are trained on (the demonstrator's). */
export interface MaskedTranscript {
  tokens: number[];
  /** Positions (indices into `tokens`, ≥ 1) whose token is a training target. */
  targets: number[];
}

export interface FitOptions {
  /** Optimiser settings (the pretraining schema: batchSize, learningRate, warmupSteps, epochs, minutes, seed, …). */
  train: Partial<TrainConfig>;
  /** Transcripts for the held-out NLL after each epoch (and at the end). */
  heldOut?: readonly MaskedTranscript[];
  log?: (line: string) => void;
  /** Name in log lines. */
  name?: string;
}

export interface FitResult {
  steps: number;
  epochs: number;
  seconds: number;
  /** Mean held-out NLL per target token at the end (NaN without held-out data). */
  heldOutNll: number;
  history: { epoch: number; step: number; trainLoss: number; heldOutNll: number }[];
}

/** Rows of at most `contextLength + 1` tokens (a longer transcript keeps its last window). */
function clip(t: MaskedTranscript, maxLen: number): MaskedTranscript {
  if (t.tokens.length <= maxLen) return t;
  const cut = t.tokens.length - maxLen;
  return { tokens: t.tokens.slice(cut), targets: t.targets.filter(p => p - cut >= 1).map(p => p - cut) };
}

/** A padded batch: inputs/targets of length T = longest − 1; weight 1 on target positions. */
export function maskedBatch(rows: readonly MaskedTranscript[], pad: number): LMBatch {
  const T = Math.max(2, ...rows.map(r => r.tokens.length)) - 1;
  const B = rows.length;
  const tokens = new Int32Array(B * (T + 1)).fill(pad);
  const weights = new Float32Array(B * T);
  rows.forEach((r, b) => {
    tokens.set(r.tokens, b * (T + 1));
    for (const p of r.targets) if (p >= 1 && p <= T) weights[b * T + p - 1] = 1;
  });
  return { tokens, batchSize: B, seqLength: T, weights };
}

/** Mean NLL per target token of `model` on transcripts (no gradients). */
export function maskedNll(model: TransformerLM, data: readonly MaskedTranscript[], batchSize = 16): { nll: number; tokens: number } {
  const C = model.config.contextLength + 1;
  const rows = data.map(t => clip(t, C)).filter(t => t.targets.length > 0);
  let total = 0, count = 0;
  for (let i = 0; i < rows.length; i += batchSize) {
    const group = rows.slice(i, i + batchSize);
    const batch = maskedBatch(group, model.config.bosTokenId);
    const w = batch.weights!.reduce((a, x) => a + x, 0);
    total += model.evalLoss(batch) * w;
    count += w;
  }
  return { nll: count ? total / count : NaN, tokens: count };
}

/** Train `model` in place on `data` (the loss on target tokens only). */
export async function fitMasked(model: TransformerLM, data: readonly MaskedTranscript[], opts: FitOptions): Promise<FitResult> {
  const cfg: TrainConfig = validateConfig(TrainConfigSchema, opts.train, 'imitation training config');
  const log = opts.log ?? (() => {});
  const name = opts.name ?? 'fit';
  const C = model.config.contextLength + 1;
  const rows = data.map(t => clip(t, C)).filter(t => t.targets.length > 0);
  if (!rows.length) throw new BadConfig(`${name}: no transcript has a target token`);
  const B = Math.min(cfg.batchSize, rows.length);
  const stepsPerEpoch = Math.max(1, Math.floor(rows.length / B));
  const totalSteps = Math.max(1, Math.round(cfg.epochs * stepsPerEpoch));
  const budgetMs = cfg.minutes > 0 ? cfg.minutes * 60_000 : Infinity;
  const t0 = Date.now();
  const progressOf = (s: number) => Math.max(s / totalSteps, (Date.now() - t0) / budgetMs);
  const rng = new Rng(cfg.seed * 7919 + 17);
  const optimizer = tf.train.adam(cfg.learningRate, cfg.beta1, cfg.beta2, 1e-8);
  const setLr = (lr: number) => { (optimizer as unknown as { learningRate: number }).learningRate = lr; };
  const history: FitResult['history'] = [];
  const held = () => (opts.heldOut?.length ? maskedNll(model, opts.heldOut, B).nll : NaN);
  let step = 0;
  try {
    while (step < totalSteps && progressOf(step) < 1) {
      const order = shuffle(rows.map((_, i) => i), rng);
      let lossSum = 0, lossN = 0;
      for (let k = 0; k + B <= order.length; k += B) {
        if (step >= totalSteps || progressOf(step) >= 1) break;
        const batch = maskedBatch(order.slice(k, k + B).map(i => rows[i]!), model.config.bosTokenId);
        setLr(learningRate(cfg, step, progressOf(step)));
        const dropoutSeed = model.config.dropout > 0 ? rng.seed() : undefined;
        const { value, grads } = tf.variableGrads(() => model.loss(batch, dropoutSeed));
        const loss = value.dataSync()[0]!;
        value.dispose();
        clipGradients(grads, cfg.gradClip);
        optimizer.applyGradients(grads as Parameters<typeof optimizer.applyGradients>[0]);
        tf.dispose(Object.values(grads));
        if (!Number.isFinite(loss)) throw new Error(`${name}: loss is ${loss} at step ${step}; lower the learning rate`);
        step++; lossSum += loss; lossN++;
      }
      const h = held();
      history.push({ epoch: step / stepsPerEpoch, step, trainLoss: lossN ? lossSum / lossN : NaN, heldOutNll: h });
      log(`${name}: epoch ${(step / stepsPerEpoch).toFixed(2)} step ${step}/${totalSteps} train NLL ${(lossSum / Math.max(1, lossN)).toFixed(3)} held-out NLL ${h.toFixed(3)} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  } finally {
    optimizer.dispose();
  }
  const last = history[history.length - 1];
  return { steps: step, epochs: step / stepsPerEpoch, seconds: (Date.now() - t0) / 1000, heldOutNll: last ? last.heldOutNll : held(), history };
}

/** A bootstrap resample (with replacement, same size) of a list. */
export function bootstrapResample<T>(xs: readonly T[], seed: number): T[] {
  const rng = new Rng(seed);
  return xs.map(() => xs[rng.int(xs.length)]!);
}
