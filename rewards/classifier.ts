/**
 * A small neural sentiment classifier in TensorFlow.js: over word embeddings, a bidirectional GRU
 * whose states are max-pooled over time (as InferSent) and/or a convolutional network in the style
 * of Kim (2014) — several filter widths, ReLU, max-pooling over time — then dropout and a logistic
 * output, plus an optional linear path over hashed word n-grams (fastText-style "wide" part). Trained on SST-2 phrases (see `trainClassifier`), with word
 * embeddings initialised from pretrained vectors (GloVe, rewards/word-vectors.ts) or from scratch.
 * Saved as a folder: `classifier.json` (config, vocabulary, weight manifest, metadata) and
 * `weights.bin` (float32, little-endian); self-contained (the vectors of its own vocabulary only).
 *
 * With pretrained vectors the vocabulary is the training words followed by frequent words of the
 * vectors that training never sees (`arch.trainableVocab` marks the split). The first have a
 * trainable `embedding` row; every word has a fixed `pretrained` row, which is the second input
 * channel (`arch.staticChannel`, Kim's multichannel) and stands in for the trainable row of the
 * words beyond the split.
 *
 * Written for the wasm backend: convolutions are im2col + `matMul` (wasm lacks the
 * Conv2D filter gradient) and the embedding lookup has a custom gradient through `scatterND`
 * (wasm lacks UnsortedSegmentSum, the default gradient of `gather`).
 */
import * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import path from 'node:path';
import { Rng } from '../core/rng.ts';
import { ColloquyError } from '../core/errors.ts';
import { wordTokens } from './text.ts';
import { vaderCompound } from './vader.ts';
import { fromSigned, type SentimentScore, type SentimentScorer } from './types.ts';
import { emotionValence, emotionWeightVector } from './emotions.ts';
import { FastForward, type FastMemberWeights, type FastShape } from './fast-classifier.ts';

export const CLASSIFIER_FORMAT = 'colloquy-sentiment-cnn';
export const PAD = '<pad>';
export const UNK = '<unk>';

/** Architecture of the classifier (saved with the checkpoint). */
export interface ClassifierArch {
  /** Word embedding size. */
  embedDim: number;
  /** Convolution filter widths (in words). */
  widths: number[];
  /** Filters per width. */
  filters: number;
  /** Size of a hidden ReLU layer after pooling; 0 for none. */
  hidden: number;
  /** Buckets of the hashed-bigram linear path; 0 turns it off. */
  bigramBuckets: number;
  /** Longest input in words; longer texts keep their first `maxLen` words. */
  maxLen: number;
  /**
   * Append VADER's human-rated valence of each word (mean rating / 4, 0 for words not in the
   * lexicon) to its embedding as a fixed extra channel: prior knowledge for words that are rare
   * in the training data. Saved with the checkpoint.
   */
  lexicon?: boolean;
  /** Add VADER's compound score of the whole text, times a learned weight, to the logit. */
  vaderFeature?: boolean;
  /** Longest word n-gram of the hashed linear path: 2 (bigrams) or 3 (bigrams and trigrams). */
  ngramOrder?: number;
  /** Split hyphenated words ("well-made" → "well - made") so that rare compounds share known parts. */
  splitHyphens?: boolean;
  /**
   * Words (a prefix of the vocabulary) with a trainable embedding row; the rest use their fixed
   * `pretrained` row. Absent: every word is trainable and there is no `pretrained` table.
   */
  trainableVocab?: number;
  /** Feed the fixed `pretrained` vectors as a second embedding channel beside the trainable one. */
  staticChannel?: boolean;
  /**
   * Units per direction of a bidirectional GRU over the embeddings whose states are max-pooled
   * over time and joined to the convolution features; 0 or absent for none.
   */
  rnn?: number;
  /**
   * Classes of a softmax emotion head beside the sentiment logit (7 for DailyDialog's labels,
   * rewards/emotions.ts), over the same pooled features; 0 or absent for none.
   */
  emotions?: number;
  /** Names of the emotion classes (`emotions` of them). */
  emotionLabels?: string[];
  /**
   * Leave the convolution windows that reach past a text's end out of the max over time, so that
   * a text's scores do not depend on the batch it is padded in (what the fast path computes).
   */
  maskWindows?: boolean;
}

/**
 * The default: convolutions of widths 1, 2 and 3 words (128 filters each, windows masked at a
 * text's end) over 100-d embeddings with the VADER-valence channel, beside the hashed n-gram
 * path; it scores on the plain-TypeScript fast path (rewards/fast-classifier.ts). No whole-text
 * VADER input: computing VADER's compound score would cost more than the network. The
 * bidirectional GRU of earlier checkpoints is `widths: [], rnn: 160, vaderFeature: true` (TF.js
 * only, ~10× slower to score). The emotion head (`emotions`) is set by training when it reads
 * DailyDialog.
 */
export const DEFAULT_ARCH: ClassifierArch = { embedDim: 100, widths: [1, 2, 3], filters: 128, rnn: 0, hidden: 0, bigramBuckets: 1 << 18, maxLen: 256, lexicon: true, vaderFeature: false, ngramOrder: 3, splitHyphens: true, maskWindows: true };

/** Parameters saved with the checkpoint but not trained. */
export const FIXED_PARAMS: ReadonlySet<string> = new Set(['lexicon', 'pretrained']);

/** Checkpoint format version written by `save`; `load` reads 1 (no pretrained table) and 2. */
export const CLASSIFIER_VERSION = 2;

