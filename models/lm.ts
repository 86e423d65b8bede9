/**
 * The base language model: a small decoder-only transformer (pre-LN, ReLU MLP — or GELU, for
 * imported GPT-2-family models — learned or sinusoidal positions, optionally tied embeddings) written with TensorFlow.js. It is the base
 * policy, the student simulator and the KL prior.
 *
 * - `TransformerLM.create(config, seed)`; checkpoints: `saveCheckpoint` / `loadCheckpoint` (checkpoint.ts).
 * - Training: `loss(batch)` inside `tf.variableGrads`.
 * - The forward pass in pieces, for callers that run part of it (the ppo-kl policy computes its
 *   frozen lower blocks once, without gradients): `embed` → `blocks(x, {from, to})` → `finalNorm`;
 *   `hidden` is the three in a row. The block structure itself is written once, in block.ts.
 * - Inference: `nextTokenLogProbs(contexts)` (full distributions, for exact KL),
 *   `sequenceLogProbs(prefixes, continuations)` (per-token log-probs), and the KV-cached
 *   `startSession(prefixes)` (see sampler.ts) with `generate(prefixes, opts)` on top.
 *
 * Context longer than `contextLength`: a row of n tokens is read through the window
 * `windowStart(n, C)` … n, the same rule in the full forward pass and in the KV-cached session,
 * so both give the same numbers (see `windowStart`).
 *
 * Heavy lifting is in lm-ops.ts (ops with hand-written gradients, fast on the wasm backend).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng.ts';
import { BadConfig } from '../core/errors.ts';
import { validateConfig } from '../core/config.ts';
import { LMArchSchema, type LMConfig } from '../configs/models/schema.ts';
import { attention, concatF32, embed, layerNorm, linear, logSoftmaxRows, matMulTransposedB, nativeBlock, nativeBlockAvailable, outputCrossEntropy, readF32, selectRows, tidyRead, windowStart } from './lm-ops.ts';
export { windowStart } from './lm-ops.ts';
import { BLOCK_PARAMS, blocks, finalNorm, type BlockSteps } from './block.ts';
import { LMSession, generate, type GenerateOptions, type GenerateResult, type InferenceCache } from './sampler.ts';

export type { LMConfig } from '../configs/models/schema.ts';

export interface ParamSpec { name: string; shape: number[] }

/** A training batch: `tokens` holds B rows of T+1 ids (inputs are the first T, targets the last T). */
export interface LMBatch { tokens: Int32Array; batchSize: number; seqLength: number; weights?: Float32Array | null }

/** Options of the forward pass over a batch of B rows of T tokens. */
export interface ForwardOptions {
  /** Left padding of each row (its positions count from there; keys before it are masked), or null. */
  starts?: Int32Array | null;
  /** Turns on dropout (training); the same seed gives the same masks. */
  dropoutSeed?: number;
  /** Receives each block's q|k|v rows (the KV-cached session fills its cache from them). */
  capture?: (layer: number, qkv: Float32Array) => void;
}

let modelCounter = 0;

export class TransformerLM {
  readonly config: LMConfig;
  /** Parameters by name (unprefixed), in a fixed order. */
  readonly params = new Map<string, tf.Variable>();
  /** Fixed sinusoidal table when `positional` is 'sinusoidal'. */
  private readonly posTable: tf.Tensor2D | null = null;
  private readonly prefix: string;
  private disposed = false;

  private constructor(config: LMConfig, values: Map<string, Float32Array>) {
    this.config = config;
    this.prefix = `lm${modelCounter++}/`;
    for (const spec of TransformerLM.paramSpecs(config)) {
      const v = values.get(spec.name);
      if (!v) throw new BadConfig(`missing weight '${spec.name}'`);
      const size = spec.shape.reduce((a, b) => a * b, 1);
      if (v.length !== size) throw new BadConfig(`weight '${spec.name}' has ${v.length} values, expected ${size} (${spec.shape.join('×')})`);
      const init = tf.tensor(v, spec.shape);
      this.params.set(spec.name, tf.variable(init, true, this.prefix + spec.name));
      init.dispose();
    }
    if (config.positional === 'sinusoidal') this.posTable = tf.keep(tf.tensor2d(sinusoids(config.contextLength, config.dModel), [config.contextLength, config.dModel]));
  }

