/**
 * KV-cached, batched incremental decoding for `TransformerLM`.
 *
 * An `LMSession` holds one row per dialog. It is lazy: `append(tokens)` only records tokens, and
 * `nextLogProbs()` brings every row up to date in as few forward passes as it can (natively one
 * call for all pending tokens; otherwise one batched prefill for rows that need their cache
 * (re)built, then one batched single-token step per pending token), so an env that feeds one agent token per step and samples the student many tokens at a
 * time pays one small step per token. Rows may have different lengths: each row has its own cache
 * length and positions. A row longer than the context length slides by `windowStart` (the cache is
 * rebuilt from the last half of the window), exactly as the full forward pass reads it.
 *
 * Sampling draws in JS from the (tempered, top-k / top-p filtered) probabilities with an `Rng`, so
 * the same seed gives the same tokens on any backend whose logits agree.
 *
 * Each row also keeps the final hidden state its next-token distribution came from (`hidden`), so
 * that features of the model's state cost no second forward pass (the kl-budget agent reads them).
 *
 * With the native addon, every cache is filled by one native call per catch-up (native/decode.cc:
 * a dialog's new tokens in order, each attending to the cache before it; logits only for the last),
 * so a row's numbers are the same bits whether its tokens came one at a time, in chunks, or as one
 * prefill (models/session-pool.ts relies on it). Without it, the single-token step runs the block
 * structure of block.ts with plain arrays and a one-row attention over the cache, and the prefill
 * is the model's own full forward pass (equal to the steps to float rounding).
 *
 * A session snapshots nothing itself but reads the model's `inferenceCache()`: if the model's
 * weights change in the middle of a session, rows already cached keep the old keys and values.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../core/rng.ts';
import type { LMConfig } from '../configs/models/schema.ts';
import { gelu, layerNormRows, logSoftmaxRows, readF32, tidyRead, windowStart } from './lm-ops.ts';
import { block, finalNorm, type BlockSteps } from './block.ts';
import { NATIVE_ACT, nativeNN, type NativeAddon } from './native.ts';
/** Most tokens per native catch-up call (a dialog's new tokens are never split). */
const CATCH_UP_TOKENS = 2048;

/** What a session needs of its model (`TransformerLM` is one; lm.ts starts sessions, this file never imports it). */
export interface SessionModel {
  readonly config: LMConfig;
  readonly isDisposed: boolean;
  param(name: string): tf.Tensor;
  inferenceCache(): InferenceCache;
  /** The full forward pass to the final hidden states [B·T, d]. */
  hidden(ids: Int32Array, B: number, T: number, opts: { starts?: Int32Array | null; capture?: (layer: number, qkv: Float32Array) => void }): tf.Tensor2D;
}

/** What a session reads of its model on every step (cached by the model while its weights stay the same). */
export interface InferenceCache {
  /** The output matrix transposed [d, V]. */
  outT: tf.Tensor2D;
  /** JS copies of the embeddings ('tok_emb', 'pos') and the layer norms' parameters. */
  js: Map<string, Float32Array>;
  /** Every weight packed for the native decoding step (native/decode.h), made on first call. */
  packed(): Float32Array;
}

export interface SampleOptions {
  /** Most tokens to sample per row (each row stops earlier on a stop token or sequence). */
  maxTokens: number;
  /** Softmax temperature; 0 = greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = all). */
  topP?: number;
  /** Token ids that end a row (the stop token is kept in the output and in the session). */
  stopTokens?: readonly number[];
  /** Token-id sequences that end a row when the output ends with one (kept, like stop tokens). */
  stopSequences?: readonly (readonly number[])[];
  /** Source of randomness (required unless temperature is 0). */
  rng?: Rng;
  /** Rows that take part (default all). Other rows are left as they are. */
  rows?: readonly number[];
}

export interface SampleResult {
  /** Sampled tokens per participating row (in `rows` order), stop token included. */
  tokens: number[][];
  /** Log-probability of each sampled token under the model (untempered, unfiltered). */
  logProbs: number[][];
  /** Why each row stopped. */
  finishReasons: ('stop' | 'length')[];
}

export type GenerateOptions = SampleOptions;
export type GenerateResult = SampleResult;

let scratch = new Float64Array(0);