/** Initial embedding rows from pretrained vectors (`create`). */
export interface EmbeddingInit {
  /** Vectors of (some of) the vocabulary's words, each of length `arch.embedDim`. */
  vectors: ReadonlyMap<string, Float32Array>;
  /** Half-width of the uniform init of words without a vector (default 0.1). */
  missingScale?: number;
}

/** Metadata written beside the weights. */
export interface ClassifierMeta {
  createdAt?: string;
  backend?: string;
  trainFile?: string;
  trainExamples?: number;
  epochs?: number;
  devAccuracy?: number;
  devAuc?: number;
  seconds?: number;
  seed?: number;
  [k: string]: unknown;
}

interface SavedFile {
  format: typeof CLASSIFIER_FORMAT;
  /** 1: no `pretrained` table (arch.trainableVocab, arch.staticChannel absent); 2: optional. */
  version: 1 | 2;
  arch: ClassifierArch;
  vocab: string[];
  /** Every member's tensors (`member` absent means 0), float32 offsets into weights.bin. */
  weights: { name: string; shape: number[]; offset: number; member?: number }[];
  meta: ClassifierMeta;
}

let instanceCounter = 0;
const LITTLE_ENDIAN = endianness() === 'LE';

let lexiconCache: Map<string, number> | undefined;
/** The VADER lexicon (token → mean valence in [-4, 4]) shipped in the `vader-sentiment` package. */
export function vaderLexicon(): Map<string, number> {
  if (lexiconCache) return lexiconCache;
  const require = createRequire(import.meta.url);
  const file = path.join(path.dirname(require.resolve('vader-sentiment/package.json')), 'vader_lexicon.txt');
  const m = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const [tok, val] = line.split('\t');
    if (tok && val !== undefined && Number.isFinite(Number(val))) m.set(tok.toLowerCase(), Number(val));
  }
  lexiconCache = m;
  return m;
}

/** FNV-1a hash of a string, for bigram buckets. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  return h >>> 0;
}

/** FNV-1a step over the decimal digits of a non-negative integer (as its `String` would be hashed). */
function fnvDigits(h: number, n: number): number {
  if (n >= 10) h = fnvDigits(h, Math.floor(n / 10));
  h ^= 48 + (n % 10);
  return Math.imul(h, 0x01000193);
}

/** `hashString` of the ids joined by spaces, without building the string. */
export function hashIds(ids: readonly number[], from: number, count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < count; i++) {
    if (i > 0) h = Math.imul(h ^ 32, 0x01000193);
    h = fnvDigits(h, ids[from + i]!);
  }
  return h >>> 0;
}

/** Embedding lookup whose gradient is a `scatterND` (summing repeated ids), which wasm supports. */
function lookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [t, i, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([i]);
    const shape = t.shape;
    return {
      value: tf.gather(t, i),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const idx = saved[0]!;
        return [tf.scatterND(idx.expandDims(1), dy, shape), tf.zerosLike(idx)];
      },
    };
  });
  return f(table, ids) as tf.Tensor2D;
}

/**
 * `x · w` for 2-D tensors, or for [n, M, K] × [n, K, N] (a batch of n products), with a
 * hand-written gradient that uses explicit transposes: on wasm, `matMul` with transpose flags
 * (what the default gradient does) is about ten times slower.
 */
export function dense<T extends tf.Tensor2D | tf.Tensor3D>(x: T, w: T): T {
  const tr = (t: tf.Tensor) => (t.rank === 3 ? tf.transpose(t, [0, 2, 1]) : tf.transpose(t));
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [a, b, save] = args as [T, T, tf.GradSaveFunc];
    save([a, b]);
    return {
      value: tf.matMul(a, b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as [T, T];
        return [tf.matMul(dy as T, tr(sb)), tf.matMul(tr(sa), dy as T)];
      },
    };
  });
  return f(x, w) as T;
}

/** Max over axis 1 of a [B, T, F] tensor; the gradient goes to every maximum (ties share it). Avoids the slow wasm Tile/Equal of the default gradient. */
function maxOverTime(x: tf.Tensor3D): tf.Tensor2D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [a, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const m = a.max(1);
    save([a, m]);
    return {
      value: m,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sm] = saved as [tf.Tensor3D, tf.Tensor2D];
        // 1 where x equals its max over time, else 0 (x − max ≤ 0, so sign + 1 ∈ {0, 1}).
        const hit = tf.sign(tf.sub(sa, sm.expandDims(1))).add(1);
        return [hit.mul((dy as tf.Tensor2D).expandDims(1))];
      },
    };
  });
  return f(x) as tf.Tensor2D;
}

/** Words of each row of a batch (its mask's leading ones). */
function rowLengths(enc: EncodedBatch): Int32Array {
  const lengths = new Int32Array(enc.batch);
  for (let b = 0; b < enc.batch; b++) {
    let n = 0;
    while (n < enc.len && enc.mask[b * enc.len + n]! > 0) n++;
    lengths[b] = n;
  }
  return lengths;
}

/** A batch ready for the network. */
export interface EncodedBatch { ids: Int32Array; mask: Float32Array; bigrams: Int32Array; bigramMask: Float32Array; vader: Float32Array; batch: number; len: number; bigramLen: number }

export class SentimentClassifier {
  readonly arch: ClassifierArch;
  readonly vocab: string[];
  meta: ClassifierMeta;
  private readonly index: Map<string, number>;
  /** One parameter set per ensemble member (same architecture and vocabulary). */
  private readonly members: Map<string, tf.Variable>[];
  /** The plain-TypeScript forward pass over a snapshot of the weights, when on (`useFastPath`). */
  private fast?: FastForward;