  /** Validate an architecture config (defaults filled) and check derived constraints. */
  static validate(config: Partial<LMConfig>): LMConfig {
    const c = validateConfig(LMArchSchema, config, 'model config');
    if (c.dModel % c.nHeads !== 0) throw new BadConfig(`model config: dModel ${c.dModel} must be divisible by nHeads ${c.nHeads}`);
    if (c.bosTokenId >= c.vocabSize) throw new BadConfig(`model config: bosTokenId ${c.bosTokenId} outside the vocabulary (${c.vocabSize})`);
    return c;
  }

  static paramSpecs(c: LMConfig): ParamSpec[] {
    const d = c.dModel;
    const specs: ParamSpec[] = [{ name: 'tok_emb', shape: [c.vocabSize, d] }];
    if (c.positional === 'learned') specs.push({ name: 'pos_emb', shape: [c.contextLength, d] });
    for (let l = 0; l < c.nLayers; l++) {
      const shapes: Record<(typeof BLOCK_PARAMS)[number], number[]> = {
        'ln1.g': [d], 'ln1.b': [d], 'attn.qkv.w': [d, 3 * d], 'attn.qkv.b': [3 * d], 'attn.out.w': [d, d], 'attn.out.b': [d],
        'ln2.g': [d], 'ln2.b': [d], 'mlp.fc.w': [d, c.dFF], 'mlp.fc.b': [c.dFF], 'mlp.proj.w': [c.dFF, d], 'mlp.proj.b': [d],
      };
      for (const p of BLOCK_PARAMS) specs.push({ name: `h${l}.${p}`, shape: shapes[p] });
    }
    specs.push({ name: 'ln_f.g', shape: [d] }, { name: 'ln_f.b', shape: [d] });
    if (!c.tieEmbeddings) specs.push({ name: 'out_emb', shape: [c.vocabSize, d] });
    return specs;
  }

  /** A freshly initialised model (GPT-2 style: N(0, initStd²), residual projections / √(2L)). */
  static create(config: Partial<LMConfig>, seed: number): TransformerLM {
    const c = TransformerLM.validate(config);
    const rng = new Rng(seed);
    const values = new Map<string, Float32Array>();
    const resid = c.initStd / Math.sqrt(2 * c.nLayers);
    for (const spec of TransformerLM.paramSpecs(c)) {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      const a = new Float32Array(size);
      const leaf = spec.name.slice(spec.name.lastIndexOf('.') + 1);
      if (spec.name.endsWith('.g')) a.fill(1);
      else if (leaf === 'b' || spec.name === 'ln_f.b') { /* zeros */ }
      else {
        const std = spec.name.endsWith('attn.out.w') || spec.name.endsWith('mlp.proj.w') ? resid : c.initStd;
        for (let i = 0; i < size; i++) a[i] = rng.normal() * std;
      }
      values.set(spec.name, a);
    }
    return new TransformerLM(c, values);
  }

  /** A model from given weight values (checkpoint loading). */
  static fromWeights(config: Partial<LMConfig>, values: Map<string, Float32Array>): TransformerLM {
    return new TransformerLM(TransformerLM.validate(config), values);
  }