/** Sample one token from a row of log-probabilities. Deterministic given the Rng state. */
export function sampleToken(logProbs: Float32Array, opts: { temperature?: number; topK?: number; topP?: number; rng?: Rng }): number {
  const V = logProbs.length;
  const temp = opts.temperature ?? 1;
  let best = 0;
  for (let j = 1; j < V; j++) if (logProbs[j]! > logProbs[best]!) best = j;
  if (temp <= 0) return best;
  if (!opts.rng) throw new Error('sampleToken: an rng is needed unless temperature is 0');
  const max = logProbs[best]!;
  const topK = opts.topK ?? 0, topP = opts.topP ?? 1;
  // Weights below e^-50 of the best are dropped (a relative change under 1e-20).
  const floor = max - 50 * temp, inv = 1 / temp;
  if (!(topK > 0 && topK < V) && !(topP < 1)) {
    const nn = nativeNN('sample');
    if (nn) return nn.sampleRow(logProbs, V, temp, opts.rng.random());
    // Common case, one pass to weigh and one to walk (the same draw as Rng.categorical).
    const w = scratch.length >= V ? scratch : (scratch = new Float64Array(V));
    let total = 0;
    for (let j = 0; j < V; j++) { const l = logProbs[j]!; const x = l > floor ? Math.exp((l - max) * inv) : 0; w[j] = x; total += x; }
    let r = opts.rng.random() * total;
    for (let j = 0; j < V; j++) { r -= w[j]!; if (r < 0) return j; }
    for (let j = V - 1; j >= 0; j--) if (w[j]! > 0) return j;
    return best;
  }
  const w = new Float64Array(V);
  for (let j = 0; j < V; j++) { const l = logProbs[j]!; if (l > floor) w[j] = Math.exp((l - max) * inv); }
  if (topK > 0 && topK < V) {
    const sorted = Float64Array.from(w).sort();
    const thr = sorted[V - topK]!;
    // Ties at the threshold: keep the lowest ids first so that exactly k survive.
    let keep = topK;
    for (let j = 0; j < V; j++) if (w[j]! > thr) keep--;
    for (let j = 0; j < V; j++) {
      if (w[j]! > thr) continue;
      if (w[j] === thr && keep > 0) { keep--; continue; }
      w[j] = 0;
    }
  }
  if (topP < 1) {
    const idx = Array.from({ length: V }, (_, j) => j).filter(j => w[j]! > 0).sort((a, b) => w[b]! - w[a]! || a - b);
    let total = 0;
    for (const j of idx) total += w[j]!;
    let acc = 0, cut = idx.length;
    for (let q = 0; q < idx.length; q++) { acc += w[idx[q]!]!; if (acc >= topP * total) { cut = q + 1; break; } }
    for (let q = cut; q < idx.length; q++) w[idx[q]!] = 0;
  }
  return opts.rng.categorical(w);
}

interface RowState {
  /** Every token of the row (prefix and appended). */
  tokens: number[];
  /** Start of the cached window (token index), and how many tokens the cache holds. */
  start: number;
  cached: number;
  /** Log-probs of the next token, valid when `cached === tokens.length - start`. */
  next: Float32Array | null;
  /** The final hidden state `next` came from (set and cleared with it). */
  hidden: Float32Array | null;
  /** Keys and values, [L][K, V][H, C, hd] (`rowCacheFloats`). Allocated on first use. */
  cache: Float32Array | null;
  /** The weights (`inferenceCache()`) the cache was filled with (native catch-ups only). */
  weights: InferenceCache | null;
}

function checkToken(t: number, V: number, what: string): void {
  if (!Number.isInteger(t) || t < 0 || t >= V) throw new RangeError(`${what}token ${t} outside the vocabulary [0, ${V})`);
}

/** Floats of one row's keys and values ([L][K, V][H, C, hd]). */
export function rowCacheFloats(c: LMConfig): number {
  return 2 * c.nLayers * c.contextLength * c.dModel;
}

/** The native decoding step (native/decode.cc), when the addon has it and it is on; null: the TF.js step. */
export function nativeDecodeStep(): NonNullable<NativeAddon['decodeStep']> | null {
  const nn = nativeNN('decode');
  return nn?.decodeStep && nativeNN('kvCache') ? nn.decodeStep.bind(nn) : null;
}