  private constructor(arch: ClassifierArch, vocab: string[], members: Map<string, tf.Variable>[], meta: ClassifierMeta) {
    this.arch = arch;
    this.vocab = vocab;
    this.meta = meta;
    this.index = new Map(vocab.map((w, i) => [w, i]));
    this.members = members;
  }

  /**
   * A freshly initialised classifier (Glorot-uniform-like scales, seeded) of `numMembers`
   * independently initialised networks whose probabilities are averaged (an ensemble). With
   * `init`, embedding rows of words that have a vector start as that vector (in both channels);
   * the others (and `<unk>`) are uniform in ±`init.missingScale`, `<pad>` is zero.
   */
  static create(arch: ClassifierArch, vocab: string[], seed: number, numMembers = 1, init?: EmbeddingInit): SentimentClassifier {
    if (vocab[0] !== PAD || vocab[1] !== UNK) throw new ColloquyError('BAD_CONFIG', `vocabulary must start with ${PAD}, ${UNK}`);
    if (!(numMembers >= 1)) throw new ColloquyError('BAD_CONFIG', 'an ensemble needs at least one member');
    const tv = arch.trainableVocab;
    if (tv !== undefined && !(Number.isInteger(tv) && tv >= 2 && tv <= vocab.length)) throw new ColloquyError('BAD_CONFIG', `trainableVocab must be an integer in [2, ${vocab.length}]`);
    if (arch.widths.length === 0 && !((arch.rnn ?? 0) > 0)) throw new ColloquyError('BAD_CONFIG', 'the classifier needs convolution widths or a GRU (rnn > 0)');
    if ((tv !== undefined || arch.staticChannel) && !init) throw new ColloquyError('BAD_CONFIG', 'trainableVocab and staticChannel need pretrained vectors');
    for (const [w, v] of init?.vectors ?? []) {
      if (v.length !== arch.embedDim) throw new ColloquyError('BAD_CONFIG', `the vector of '${w}' has ${v.length} numbers; embedDim is ${arch.embedDim}`);
    }
    const rng = new Rng(seed);
    const members: Map<string, tf.Variable>[] = [];
    for (let m = 0; m < numMembers; m++) members.push(SentimentClassifier.initMember(arch, vocab, rng, init));
    return new SentimentClassifier(arch, vocab, members, {});
  }

  /** Rows [vocab, embedDim]: the pretrained vector of each word, else uniform in ±scale (zero for `<pad>`). */
  private static embeddingRows(arch: ClassifierArch, vocab: string[], rng: Rng, init: EmbeddingInit): Float32Array {
    const e = arch.embedDim;
    const scale = init.missingScale ?? 0.1;
    const rows = new Float32Array(vocab.length * e);
    for (let i = 1; i < vocab.length; i++) {
      const v = init.vectors.get(vocab[i]!);
      if (v) rows.set(v, i * e);
      else for (let j = 0; j < e; j++) rows[i * e + j] = (rng.random() * 2 - 1) * scale;
    }
    return rows;
  }

  private static initMember(arch: ClassifierArch, vocab: string[], rng: Rng, init?: EmbeddingInit): Map<string, tf.Variable> {
    const uniform = (shape: number[], scale: number): tf.Tensor => {
      const n = shape.reduce((a, b) => a * b, 1);
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = (rng.random() * 2 - 1) * scale;
      return tf.tensor(v, shape);
    };
    const zeros = (shape: number[]) => tf.zeros(shape);
    const shapes: [string, () => tf.Tensor][] = [];
    const d = arch.embedDim * (arch.staticChannel ? 2 : 1) + (arch.lexicon ? 1 : 0);
    const tv = arch.trainableVocab ?? vocab.length;
    if (init) {
      const rows = SentimentClassifier.embeddingRows(arch, vocab, rng, init);
      shapes.push(['embedding', () => tf.tensor2d(rows.subarray(0, tv * arch.embedDim), [tv, arch.embedDim])]);
      if (arch.trainableVocab !== undefined || arch.staticChannel) shapes.push(['pretrained', () => tf.tensor2d(rows, [vocab.length, arch.embedDim])]);
    } else shapes.push(['embedding', () => uniform([vocab.length, arch.embedDim], 0.1)]);
    if (arch.lexicon) {
      const lex = vaderLexicon();
      shapes.push(['lexicon', () => tf.tensor2d(Float32Array.from(vocab, w => (lex.get(w) ?? 0) / 4), [vocab.length, 1])]);
    }
    for (const k of arch.widths) {
      shapes.push([`conv${k}/kernel`, () => uniform([k * d, arch.filters], Math.sqrt(6 / (k * d + arch.filters)))]);
      shapes.push([`conv${k}/bias`, () => zeros([arch.filters])]);
    }
    const H = arch.rnn ?? 0;
    for (const dir of H > 0 ? ['fw', 'bw'] : []) {
      shapes.push([`gru/${dir}/kernel`, () => uniform([d, 3 * H], Math.sqrt(6 / (d + 3 * H)))]);
      shapes.push([`gru/${dir}/recurrent`, () => uniform([H, 3 * H], Math.sqrt(6 / (H + 3 * H)))]);
      shapes.push([`gru/${dir}/bias`, () => zeros([3 * H])]);
    }
    const pooled = arch.widths.length * arch.filters + 2 * H;
    let last = pooled;
    if (arch.hidden > 0) {
      shapes.push(['hidden/kernel', () => uniform([pooled, arch.hidden], Math.sqrt(6 / (pooled + arch.hidden)))]);
      shapes.push(['hidden/bias', () => zeros([arch.hidden])]);
      last = arch.hidden;
    }
    shapes.push(['out/kernel', () => uniform([last, 1], Math.sqrt(6 / (last + 1)))]);
    shapes.push(['out/bias', () => zeros([1])]);
    if (arch.bigramBuckets > 0) shapes.push(['bigram', () => zeros([arch.bigramBuckets, 1])]);
    if (arch.vaderFeature) shapes.push(['vader/kernel', () => zeros([1, 1])]);
    const E = arch.emotions ?? 0;
    if (E > 0) {
      shapes.push(['emotion/kernel', () => uniform([last, E], Math.sqrt(6 / (last + E)))]);
      shapes.push(['emotion/bias', () => zeros([E])]);
      if (arch.vaderFeature) shapes.push(['emotion/vader', () => zeros([1, E])]);
    }
    const id = ++instanceCounter;
    const params = new Map<string, tf.Variable>();
    for (const [name, init] of shapes) {
      const t = init();
      params.set(name, tf.variable(t, !FIXED_PARAMS.has(name), `sentiment${id}/${name}`));
      t.dispose();
    }
    return params;
  }