  get numParams(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** Trainable variables in a fixed order (for `tf.variableGrads`). */
  get variables(): tf.Variable[] { return [...this.params.values()]; }

  param(name: string): tf.Variable {
    const p = this.params.get(name);
    if (!p) throw new Error(`no parameter '${name}'`);
    return p;
  }

  /** The position table: learned or fixed. */
  positionTable(): tf.Tensor2D {
    return (this.posTable ?? this.param('pos_emb')) as tf.Tensor2D;
  }

  /** The output projection [V, d]. */
  outputMatrix(): tf.Tensor2D {
    return this.param(this.config.tieEmbeddings ? 'tok_emb' : 'out_emb') as tf.Tensor2D;
  }

  // ---------------------------------------------------------------------------------- forward

  /**
   * Hidden states after the final layer norm, [B·T, d]: `embed`, every block, `finalNorm`.
   * `starts[b]` = left padding of row b (its positions count from there). `dropoutSeed` turns on
   * dropout (training).
   */
  hidden(ids: Int32Array, B: number, T: number, opts: ForwardOptions = {}): tf.Tensor2D {
    return this.finalNorm(this.blocks(this.embed(ids, B, T, opts), B, T, opts));
  }

  /** The residual stream entering block 0, [B·T, d]: token + position embeddings (dropout when training). */
  embed(ids: Int32Array, B: number, T: number, opts: Pick<ForwardOptions, 'starts' | 'dropoutSeed'> = {}): tf.Tensor2D {
    this.assertLive();
    const c = this.config;
    if (T > c.contextLength) throw new RangeError(`sequence of ${T} tokens is longer than the context length ${c.contextLength}`);
    if (ids.length !== B * T) throw new RangeError(`embed: ${ids.length} ids for ${B}×${T}`);
    const starts = opts.starts ?? null;
    const pos = new Int32Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = Math.max(0, t - (starts ? starts[b]! : 0));
    const x = embed(this.param('tok_emb') as tf.Tensor2D, this.positionTable(), ids, pos);
    return this.dropping(opts) ? tf.dropout(x, c.dropout, undefined, opts.dropoutSeed!) as tf.Tensor2D : x;
  }

  /**
   * Blocks `from` … `to` − 1 (default all) on the residual stream x [B·T, d] entering block `from`;
   * returns the stream leaving block `to` − 1. Dropout masks depend on the seed and the block only,
   * so running the blocks in pieces gives the numbers of one pass.
   */
  blocks(x: tf.Tensor2D, B: number, T: number, opts: ForwardOptions & { from?: number; to?: number; rows?: Int32Array } = {}): tf.Tensor2D {
    this.assertLive();
    const L = this.config.nLayers;
    const from = opts.from ?? 0, to = opts.to ?? L;
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= L)) throw new RangeError(`blocks: range [${from}, ${to}) outside the model's ${L} blocks`);
    // `rows`: only those rows of the output are wanted (block.ts blockAt; the same numbers at them).
    // Dropout masks are drawn for the whole batch, so with dropout every row runs and is then picked.
    const rows = opts.rows;
    if (rows && this.dropping(opts)) return selectRows(blocks(this.steps(B, T, opts), x, from, to), rows);
    // Natively, a block is one op each way (lm-ops.ts nativeBlock: the same bits).
    if (!this.dropping(opts) && !opts.capture && nativeBlockAvailable()) {
      const c = this.config;
      for (let l = from; l < to; l++) {
        const params = BLOCK_PARAMS.map(p => this.param(`h${l}.${p}`));
        x = nativeBlock(x, params, { B, T, H: c.nHeads, activation: c.activation ?? 'relu', eps: c.layerNormEps, starts: opts.starts ?? null, rows: rows && l === to - 1 ? rows : null });
      }
      return rows && from >= to ? selectRows(x, rows) : x;
    }
    return blocks(this.steps(B, T, opts), x, from, to, rows ? (t: tf.Tensor2D) => selectRows(t, rows) : undefined);
  }

  /** The final layer norm of the residual stream: the hidden states the output matrix reads. */
  finalNorm(x: tf.Tensor2D): tf.Tensor2D {
    return finalNorm(this.steps(0, 0, {}), x);
  }

  private dropping(opts: ForwardOptions): boolean {
    return this.config.dropout > 0 && opts.dropoutSeed !== undefined;
  }

  /** The block steps of the full forward pass: lm-ops.ts's ops, with gradients. */
  private steps(B: number, T: number, opts: ForwardOptions): BlockSteps<tf.Tensor2D> {
    const c = this.config;
    const starts = opts.starts ?? null, capture = opts.capture;
    const drop = this.dropping(opts), seed = opts.dropoutSeed ?? 0;
    return {
      norm: (x, name) => layerNorm(x, this.param(`${name}.g`) as tf.Tensor1D, this.param(`${name}.b`) as tf.Tensor1D, c.layerNormEps),
      linear: (x, name, mlp) => linear(x, this.param(`${name}.w`) as tf.Tensor2D, this.param(`${name}.b`) as tf.Tensor1D, mlp ? c.activation ?? 'relu' : 'linear'),
      attend: (qkv, layer) => attention(qkv, { B, T, H: c.nHeads, starts, ...(capture ? { capture: (a: Float32Array) => capture(layer, a) } : {}) }),
      // Seeds in the order of one pass: the embedding's, then two per block.
      residual: (x, y, layer, which) => tf.add(x, drop ? tf.dropout(y, c.dropout, undefined, seed + 1 + 2 * layer + which) : y) as tf.Tensor2D,
    };
  }

  /** Mean next-token NLL of a batch (a scalar tensor; use inside `tf.variableGrads`). */
  loss(batch: LMBatch, dropoutSeed?: number): tf.Scalar {
    const { batchSize: B, seqLength: T, tokens } = batch;
    if (tokens.length !== B * (T + 1)) throw new RangeError(`batch has ${tokens.length} tokens, expected ${B}×${T + 1}`);
    const ids = new Int32Array(B * T), targets = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      ids.set(tokens.subarray(b * (T + 1), b * (T + 1) + T), b * T);
      targets.set(tokens.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
    }
    const h = this.hidden(ids, B, T, dropoutSeed === undefined ? {} : { dropoutSeed });
    return outputCrossEntropy(h, this.outputMatrix(), targets, batch.weights ?? null);
  }

  /** Mean NLL of a batch without gradients (validation). */
  evalLoss(batch: LMBatch): number {
    return tf.tidy(() => readF32(this.loss(batch))[0]!);
  }

  /**
   * Log-probabilities of the next token after each context (full distribution, length V each).
   * Contexts of different lengths are left-padded; longer than the context length they slide
   * (`windowStart`). An empty context reads as [bosTokenId].
   */
  nextTokenLogProbs(contexts: number[][]): Float32Array[] {
    const V = this.config.vocabSize;
    return this.logits(contexts).map(row => logSoftmaxRows(row, V));
  }

  /** Raw next-token logits after each context (same windowing as `nextTokenLogProbs`). */
  logits(contexts: number[][]): Float32Array[] {
    this.assertLive();
    if (contexts.length === 0) return [];
    const C = this.config.contextLength, V = this.config.vocabSize;
    const rows = contexts.map(ctx => {
      const s = ctx.length ? ctx : [this.config.bosTokenId];
      return s.slice(windowStart(s.length, C));
    });
    const T = Math.max(...rows.map(r => r.length));
    const B = rows.length;
    const ids = new Int32Array(B * T), starts = new Int32Array(B);
    rows.forEach((r, b) => { starts[b] = T - r.length; ids.set(r, b * T + T - r.length); });
    const logits = tidyRead(() => {
      const h = this.hidden(ids, B, T, { starts: starts.some(s => s > 0) ? starts : null });
      const last = tf.gather(h, tf.tensor1d(rows.map((_, b) => b * T + T - 1), 'int32')) as tf.Tensor2D;
      return matMulTransposedB(last, this.outputMatrix());
    });
    return rows.map((_, b) => logits.slice(b * V, (b + 1) * V));
  }

  /**
   * Log-probability of each continuation token given the prefix and the continuation before it.
   * Rows may differ in length; each token is read through the window `windowStart` gives, exactly
   * as the KV-cached session reads it.
   */
  sequenceLogProbs(prefixes: number[][], continuations: number[][]): number[][] {
    this.assertLive();
    if (prefixes.length !== continuations.length) throw new RangeError('sequenceLogProbs: prefixes and continuations differ in count');
    const C = this.config.contextLength, V = this.config.vocabSize;
    // Each scored token i of row r needs the logits after the window [windowStart(i), i): group by window.
    interface Job { row: number; start: number; end: number; score: { i: number; k: number }[] }
    const jobs: Job[] = [];
    const seqs = prefixes.map((p, r) => (p.length ? p : [this.config.bosTokenId]).concat(continuations[r]!));
    const out = continuations.map(c => new Array<number>(c.length).fill(0));
    seqs.forEach((s, r) => {
      const first = s.length - continuations[r]!.length;
      let job: Job | null = null;
      for (let i = first, k = 0; i < s.length; i++, k++) {
        const w = windowStart(i, C);
        if (!job || job.start !== w) { job = { row: r, start: w, end: i, score: [] }; jobs.push(job); }
        job.end = i; job.score.push({ i, k });
      }
    });
    // Batch jobs of similar length together (at most 4096 tokens per forward pass).
    jobs.sort((a, b) => (a.end - a.start) - (b.end - b.start));
    let j = 0;
    while (j < jobs.length) {
      const group: Job[] = [jobs[j++]!];
      while (j < jobs.length && (group.length + 1) * (jobs[j]!.end - jobs[j]!.start) <= 4096) group.push(jobs[j++]!);
      const Tg = Math.max(...group.map(g => g.end - g.start));
      const B = group.length;
      const ids = new Int32Array(B * Tg), starts = new Int32Array(B);
      group.forEach((g, b) => {
        const toks = seqs[g.row]!.slice(g.start, g.end);
        starts[b] = Tg - toks.length;
        ids.set(toks, b * Tg + starts[b]!);
      });
      // Rows needed: for scored token i, the hidden state at the token before it (i − 1).
      const need: number[] = [], where: { row: number; k: number; y: number }[] = [];
      group.forEach((g, b) => {
        for (const { i, k } of g.score) {
          need.push(b * Tg + starts[b]! + (i - 1 - g.start));
          where.push({ row: g.row, k, y: seqs[g.row]![i]! });
        }
      });
      const logits = tidyRead(() => {
        const h = this.hidden(ids, B, Tg, { starts: starts.some(s => s > 0) ? starts : null });
        return matMulTransposedB(tf.gather(h, tf.tensor1d(need, 'int32')) as tf.Tensor2D, this.outputMatrix());
      });
      logSoftmaxRows(logits, V);
      where.forEach((w, q) => { out[w.row]![w.k] = logits[q * V + w.y]!; });
    }
    return out;
  }

  /** A KV-cached incremental session over a batch of prefixes (see sampler.ts). */
  startSession(prefixes: number[][]): LMSession {
    this.assertLive();
    return new LMSession(this, prefixes);
  }

  /** Alias of `startSession` (the name in the agreed interface). */
  startBatch(prefixes: number[][]): LMSession { return this.startSession(prefixes); }

  /** Sample continuations of each prefix (KV-cached, batched). */
  generate(prefixes: number[][], opts: GenerateOptions): GenerateResult {
    return generate(this, prefixes, opts);
  }

  /**
   * What the KV-cached session reads on every step, cached while the weights stay the same (any
   * `assign` to a variable gives it a new dataId, which invalidates this): the output matrix
   * transposed [d, V] as a tensor, JS copies of the embeddings and layer-norm parameters, and (made
   * on first use) every weight packed in the order the native decoding step reads (native/decode.h).
   */
  inferenceCache(): InferenceCache {
    this.assertLive();
    const key = [...this.params.values()].map(v => v.dataId);
    const c = this.cache;
    if (c && c.key.length === key.length && c.key.every((k, i) => k === key[i])) return c;
    c?.outT.dispose();
    const js = new Map<string, Float32Array>();
    js.set('tok_emb', readF32(this.param('tok_emb')));
    js.set('pos', readF32(this.positionTable()));
    for (const [name, v] of this.params) if (/(^|\.)ln(1|2|_f)\.[gb]$/.test(name)) js.set(name, readF32(v));
    const outT = tf.keep(tf.tidy(() => tf.transpose(this.outputMatrix()) as tf.Tensor2D));
    let packed: Float32Array | null = null;
    const pack = (): Float32Array => {
      if (packed) return packed;
      const parts: Float32Array[] = [];
      for (let l = 0; l < this.config.nLayers; l++) {
        for (const n of BLOCK_PARAMS) {
          const v = this.param(`h${l}.${n}`);
          parts.push(v.shape.length === 2 ? packPanels(readF32(v), v.shape[0]!, v.shape[1]!) : readF32(v));
        }
      }
      parts.push(js.get('ln_f.g')!, js.get('ln_f.b')!, js.get('tok_emb')!, js.get('pos')!, packPanels(readF32(outT), outT.shape[0], outT.shape[1]));
      return (packed = concatF32(parts).data);
    };
    this.cache = { key, outT, js, packed: pack };
    return this.cache;
  }
  private cache: (InferenceCache & { key: object[] }) | null = null;

  /** Weight values by name (copies). */
  weightValues(): Map<string, Float32Array> {
    const m = new Map<string, Float32Array>();
    for (const [k, v] of this.params) m.set(k, Float32Array.from(readF32(v)));
    return m;
  }

  /** Overwrite weights in place (e.g. from another model of the same architecture). */
  setWeights(values: Map<string, Float32Array>): void {
    for (const [k, v] of this.params) {
      const a = values.get(k);
      if (!a) throw new BadConfig(`missing weight '${k}'`);
      tf.tidy(() => v.assign(tf.tensor(a, v.shape)));
    }
  }

  /** A copy with its own variables. */
  clone(): TransformerLM { return TransformerLM.fromWeights(this.config, this.weightValues()); }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.params.values()) v.dispose();
    this.posTable?.dispose();
    this.cache?.outT.dispose();
    this.cache = null;
  }

  get isDisposed(): boolean { return this.disposed; }

  private assertLive(): void {
    if (this.disposed) throw new Error('TransformerLM: used after dispose()');
  }
}

/** The standard sinusoidal position table [C, d]. */
export function sinusoids(C: number, d: number): Float32Array {
  const a = new Float32Array(C * d);
  for (let p = 0; p < C; p++) {
    for (let i = 0; i < d; i += 2) {
      const f = p / Math.pow(10000, i / d);
      a[p * d + i] = Math.sin(f);
      if (i + 1 < d) a[p * d + i + 1] = Math.cos(f);
    }
  }
  return a;
}

/** Panel width of native/gemm.h's packed weights. */
const PANEL = 16;

/** B [K, N] as native/gemm.h's panels: 16 columns at a time, k-major inside a panel, zero-padded. */
export function packPanels(b: Float32Array, K: number, N: number): Float32Array {
  const panels = Math.ceil(N / PANEL), out = new Float32Array(panels * PANEL * K);
  for (let p = 0; p < panels; p++) {
    const j0 = p * PANEL, w = Math.min(PANEL, N - j0), o = p * PANEL * K;
    for (let k = 0; k < K; k++) out.set(b.subarray(k * N + j0, k * N + j0 + w), o + k * PANEL);
  }
  return out;
}