/** Every open session of a model (weakly held): the rows another session may copy cached keys and values from. */
const sessionsOf = new WeakMap<SessionModel, Set<WeakRef<LMSession>>>();

/** Token positions whose keys and values were copied from another session's row instead of computed (for benches and tests). */
export const kvShareStats = { tokens: 0 };

export class LMSession {
  readonly model: SessionModel;
  private readonly rowsState: RowState[];
  private closed = false;

  constructor(model: SessionModel, prefixes: number[][]) {
    this.model = model;
    this.rowsState = prefixes.map(p => this.newRow(p));
    let set = sessionsOf.get(model);
    if (!set) sessionsOf.set(model, set = new Set());
    set.add(this.ref);
  }
  private readonly ref = new WeakRef(this);

  /** Number of rows. */
  get size(): number { return this.rowsState.length; }

  /** All tokens of a row so far (prefix + appended). */
  tokens(row: number): readonly number[] { return this.row(row).tokens; }

  /** Replace a row's tokens (e.g. an env resetting one dialog). */
  resetRow(row: number, prefix: number[]): void {
    this.assertOpen();
    const r = this.row(row);
    const fresh = this.newRow(prefix);
    r.tokens = fresh.tokens; r.start = 0; r.cached = 0; r.next = null; r.hidden = null; r.weights = null;
  }

  /** Add one token per row; `null` leaves a row unchanged. Computation is deferred to `nextLogProbs`. */
  append(tokens: readonly (number | null)[]): void {
    this.assertOpen();
    if (tokens.length !== this.rowsState.length) throw new RangeError(`append: ${tokens.length} tokens for ${this.rowsState.length} rows`);
    const V = this.model.config.vocabSize;
    tokens.forEach((t, i) => {
      if (t === null) return;
      checkToken(t, V, 'append: ');
      const r = this.rowsState[i]!;
      r.tokens.push(t);
      r.next = null; r.hidden = null;
    });
  }

  /** Append several tokens to one row. */
  extend(row: number, tokens: readonly number[]): void {
    this.assertOpen();
    const r = this.row(row), V = this.model.config.vocabSize;
    for (const t of tokens) checkToken(t, V, 'append: ');
    if (!tokens.length) return;
    r.tokens.push(...tokens);
    r.next = null; r.hidden = null;
  }

  /** A new row with this prefix; returns its index. */
  addRow(prefix: number[]): number {
    this.assertOpen();
    this.rowsState.push(this.newRow(prefix));
    return this.rowsState.length - 1;
  }

  /**
   * Log-probabilities of each row's next token (length V). The arrays are the session's own:
   * read them, do not modify them; they stay valid after later appends.
   */
  nextLogProbs(rows?: readonly number[]): Float32Array[] {
    this.assertOpen();
    const which = rows ?? this.rowsState.map((_, i) => i);
    this.update(which);
    return which.map(i => this.rowsState[i]!.next!);
  }

  /**
   * The final hidden state (after the final layer norm, length d) at each row's last token: the
   * vector whose product with the output matrix gives `nextLogProbs`' logits. Computed with them
   * (asking for both costs one forward pass); the session's own arrays, like `nextLogProbs`'.
   */
  hidden(rows?: readonly number[]): Float32Array[] {
    this.assertOpen();
    const which = rows ?? this.rowsState.map((_, i) => i);
    this.update(which);
    return which.map(i => this.rowsState[i]!.hidden!);
  }

  /** False after `dispose()`. */
  get isOpen(): boolean { return !this.closed; }