  /** Number of ensemble members. */
  get numMembers(): number { return this.members.length; }

  /** A member's variables, keyed by their names in the checkpoint. */
  variables(member = 0): Map<string, tf.Variable> {
    const m = this.members[member];
    if (!m) throw new RangeError(`no member ${member}`);
    return m;
  }

  /** Word ids of a text (unknown words → `<unk>`), cut to `maxLen`. */
  encodeText(text: string): number[] {
    let toks = wordTokens(text);
    if (this.arch.splitHyphens) toks = toks.flatMap(t => (t.length > 1 && t.includes('-') ? t.split(/(-)/).filter(x => x !== '') : [t]));
    const n = Math.min(toks.length, this.arch.maxLen);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = this.index.get(toks[i]!) ?? 1;
    return out;
  }

  /** Whole-text features beside the words: VADER's compound score when `arch.vaderFeature`. */
  textFeature(text: string): number {
    return this.arch.vaderFeature ? vaderCompound(text) : 0;
  }

  /** The hashed n-gram buckets of a text's ids: its bigrams, then (order 3) its trigrams; empty without the n-gram path. */
  ngramBuckets(s: readonly number[]): Int32Array {
    const B = this.arch.bigramBuckets;
    if (!(B > 0)) return new Int32Array(0);
    const order = this.arch.ngramOrder ?? 2;
    const out = new Int32Array(Math.max(0, s.length - 1) + (order >= 3 ? Math.max(0, s.length - 2) : 0));
    let k = 0;
    // (hashIds(s, t, 2) is hashString(`${s[t]} ${s[t + 1]}`), the n-gram key of earlier checkpoints.)
    for (let t = 0; t + 1 < s.length; t++) out[k++] = hashIds(s, t, 2) % B;
    if (order >= 3) for (let t = 0; t + 2 < s.length; t++) out[k++] = hashIds(s, t, 3) % B;
    return out;
  }

  /**
   * Pack id sequences into padded arrays (plus bigram buckets and text features). `wordDrop`
   * replaces ids by `<unk>` with that probability.
   */
  packBatch(seqs: number[][], rng?: Rng, wordDrop = 0, features?: number[]): EncodedBatch {
    const maxW = Math.max(1, ...this.arch.widths);
    const len = Math.max(maxW, ...seqs.map(s => s.length));
    const batch = seqs.length;
    const ids = new Int32Array(batch * len);
    const mask = new Float32Array(batch * len);
    const order = this.arch.ngramOrder ?? 2;
    const bigramLen = Math.max(1, len - 1) + (order >= 3 ? Math.max(0, len - 2) : 0);
    const bigrams = new Int32Array(batch * bigramLen);
    const bigramMask = new Float32Array(batch * bigramLen);
    const B = this.arch.bigramBuckets;
    for (let b = 0; b < batch; b++) {
      const s = seqs[b]!;
      for (let t = 0; t < s.length; t++) {
        let id = s[t]!;
        if (wordDrop > 0 && rng && rng.random() < wordDrop) id = 1;
        ids[b * len + t] = id;
        mask[b * len + t] = 1;
      }
      if (B > 0) {
        // Hash the original ids (word dropout does not touch the n-gram path).
        const g = this.ngramBuckets(s);
        bigrams.set(g, b * bigramLen);
        bigramMask.fill(1, b * bigramLen, b * bigramLen + g.length);
      }
    }
    const vader = Float32Array.from({ length: batch }, (_, b) => features?.[b] ?? 0);
    return { ids, mask, bigrams, bigramMask, vader, batch, len, bigramLen };
  }

  /** Logits [batch] of "positive" from one member. `dropout` > 0 only in training. */
  logits(enc: EncodedBatch, dropout = 0, seed = 0, member = 0): tf.Tensor1D {
    return tf.tidy(() => {
      const out = this.forward(enc, dropout, seed, member);
      out.emotion?.dispose();
      return out.sentiment;
    });
  }