  /**
   * Sample up to `maxTokens` tokens for each participating row, appending them to the session as
   * it goes. Rows stop at a stop token / sequence; the others go on to `maxTokens`.
   */
  sample(opts: SampleOptions): SampleResult {
    this.assertOpen();
    const rows = opts.rows ? [...opts.rows] : this.rowsState.map((_, i) => i);
    const out = rows.map(() => [] as number[]), lps = rows.map(() => [] as number[]);
    const reasons: ('stop' | 'length')[] = rows.map(() => 'length');
    const stopTokens = new Set(opts.stopTokens ?? []);
    const stopSeqs = (opts.stopSequences ?? []).filter(s => s.length > 0);
    let active = rows.map((_, k) => k);
    for (let step = 0; step < opts.maxTokens && active.length > 0; step++) {
      const next = this.nextLogProbs(active.map(k => rows[k]!));
      const toks = new Array<number | null>(this.rowsState.length).fill(null);
      const still: number[] = [];
      active.forEach((k, q) => {
        const lp = next[q]!;
        const t = sampleToken(lp, opts);
        out[k]!.push(t); lps[k]!.push(lp[t]!);
        toks[rows[k]!] = t;
        const o = out[k]!;
        const stop = stopTokens.has(t) || stopSeqs.some(s => s.length <= o.length && s.every((v, i) => o[o.length - s.length + i] === v));
        if (stop) reasons[k] = 'stop'; else still.push(k);
      });
      this.append(toks);
      active = still;
    }
    return { tokens: out, logProbs: lps, finishReasons: reasons };
  }

  /** Sample one token for each participating row and append it; returns the tokens (in `rows` order). */
  step(opts: Omit<SampleOptions, 'maxTokens' | 'stopTokens' | 'stopSequences'>): number[] {
    return this.sample({ ...opts, maxTokens: 1 }).tokens.map(t => t[0]!);
  }

  /** Free the caches. Further use throws. */
  dispose(): void {
    this.closed = true;
    sessionsOf.get(this.model)?.delete(this.ref);
    for (const r of this.rowsState) { r.cache = null; r.weights = null; r.next = null; r.hidden = null; }
  }

  // ---------------------------------------------------------------------------------- internals

  private newRow(prefix: number[]): RowState {
    const V = this.model.config.vocabSize;
    for (const t of prefix) checkToken(t, V, '');
    return { tokens: prefix.length ? [...prefix] : [this.model.config.bosTokenId], start: 0, cached: 0, next: null, hidden: null, cache: null, weights: null };
  }

  private row(i: number): RowState {
    const r = this.rowsState[i];
    if (!r) throw new RangeError(`no row ${i} (session has ${this.rowsState.length})`);
    return r;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('LMSession: used after dispose()');
    if (this.model.isDisposed) throw new Error('LMSession: its model was disposed');
  }

  private update(rows: readonly number[]): void {
    const C = this.model.config.contextLength;
    const refill: number[] = [];
    for (const i of rows) {
      const r = this.rowsState[i]!;
      if (r.next) continue;
      const n = r.tokens.length;
      const w = windowStart(n, C);
      // The cache can be extended token by token when it covers [w, w + cached) of the new window.
      if (w !== r.start || r.cached === 0 || r.cached > n - w) refill.push(i);
    }
    const decodeStep = nativeDecodeStep();
    if (decodeStep) {
      // Natively a refill is a catch-up from the window's start: every cache is then filled by the
      // same code, so a row's numbers do not depend on how its tokens arrived.
      for (const i of refill) { const r = this.rowsState[i]!; r.start = windowStart(r.tokens.length, C); r.cached = 0; }
      this.catchUpNative(rows, decodeStep);
      return;
    }
    if (refill.length) this.prefill(refill);
    // Single-token steps, batched across rows, until every row is current.
    for (;;) {
      const stepRows = rows.filter(i => { const r = this.rowsState[i]!; return !r.next && r.cached < r.tokens.length - r.start; });
      if (stepRows.length === 0) break;
      this.advanceSteps(stepRows);
    }
  }

  private ensureCache(r: RowState): void {
    r.cache ??= new Float32Array(rowCacheFloats(this.model.config));
  }

  /** Layer l's keys (which 0) or values (1) of a row, [H, C, hd]: a view of its cache. */
  private kv(r: RowState, l: number, which: 0 | 1): Float32Array {
    const size = this.model.config.contextLength * this.model.config.dModel, o = (2 * l + which) * size;
    return r.cache!.subarray(o, o + size);
  }