  /**
   * Both heads of one member: the sentiment logit [batch] and, when the architecture has an
   * emotion head, the emotion logits [batch, emotions]. `dropout` > 0 only in training.
   */
  forward(enc: EncodedBatch, dropout = 0, seed = 0, member = 0): { sentiment: tf.Tensor1D; emotion?: tf.Tensor2D } {
    const params = this.variables(member);
    const p = (name: string): tf.Variable => {
      const v = params.get(name);
      if (!v) throw new Error(`missing parameter ${name}`);
      return v;
    };
    return tf.tidy(() => {
      const { batch: B, len: L } = enc;
      const e = this.arch.embedDim;
      const ids = tf.tensor1d(enc.ids, 'int32');
      const mask = tf.tensor3d(enc.mask, [B, L, 1]);
      const tv = this.arch.trainableVocab;
      let emb: tf.Tensor3D;
      if (tv === undefined || tv >= this.vocab.length) emb = lookup(p('embedding') as tf.Tensor2D, ids).reshape([B, L, e]) as tf.Tensor3D;
      else {
        // Words past the trainable prefix take their fixed pretrained row.
        const own = new Int32Array(enc.ids.length);
        const fixed = new Float32Array(enc.ids.length);
        for (let i = 0; i < own.length; i++) { const id = enc.ids[i]!; if (id < tv) own[i] = id; else fixed[i] = 1; }
        const f = tf.tensor2d(fixed, [B * L, 1]);
        emb = tf.add(lookup(p('embedding') as tf.Tensor2D, tf.tensor1d(own, 'int32')).mul(tf.sub(1, f)), tf.gather(p('pretrained'), ids).mul(f)).reshape([B, L, e]) as tf.Tensor3D;
      }
      if (this.arch.staticChannel) emb = tf.concat([emb, tf.gather(p('pretrained'), ids).reshape([B, L, e]) as tf.Tensor3D], 2);
      if (dropout > 0) emb = tf.dropout(emb, dropout * 0.5, undefined, seed) as tf.Tensor3D;
      if (this.arch.lexicon) emb = tf.concat([emb, tf.gather(p('lexicon'), ids).reshape([B, L, 1]) as tf.Tensor3D], 2);
      emb = emb.mul(mask);
      const d = emb.shape[2];
      const pooled: tf.Tensor2D[] = [];
      const textLengths = this.arch.maskWindows ? rowLengths(enc) : undefined;
      for (const k of this.arch.widths) {
        const n = L - k + 1;
        const cols: tf.Tensor3D[] = [];
        for (let i = 0; i < k; i++) cols.push(emb.slice([0, i, 0], [B, n, d]));
        const x = (k === 1 ? cols[0]! : tf.concat(cols, 2)).reshape([B * n, k * d]) as tf.Tensor2D;
        let h = tf.relu(tf.add(dense(x, p(`conv${k}/kernel`) as tf.Tensor2D), p(`conv${k}/bias`))).reshape([B, n, this.arch.filters]) as tf.Tensor3D;
        if (textLengths) {
          // Windows from t = max(1, len − k + 1) on reach past the text: 0, which never beats a ReLU output.
          const valid = new Float32Array(B * n);
          for (let b = 0; b < B; b++) valid.fill(1, b * n, b * n + Math.min(n, Math.max(1, textLengths[b]! - k + 1)));
          h = h.mul(tf.tensor3d(valid, [B, n, 1]));
        }
        pooled.push(maxOverTime(h));
      }
      if ((this.arch.rnn ?? 0) > 0) {
        // The backward GRU reads each row's words in reverse (its padding stays at the end).
        const rev = new Int32Array(B * L);
        const lengths = textLengths ?? rowLengths(enc);
        for (let b = 0; b < B; b++) {
          const n = lengths[b]!;
          for (let t = 0; t < L; t++) rev[b * L + t] = b * L + (t < n ? n - 1 - t : t);
        }
        const back = lookup(emb.reshape([B * L, d]) as tf.Tensor2D, tf.tensor1d(rev, 'int32')).reshape([B, L, d]) as tf.Tensor3D;
        pooled.push(this.biGruMaxPool(emb, back, lengths, p));
      }
      let feat: tf.Tensor2D = pooled.length === 1 ? pooled[0]! : tf.concat(pooled, 1);
      if (dropout > 0) feat = tf.dropout(feat, dropout, undefined, seed + 1) as tf.Tensor2D;
      if (this.arch.hidden > 0) {
        feat = tf.relu(tf.add(dense(feat, p('hidden/kernel') as tf.Tensor2D), p('hidden/bias'))) as tf.Tensor2D;
        if (dropout > 0) feat = tf.dropout(feat, dropout, undefined, seed + 2) as tf.Tensor2D;
      }
      let out = tf.add(dense(feat, p('out/kernel') as tf.Tensor2D), p('out/bias')).reshape([B]) as tf.Tensor1D;
      if (this.arch.bigramBuckets > 0) {
        const bi = lookup(p('bigram') as tf.Tensor2D, tf.tensor1d(enc.bigrams, 'int32')).reshape([B, enc.bigramLen]);
        out = out.add(bi.mul(tf.tensor2d(enc.bigramMask, [B, enc.bigramLen])).sum(1));
      }
      const vader = this.arch.vaderFeature ? tf.tensor2d(enc.vader, [B, 1]) : undefined;
      if (vader) out = out.add(dense(vader, p('vader/kernel') as tf.Tensor2D).reshape([B]));
      if (!((this.arch.emotions ?? 0) > 0)) return { sentiment: out };
      let emo = tf.add(dense(feat, p('emotion/kernel') as tf.Tensor2D), p('emotion/bias')) as tf.Tensor2D;
      if (vader) emo = emo.add(dense(vader, p('emotion/vader') as tf.Tensor2D));
      return { sentiment: out, emotion: emo };
    });
  }

  /**
   * The bidirectional GRU (the cuDNN variant: the reset gate scales the recurrent part of the
   * candidate) over [B, L, d] inputs, `fwd` and its rows reversed `back`, whose valid steps are a
   * prefix of `lengths[b]`. Returns [B, 2H]: the max over valid steps of the forward states, then
   * of the backward ones. Both directions run as one batch of two ([2, B, ·] tensors with batched
   * matMuls), so a step costs a dozen ops whatever the direction count.
   */
  private biGruMaxPool(fwd: tf.Tensor3D, back: tf.Tensor3D, lengths: Int32Array, p: (name: string) => tf.Variable): tf.Tensor2D {
    const [B, L, d] = fwd.shape;
    const H = this.arch.rnn!;
    const both = (name: string) => tf.stack([p(`gru/fw/${name}`), p(`gru/bw/${name}`)]);
    const K = both('kernel') as tf.Tensor3D, U = both('recurrent') as tf.Tensor3D;
    const Uzr = U.slice([0, 0, 0], [2, H, 2 * H]), Un = U.slice([0, 0, 2 * H], [2, H, H]);
    const x = tf.stack([fwd.reshape([B * L, d]), back.reshape([B * L, d])]) as tf.Tensor3D;
    const xw = tf.add(dense(x, K), both('bias').reshape([2, 1, 3 * H])).reshape([2, B, L, 3 * H]);
    // One unstack per part, not a slice per step: each slice's gradient would be a full-size pad (memory O(L²)).
    // (tfjs's gradient of an unstack into one tensor fails: a reshape then.)
    const steps = (t: tf.Tensor): tf.Tensor3D[] => (L === 1 ? [t.reshape([2, B, t.shape[3]!])] : tf.unstack(t, 2)) as tf.Tensor3D[];
    const xzr = steps(xw.slice([0, 0, 0, 0], [2, B, L, 2 * H])), xn = steps(xw.slice([0, 0, 0, 2 * H], [2, B, L, H]));
    const minLen = Math.min(...lengths);
    let h: tf.Tensor3D = tf.zeros([2, B, H]);
    const outs: tf.Tensor3D[] = [];
    for (let t = 0; t < L; t++) {
      const gates = tf.sigmoid(tf.add(xzr[t]!, dense(h, Uzr)));
      const z = gates.slice([0, 0, 0], [2, B, H]), r = gates.slice([0, 0, H], [2, B, H]);
      const n = tf.tanh(tf.add(xn[t]!, tf.mul(r, dense(h, Un))));
      h = tf.add(n, tf.mul(z, tf.sub(h, n))) as tf.Tensor3D;
      if (t < minLen) outs.push(h);
      else {
        // Padding steps read h − 4 (below −3; valid states are tanh-bounded), so they never win the max.
        const pad = tf.tensor3d(Float32Array.from(lengths, n => (t < n ? 0 : -4)), [1, B, 1]);
        outs.push(tf.add(h, pad) as tf.Tensor3D);
      }
    }
    const pooled = maxOverTime((tf.stack(outs, 2) as tf.Tensor4D).reshape([2 * B, L, H]) as tf.Tensor3D).reshape([2, B, H]);
    return tf.concat([pooled.slice([0, 0, 0], [1, B, H]).reshape([B, H]), pooled.slice([1, 0, 0], [1, B, H]).reshape([B, H])], 1) as tf.Tensor2D;
  }

  /** Probability of "positive" for each text (batched, no dropout; the mean over `members`, default all). */
  async predict(texts: string[], batchSize = 64, members?: number[]): Promise<Float32Array> {
    return (await this.predictAll(texts, batchSize, members, false)).positive;
  }

  /** Number of emotion classes (0 without an emotion head). */
  get numEmotions(): number { return this.arch.emotions ?? 0; }

  /** Names of the emotion classes (empty without an emotion head). */
  get emotionLabels(): string[] {
    const E = this.numEmotions;
    return Array.from({ length: E }, (_, i) => this.arch.emotionLabels?.[i] ?? `emotion${i}`);
  }

  /**
   * Both heads for each text: the probability of "positive" and, with an emotion head and
   * `withEmotions`, the emotion distributions ([texts × emotions], rows summing to 1), each the
   * mean over `members` (default all). An empty text is 0.5 positive. Runs on the fast path when
   * it is on (`useFastPath`), else as TensorFlow.js batches of `batchSize`.
   */
  async predictAll(texts: string[], batchSize = 64, members?: number[], withEmotions = true): Promise<{ positive: Float32Array; emotions?: Float32Array }> {
    const use = members ?? this.members.map((_, i) => i);
    const E = withEmotions ? this.numEmotions : 0;
    const positive = new Float32Array(texts.length);
    const emotions = E > 0 ? new Float32Array(texts.length * E) : undefined;
    if (this.fast) {
      texts.forEach((t, i) => {
        const ids = this.encodeText(t);
        const p = this.fast!.predict(ids, this.ngramBuckets(ids), this.textFeature(t), emotions?.subarray(i * E, (i + 1) * E), use);
        positive[i] = ids.length === 0 ? 0.5 : p;
      });
      return { positive, emotions };
    }
    const enc = texts.map((t, i) => ({ i, ids: this.encodeText(t), f: this.textFeature(t) }));
    // Sort by length so that padding stays small.
    enc.sort((a, b) => a.ids.length - b.ids.length);
    for (let s = 0; s < enc.length; s += batchSize) {
      const chunk = enc.slice(s, s + batchSize);
      const [probs, emo] = tf.tidy(() => {
        const b = this.packBatch(chunk.map(c => c.ids), undefined, 0, chunk.map(c => c.f));
        const outs = use.map(m => this.forward(b, 0, 0, m));
        const p = tf.addN(outs.map(o => tf.sigmoid(o.sentiment))).div(use.length);
        return [p, E > 0 ? tf.addN(outs.map(o => tf.softmax(o.emotion!))).div(use.length) : undefined] as const;
      });
      const v = await probs.data();
      const ev = emo ? await emo.data() : undefined;
      tf.dispose([probs, ...(emo ? [emo] : [])]);
      chunk.forEach((c, j) => {
        positive[c.i] = c.ids.length === 0 ? 0.5 : v[j]!;
        if (ev && emotions) emotions.set(ev.subarray(j * E, (j + 1) * E), c.i * E);
      });
    }
    return { positive, emotions };
  }