  /** Rebuild the caches of `rows` from their windows with one left-padded forward pass. */
  private prefill(rows: number[]): void {
    const c = this.model.config, C = c.contextLength, d = c.dModel, H = c.nHeads, hd = d / H, V = c.vocabSize;
    // Chunks of at most ~4096 tokens per pass.
    const wins = rows.map(i => { const r = this.rowsState[i]!; const w = windowStart(r.tokens.length, C); return { i, w, toks: r.tokens.slice(w) }; });
    wins.sort((a, b) => a.toks.length - b.toks.length);
    let q = 0;
    while (q < wins.length) {
      const group = [wins[q++]!];
      while (q < wins.length && (group.length + 1) * wins[q]!.toks.length <= 4096) group.push(wins[q++]!);
      const T = Math.max(...group.map(g => g.toks.length)), B = group.length;
      const ids = new Int32Array(B * T), starts = new Int32Array(B);
      group.forEach((g, b) => { starts[b] = T - g.toks.length; ids.set(g.toks, b * T + starts[b]!); });
      for (const g of group) { const r = this.rowsState[g.i]!; this.ensureCache(r); r.start = g.w; r.cached = g.toks.length; }
      const capture = (layer: number, qkv: Float32Array) => {
        group.forEach((g, b) => {
          const r = this.rowsState[g.i]!, K = this.kv(r, layer, 0), Vc = this.kv(r, layer, 1);
          for (let t = starts[b]!; t < T; t++) {
            const slot = t - starts[b]!, row = (b * T + t) * 3 * d;
            for (let h = 0; h < H; h++) {
              const dst = (h * C + slot) * hd;
              for (let j = 0; j < hd; j++) { K[dst + j] = qkv[row + d + h * hd + j]!; Vc[dst + j] = qkv[row + 2 * d + h * hd + j]!; }
            }
          }
        });
      };
      const { outT } = this.model.inferenceCache();
      let logits: Float32Array = new Float32Array(0), last: Float32Array = logits;
      tf.tidy(() => {
        const h = this.model.hidden(ids, B, T, { starts: starts.some(s => s > 0) ? starts : null, capture });
        const hl = tf.gather(h, tf.tensor1d(group.map((_, b) => b * T + T - 1), 'int32')) as tf.Tensor2D;
        last = readF32(hl);
        logits = readF32(tf.matMul(hl, outT));
      });
      logSoftmaxRows(logits, V);
      group.forEach((g, b) => {
        const r = this.rowsState[g.i]!;
        r.next = logits.slice(b * V, (b + 1) * V);
        r.hidden = last.slice(b * d, (b + 1) * d);
      });
    }
  }

  /**
   * Copy into row r the keys and values another open row of this model already holds for r's
   * next tokens (the same tokens from the start, filled with the same weights): the student's rows
   * and the KL reference's rows of one dialog hold the same transcript, so each computes only
   * what the other has not. Natively a row's cache is the same bits however its tokens arrived,
   * so a copied prefix is exactly what r would compute. The last token is left to compute (its
   * logits are needed).
   */
  private borrow(r: RowState, weights: InferenceCache): void {
    const n = r.tokens.length, from = r.cached;
    if (r.start !== 0 || n - from < 2 || (from > 0 && r.weights !== weights)) return;
    let best: RowState | null = null, bestLen = from + 1;
    const open = sessionsOf.get(this.model) ?? new Set<WeakRef<LMSession>>();
    for (const ref of open) {
      const s = ref.deref();
      if (!s || s.closed) { open.delete(ref); continue; }
      for (const o of s.rowsState) {
        if (o === r || !o.cache || o.start !== 0 || o.weights !== weights || o.cached <= bestLen) continue;
        const ot = o.tokens;
        if (ot[from] !== r.tokens[from] || ot[from + 1] !== r.tokens[from + 1]) continue;
        let k = from + 2;
        const lim = Math.min(o.cached, n - 1);
        while (k < lim && ot[k] === r.tokens[k]) k++;
        if (k <= bestLen) continue;
        let same = true;
        for (let j = 0; j < from && same; j++) same = ot[j] === r.tokens[j];
        if (same) { best = o; bestLen = k; }
      }
    }
    if (!best) return;
    this.ensureCache(r);
    const c = this.model.config, C = c.contextLength, hd = c.dModel / c.nHeads;
    const src = best.cache!, dst = r.cache!;
    for (let b = 0; b < 2 * c.nLayers * c.nHeads; b++) {
      const o = (b * C + from) * hd, e = (b * C + bestLen) * hd;
      dst.set(src.subarray(o, e), o);
    }
    kvShareStats.tokens += bestLen - from;
    r.cached = bestLen;
    r.weights = weights;
  }

  /**
   * Every token `rows` still lack in their caches, in native calls of up to CATCH_UP_TOKENS tokens
   * (native/decode.cc): a dialog's new tokens go in one call, in order, and only its last token's
   * logits are computed. The same bits as stepping them one by one (advanceSteps).
   */
  private catchUpNative(rows: readonly number[], decodeStep: NonNullable<NativeAddon['decodeStep']>): void {
    const c = this.model.config, d = c.dModel, V = c.vocabSize;
    const pending = rows.filter(i => { const r = this.rowsState[i]!; return !r.next && r.cached < r.tokens.length - r.start; });
    if (!pending.length) return;
    const weights = this.model.inferenceCache();
    for (const i of pending) this.borrow(this.rowsState[i]!, weights);
    const W = weights.packed();
    const dims = new Int32Array([c.nLayers, d, c.nHeads, c.dFF, V, c.contextLength, NATIVE_ACT[c.activation ?? 'relu']]);
    let q = 0;
    while (q < pending.length) {
      const group: number[] = [];
      let n = 0;
      while (q < pending.length) {
        const r = this.rowsState[pending[q]!]!, k = r.tokens.length - r.start - r.cached;
        if (group.length && n + k > CATCH_UP_TOKENS) break;
        group.push(pending[q++]!);
        n += k;
      }
      const tokens = new Int32Array(n), slots = new Int32Array(n), outRows = new Int32Array(group.length), caches: Float32Array[] = [];
      // A row whose earlier keys came from other weights is not lent from (its cache mixes both).
      const clean = group.map(i => { const r = this.rowsState[i]!; return r.cached === 0 || r.weights === weights; });
      let e = 0;
      group.forEach((i, g) => {
        const r = this.rowsState[i]!;
        this.ensureCache(r);
        for (let slot = r.cached; slot < r.tokens.length - r.start; slot++, e++) {
          tokens[e] = r.tokens[r.start + slot]!;
          slots[e] = slot;
          caches.push(r.cache!);
        }
        outRows[g] = e - 1;
      });
      const logits = new Float32Array(group.length * V), hf = new Float32Array(group.length * d);
      decodeStep(W, dims, tokens, slots, caches, outRows, logits, hf, c.layerNormEps);
      group.forEach((i, g) => {
        const r = this.rowsState[i]!;
        r.cached = r.tokens.length - r.start;
        r.weights = clean[g] ? weights : null;
        r.next = logits.subarray(g * V, (g + 1) * V);  // views: the call's arrays are never reused
        r.hidden = hf.subarray(g * d, (g + 1) * d);
      });
    }
  }