  /** Whether the plain-TypeScript forward pass (rewards/fast-classifier.ts) can run this architecture: no GRU, windows masked. */
  get fastPathEligible(): boolean { return !((this.arch.rnn ?? 0) > 0) && this.arch.maskWindows === true && this.arch.widths.length > 0; }

  /** Empty the fast path's per-word cache (benchmarks of a cold start). */
  clearFastCache(): void { this.fast?.clearCache(); }

  /** Whether predictions run on the fast path. */
  get fastPathOn(): boolean { return this.fast !== undefined; }

  /**
   * Score on the fast path (a snapshot of the weights now: call it again after changing them) or
   * not. Returns whether it is on; an architecture it cannot run stays on TensorFlow.js.
   */
  useFastPath(on = true): boolean {
    this.fast = undefined;
    if (!on || !this.fastPathEligible) return false;
    const a = this.arch;
    const data = (m: Map<string, tf.Variable>, name: string) => m.get(name)?.dataSync() as Float32Array | undefined;
    const weights: FastMemberWeights[] = this.members.map(m => {
      const need = (name: string) => { const d = data(m, name); if (!d) throw new Error(`missing parameter ${name}`); return d; };
      return {
        embedding: need('embedding'), pretrained: data(m, 'pretrained'), lexicon: a.lexicon ? need('lexicon') : undefined,
        conv: a.widths.map(k => ({ k, kernel: need(`conv${k}/kernel`), bias: need(`conv${k}/bias`) })),
        hidden: a.hidden > 0 ? { kernel: need('hidden/kernel'), bias: need('hidden/bias') } : undefined,
        outKernel: need('out/kernel'), outBias: need('out/bias')[0]!,
        bigram: a.bigramBuckets > 0 ? need('bigram') : undefined,
        vader: a.vaderFeature ? need('vader/kernel')[0]! : undefined,
        emotion: (a.emotions ?? 0) > 0 ? { kernel: need('emotion/kernel'), bias: need('emotion/bias'), vader: a.vaderFeature ? need('emotion/vader') : undefined } : undefined,
      };
    });
    const shape: FastShape = {
      embedDim: a.embedDim, filters: a.filters, hidden: a.hidden, trainableVocab: a.trainableVocab ?? this.vocab.length,
      staticChannel: a.staticChannel === true, emotions: a.emotions ?? 0,
    };
    this.fast = new FastForward(shape, weights);
    return true;
  }