  /** One token for each of `rows` as block.ts's steps: TF.js matMuls, JS arrays for the residual stream. */
  private advanceSteps(rows: number[]): void {
    const m = this.model, c = m.config, C = c.contextLength, d = c.dModel, H = c.nHeads, hd = d / H, V = c.vocabSize;
    const A = rows.length;
    const { outT, js } = m.inferenceCache();
    const E = js.get('tok_emb')!, P = js.get('pos')!;
    const x = new Float32Array(A * d), hbuf = new Float32Array(A * d), obuf = new Float32Array(A * d);
    const slots = new Int32Array(A);
    rows.forEach((i, a) => {
      const r = this.rowsState[i]!;
      const slot = r.cached, tok = r.tokens[r.start + slot]!;
      slots[a] = slot;
      for (let j = 0; j < d; j++) x[a * d + j] = E[tok * d + j]! + P[slot * d + j]!;
    });
    const scale = 1 / Math.sqrt(hd);
    const scores = new Float32Array(C);
    const nn = nativeNN('kvCache');
    const act = c.activation ?? 'relu';
    // The residual stream stays a JS array; matMuls run as tensors, read back where JS needs them.
    type Rows = Float32Array | tf.Tensor;
    const arr = (t: Rows): Float32Array => (t instanceof Float32Array ? t : readF32(t));
    const steps: BlockSteps<Rows> = {
      norm: (t, name) => { layerNormRows(arr(t), A, d, js.get(`${name}.g`)!, js.get(`${name}.b`)!, c.layerNormEps, hbuf); return hbuf; },
      linear: (t, name, mlp) => {
        const y = tf.fused.matMul({
          a: t instanceof Float32Array ? tf.tensor2d(t, [A, t.length / A]) : t as tf.Tensor2D,
          b: m.param(`${name}.w`) as tf.Tensor2D, bias: m.param(`${name}.b`), activation: mlp && act === 'relu' ? 'relu' : 'linear',
        });
        return mlp && act !== 'relu' ? gelu(y as tf.Tensor2D, act) : y;
      },
      attend: (t, l) => {
        const qkv = arr(t);
        for (let a = 0; a < A; a++) {
          const r = this.rowsState[rows[a]!]!;
          const K = this.kv(r, l, 0), Vc = this.kv(r, l, 1);
          if (nn) nn.attendCached(qkv, a * 3 * d, K, Vc, slots[a]!, H, hd, C, obuf, a * d);
          else attendOne(qkv, a * 3 * d, K, Vc, slots[a]!, H, hd, C, scale, scores, obuf, a * d);
        }
        return obuf;
      },
      residual: (t, y) => {
        const xs = arr(t), ys = arr(y);
        for (let k = 0; k < A * d; k++) xs[k] += ys[k]!;
        return xs;
      },
    };
    let stream: Rows = x;
    for (let l = 0; l < c.nLayers; l++) tf.tidy(() => { stream = block(steps, stream, l); });
    const hf = arr(finalNorm(steps, stream));
    const logits = tidyRead(() => tf.matMul(tf.tensor2d(hf, [A, d]), outT));
    logSoftmaxRows(logits, V);
    rows.forEach((i, a) => {
      const r = this.rowsState[i]!;
      r.cached++;
      if (r.cached === r.tokens.length - r.start) {
        r.next = logits.slice(a * V, (a + 1) * V);
        r.hidden = hf.slice(a * d, (a + 1) * d);
      }
    });
  }
}

/**
 * One query row against a row's cache: writes k and v of the new token at `slot`, then
 * out[oo + h·hd …] = softmax((q_h·scale)·K_hᵀ) · V_h over slots 0 … slot.
 */
function attendOne(qkv: Float32Array, row: number, K: Float32Array, Vc: Float32Array, slot: number, H: number, hd: number, C: number,
  scale: number, scores: Float32Array, out: Float32Array, oo: number): void {
  const d = H * hd;
  const acc = new Float64Array(hd);
  const q = new Float64Array(hd);
  for (let h = 0; h < H; h++) {
    const base = h * C * hd, dst = base + slot * hd, qo = row + h * hd, ko0 = row + d + h * hd, vo0 = row + 2 * d + h * hd;
    for (let j = 0; j < hd; j++) { K[dst + j] = qkv[ko0 + j]!; Vc[dst + j] = qkv[vo0 + j]!; q[j] = qkv[qo + j]! * scale; }
    let mx = -Infinity;
    const hd4 = hd - (hd % 4);
    for (let t = 0, ko = base; t <= slot; t++, ko += hd) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, j = 0;
      for (; j < hd4; j += 4) {
        s0 += q[j]! * K[ko + j]!; s1 += q[j + 1]! * K[ko + j + 1]!;
        s2 += q[j + 2]! * K[ko + j + 2]!; s3 += q[j + 3]! * K[ko + j + 3]!;
      }
      for (; j < hd; j++) s0 += q[j]! * K[ko + j]!;
      const s = s0 + s1 + s2 + s3;
      scores[t] = s;
      if (s > mx) mx = s;
    }
    let z = 0;
    for (let t = 0; t <= slot; t++) { const e = Math.exp(scores[t]! - mx); scores[t] = e; z += e; }
    acc.fill(0);
    for (let t = 0, vo = base; t <= slot; t++, vo += hd) {
      const p = scores[t]!;
      for (let j = 0; j < hd; j++) acc[j] += p * Vc[vo + j]!;
    }
    const o = oo + h * hd, iz = 1 / z;
    for (let j = 0; j < hd; j++) out[o + j] = acc[j]! * iz;
  }
}

/** Sample continuations of each prefix (a session that lives for this call). */
export function generate(model: SessionModel, prefixes: number[][], opts: GenerateOptions): GenerateResult {
  const s = new LMSession(model, prefixes);
  try { return s.sample(opts); } finally { s.dispose(); }
}