  /** Write the checkpoint folder (atomically per file). */
  async save(dir: string, meta: ClassifierMeta = this.meta): Promise<void> {
    await mkdir(dir, { recursive: true });
    const manifest: SavedFile['weights'] = [];
    const parts: Float32Array[] = [];
    let offset = 0;
    for (let m = 0; m < this.members.length; m++) {
      for (const [name, v] of this.members[m]!) {
        const data = (await v.data()) as Float32Array;
        manifest.push({ name, shape: v.shape.slice(), offset, member: m });
        parts.push(data);
        offset += data.length;
      }
    }
    let buf: Buffer;
    // weights.bin is little-endian: copy the floats as they are on such hosts.
    if (LITTLE_ENDIAN) buf = Buffer.concat(parts.map(p => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
    else {
      buf = Buffer.alloc(offset * 4);
      let o = 0;
      for (const p of parts) { for (let i = 0; i < p.length; i++) buf.writeFloatLE(p[i]!, (o + i) * 4); o += p.length; }
    }
    this.meta = meta;
    const file: SavedFile = { format: CLASSIFIER_FORMAT, version: CLASSIFIER_VERSION, arch: this.arch, vocab: this.vocab, weights: manifest, meta };
    await writeFile(path.join(dir, 'weights.bin.tmp'), buf);
    await rename(path.join(dir, 'weights.bin.tmp'), path.join(dir, 'weights.bin'));
    await writeFile(path.join(dir, 'classifier.json.tmp'), JSON.stringify(file));
    await rename(path.join(dir, 'classifier.json.tmp'), path.join(dir, 'classifier.json'));
  }

  /** Load a checkpoint folder written by `save`; a missing or foreign folder is a NOT_FOUND / BAD_CONFIG error. */
  static async load(dir: string): Promise<SentimentClassifier> {
    const cfgPath = path.join(dir, 'classifier.json');
    if (!existsSync(cfgPath)) {
      throw new ColloquyError('NOT_FOUND', `no sentiment classifier at ${dir} (expected ${cfgPath}); train one with 'colloquy sentiment train --out ${dir}'`);
    }
    let file: SavedFile;
    try { file = JSON.parse(await readFile(cfgPath, 'utf8')) as SavedFile; } catch (err) {
      throw new ColloquyError('BAD_CONFIG', `${cfgPath} is not valid JSON: ${(err as Error).message}`);
    }
    if (file.format !== CLASSIFIER_FORMAT) throw new ColloquyError('BAD_CONFIG', `${cfgPath} is not a ${CLASSIFIER_FORMAT} checkpoint`);
    if (file.version !== 1 && file.version !== CLASSIFIER_VERSION) {
      throw new ColloquyError('BAD_CONFIG', `${cfgPath} is version ${String(file.version)} of ${CLASSIFIER_FORMAT}; this colloquy reads versions 1 and ${CLASSIFIER_VERSION}`);
    }
    let buf: Buffer;
    try { buf = await readFile(path.join(dir, 'weights.bin')); } catch {
      throw new ColloquyError('NOT_FOUND', `missing ${path.join(dir, 'weights.bin')}`);
    }
    const all = new Float32Array(buf.byteLength >> 2);
    if (LITTLE_ENDIAN) new Uint8Array(all.buffer).set(buf.subarray(0, all.length * 4));
    else for (let i = 0; i < all.length; i++) all[i] = buf.readFloatLE(i * 4);
    const id = ++instanceCounter;
    const members: Map<string, tf.Variable>[] = [];
    for (const w of file.weights) {
      const m = w.member ?? 0;
      while (members.length <= m) members.push(new Map());
      const n = w.shape.reduce((a, b) => a * b, 1);
      if (w.offset + n > all.length) throw new ColloquyError('BAD_CONFIG', `weights.bin in ${dir} is too short for ${w.name}`);
      const t = tf.tensor(all.subarray(w.offset, w.offset + n), w.shape);
      members[m]!.set(w.name, tf.variable(t, false, `sentiment${id}/m${m}/${w.name}`));
      t.dispose();
    }
    if (members.length === 0) throw new ColloquyError('BAD_CONFIG', `${cfgPath} lists no weights`);
    const model = new SentimentClassifier(file.arch, file.vocab, members, file.meta ?? {});
    // A loaded checkpoint scores on the fast path when it can (COLLOQUY_SENTIMENT_FAST=0: never).
    if (process.env.COLLOQUY_SENTIMENT_FAST !== '0') model.useFastPath();
    return model;
  }

  dispose(): void {
    this.fast = undefined;
    for (const m of this.members) { for (const v of m.values()) v.dispose(); m.clear(); }
    this.members.length = 0;
  }
}

/** What the `classifier` scorer's score is: the sentiment head's, or (Jaques et al.) the emotion head's weighted valence. */
export type ClassifierMode = 'sentiment' | 'emotion';

export interface ClassifierScorerOptions {
  batchSize?: number;
  /** Default `sentiment`. */
  mode?: ClassifierMode;
  /** `emotion` mode: weights in [-1, 1] by emotion name over `DEFAULT_EMOTION_WEIGHTS`. */
  emotionWeights?: Readonly<Record<string, number>>;
}

/**
 * The `classifier` sentiment scorer. Mode `sentiment`: signed = 2p − 1 for the probability p of
 * "positive". Mode `emotion` (a checkpoint with an emotion head): signed = Σ p(e)·w(e) over the
 * predicted emotion distribution (rewards/emotions.ts).
 */
export class ClassifierScorer implements SentimentScorer {
  readonly name: string;
  readonly mode: ClassifierMode;
  /** The emotion weights in the model's label order (emotion mode). */
  readonly weights?: Float32Array;
  private readonly batchSize: number;
  constructor(readonly model: SentimentClassifier, opts: ClassifierScorerOptions | number = {}) {
    const o = typeof opts === 'number' ? { batchSize: opts } : opts;
    this.batchSize = o.batchSize ?? 64;
    this.mode = o.mode ?? 'sentiment';
    if (this.mode === 'emotion') {
      if (model.numEmotions === 0) throw new ColloquyError('BAD_CONFIG', "this classifier has no emotion head (train one with 'colloquy sentiment train --emotions')");
      this.weights = emotionWeightVector(model.emotionLabels, o.emotionWeights);
    } else if (o.emotionWeights) throw new ColloquyError('BAD_CONFIG', "emotionWeights apply to mode 'emotion' only");
    this.name = this.mode === 'emotion' ? 'classifier-emotion' : 'classifier';
  }
  static async load(dir: string, opts: ClassifierScorerOptions = {}): Promise<ClassifierScorer> { return new ClassifierScorer(await SentimentClassifier.load(dir), opts); }
  async score(texts: string[]): Promise<SentimentScore[]> {
    if (this.mode === 'sentiment') {
      const p = await this.model.predict(texts, this.batchSize);
      return Array.from(p, v => fromSigned(2 * v - 1));
    }
    return (await this.emotions(texts)).map(d => fromSigned(emotionValence(d, this.weights!)));
  }
  /** Each text's emotion distribution (in `model.emotionLabels` order); BAD_CONFIG without an emotion head. */
  async emotions(texts: string[]): Promise<Float32Array[]> {
    const E = this.model.numEmotions;
    if (E === 0) throw new ColloquyError('BAD_CONFIG', 'this classifier has no emotion head');
    const { emotions } = await this.model.predictAll(texts, this.batchSize);
    return texts.map((_, i) => emotions!.subarray(i * E, (i + 1) * E));
  }
  dispose(): void { this.model.dispose(); }
}
