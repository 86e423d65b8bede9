/**
 * The transformer's building blocks as TensorFlow.js ops with hand-written gradients.
 *
 * Why not plain tfjs ops with autodiff: on the wasm backend (the one that runs here) the generic
 * gradients are slow or missing. `matMul` with a transpose flag, and any batched (3-D) matMul, run
 * a scalar fallback at ~1 GFLOP/s, while a plain 2-D matMul runs XNNPACK's SIMD kernel at ~15;
 * `gather` has no gradient kernel (UnsortedSegmentSum); reductions over axis 0, N-D transposes,
 * `slice`/`split`/`unstack` of large tensors and `exp` are slow. So:
 * - every matMul here is a plain 2-D one, transposes made explicit;
 * - attention runs one 2-D matMul per (sequence, head) with the head layouts built in JS, and
 *   needs no T×T transpose in its backward pass (dVᵀ = dOᵀ·P, dKᵀ = Qᵀ·dS);
 * - embedding lookup / scatter-add, layer norm and the head split/merge are JS loops over
 *   Float32Arrays (memory-bound work, where a JS loop beats a chain of small kernels);
 * - the output projection, softmax and cross-entropy are one op whose gradient is `p − onehot`.
 * Library code: `@tensorflow/tfjs` public API only, so every op also runs on other backends.
 *
 * When the project's native addon is built (native/, models/native.ts), matMuls run its
 * AVX2 kernels (transpose flags then cost nothing, so they are used instead of explicit
 * transposes), and attention, the output cross-entropy and log-softmax run as native functions
 * on the same Float32Arrays, with the same hand-written gradients.
 */
import * as tf from '@tensorflow/tfjs';
import { NATIVE_ACT, nativeKernelsActive, nativeNN } from './native.ts';

type Saver = tf.GradSaveFunc;

/**
 * Reused Float32Arrays for the large per-step buffers of the native paths (attention weights,
 * output probabilities, a block's saved activations: tens of MB per training step, whose fresh
 * allocation and page faults cost as much as the arithmetic). A buffer taken in a forward pass goes
 * back when its gradient has been computed; one whose gradient is never asked for is simply
 * collected. Buffers come in size classes (powers of 2^(1/4)) and are handed out as views of their
 * first n floats, so that the batches' varying shapes reuse a few buffers; the pool holds at most
 * POOL_FLOATS floats (64 MiB) in all, two per class, and drops what would exceed it.
 */
const POOL_FLOATS = 16 * 2 ** 20;
const pool = new Map<number, Float32Array[]>();
let pooled = 0;
function sizeClass(n: number): number {
  return n <= 1024 ? 1024 : Math.ceil(2 ** (Math.ceil(4 * Math.log2(n)) / 4));
}
function takeBuffer(n: number): Float32Array {
  const size = sizeClass(n);
  const buf = pool.get(size)?.pop();
  if (buf) { pooled -= size; return buf.subarray(0, n); }
  return new Float32Array(size).subarray(0, n);
}
function giveBuffer(view: Float32Array): void {
  const buf = new Float32Array(view.buffer, 0, view.buffer.byteLength >> 2);
  const size = buf.length;
  if (sizeClass(size) !== size || pooled + size > POOL_FLOATS) return;
  const list = pool.get(size) ?? [];
  if (list.length >= 2) return;
  list.push(buf);
  pool.set(size, list);
  pooled += size;
}

/**
 * Start of the window through which the model reads a context of n tokens (n ≥ 1) with context
 * length C. Up to C tokens it reads everything; past that the window restarts with the last
 * h = ⌊C/2⌋ tokens and grows back to C (so the KV-cached sampler refills its cache once every
 * C − h + 1 tokens instead of on every token).
 */
export function windowStart(n: number, C: number): number {
  if (n <= C) return 0;
  const h = Math.max(1, Math.floor(C / 2));
  const len = h + ((n - C - 1) % (C - h + 1));
  return n - len;
}

/** Read a tensor as a Float32Array (never mutate the result: on some backends it is the storage). */
export function readF32(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

/**
 * Run `fn` in a tidy and read its result as a fresh Float32Array. (Never return a typed array from
 * `tf.tidy` itself: tidy walks its result looking for tensors, element by element.)
 */
export function tidyRead(fn: () => tf.Tensor): Float32Array {
  let out: Float32Array | null = null;
  // dataSync gives a fresh copy on wasm; on cpu it is the storage of a tensor disposed right after.
  tf.tidy(() => { out = readF32(fn()); });
  return out!;
}

// ------------------------------------------------------------------------------------------------
// Embedding: out[r] = E[ids[r]] + P[pos[r]]

/**
 * Token + position embedding for N rows. `P` may be a constant (sinusoidal) tensor; its gradient is
 * computed anyway and ignored by `variableGrads` when it is not a variable.
 */
export function embed(E: tf.Tensor2D, P: tf.Tensor2D, ids: Int32Array, pos: Int32Array): tf.Tensor2D {
  const n = ids.length;
  const [V, d] = E.shape;
  const C = P.shape[0];
  for (let r = 0; r < n; r++) {
    if (!(ids[r]! >= 0 && ids[r]! < V)) throw new RangeError(`token id ${ids[r]} outside the vocabulary [0, ${V})`);
    if (!(pos[r]! >= 0 && pos[r]! < C)) throw new RangeError(`position ${pos[r]} outside [0, ${C})`);
  }
  const f = tf.customGrad((e: tf.Tensor | Saver, p: tf.Tensor | Saver) => {
    const out = new Float32Array(n * d);
    embedRows(readF32(e as tf.Tensor), readF32(p as tf.Tensor), ids, pos, d, out);
    return {
      value: tf.tensor2d(out, [n, d]),
      gradFunc: (dy: tf.Tensor) => {
        const dE = new Float32Array(V * d), dP = new Float32Array(C * d);
        embedGrad(readF32(dy), ids, pos, d, dE, dP);
        return [tf.tensor2d(dE, [V, d]), tf.tensor2d(dP, [C, d])];
      },
    };
  });
  return f(E, P) as tf.Tensor2D;
}

// ------------------------------------------------------------------------------------------------
// A whole block in one native op

export interface NativeBlockShape {
  B: number;
  T: number;
  H: number;
  activation: 'relu' | 'gelu_new' | 'gelu';
  eps: number;
  starts: Int32Array | null;
  /** Only these rows of the output (block.ts blockAt); null: all. */
  rows: Int32Array | null;
}

/** Whether `nativeBlock` can run (the addon has the block calls and is on). */
export function nativeBlockAvailable(): boolean {
  return Boolean(nativeNN('block')?.blockForward);
}

/** Arrays end to end in one, and where each starts (offsets has one more entry: the total). */
export function concatF32(parts: readonly Float32Array[]): { data: Float32Array; offsets: number[] } {
  const offsets = [0];
  for (const p of parts) offsets.push(offsets[offsets.length - 1]! + p.length);
  const data = new Float32Array(offsets[offsets.length - 1]!);
  parts.forEach((p, i) => data.set(p, offsets[i]!));
  return { data, offsets };
}

/** Sequences per native block call outside a gradient scope. */
const NO_GRAD_SEQUENCES = 4;

/**
 * One pre-LN block (block.ts) as a single op on x [B·T, d] and its 12 parameters in BLOCK_PARAMS
 * order: forward and gradient each one native call (native/block.cc) instead of a dozen TF.js ops
 * and their gradients; the same kernels in the same order, so the same bits.
 */
export function nativeBlock(x: tf.Tensor2D, params: readonly tf.Tensor[], shape: NativeBlockShape): tf.Tensor2D {
  const nn = nativeNN('block')!;
  const [n, d] = x.shape;
  const F = params[8]!.shape[1]!;
  const { B, T, rows, starts, eps } = shape;
  const m = rows ? rows.length : n;
  const dims = new Int32Array([B, T, shape.H, d, F, NATIVE_ACT[shape.activation]]);
  // Outside a gradient scope nothing will ask for the backward pass: no op is recorded, the saved
  // activations go back to the pool at once, and the sequences go a few at a time unless rows are
  // picked (every row's numbers are the same either way; a rollout's activations are hundreds of MB).
  if ((tf.engine().state as unknown as { gradientDepth: number }).gradientDepth === 0) {
    const W = concatF32(params.map(readF32)).data, xd = readF32(x), y = new Float32Array(m * d);
    const chunk = rows ? B : NO_GRAD_SEQUENCES;
    for (let b0 = 0; b0 < B; b0 += chunk) {
      const nb = Math.min(chunk, B - b0), part = (a: Float32Array) => (rows ? a : a.subarray(b0 * T * d, (b0 + nb) * T * d));
      const cdims = Int32Array.from(dims);
      cdims[0] = nb;
      const saved = takeBuffer(nn.blockSavedFloats!(cdims, eps, rows ? m : nb * T));
      nn.blockForward!(part(xd), W, cdims, eps, starts ? starts.subarray(b0, b0 + nb) : null, rows, saved, part(y));
      giveBuffer(saved);
    }
    return tf.tensor2d(y, [m, d]);
  }
  const f = tf.customGrad((...args: (tf.Tensor | Saver)[]) => {
    const ps = args.slice(1, 13) as tf.Tensor[];
    const { data: W, offsets } = concatF32(ps.map(readF32));
    const saved = takeBuffer(nn.blockSavedFloats!(dims, eps, m)), y = new Float32Array(m * d);
    nn.blockForward!(readF32(args[0] as tf.Tensor), W, dims, eps, starts, rows, saved, y);
    return {
      value: tf.tensor2d(y, [m, d]),
      gradFunc: (dy: tf.Tensor) => {
        const dx = new Float32Array(n * d), G = new Float32Array(W.length);
        nn.blockBackward!(readF32(dy), W, dims, eps, starts, rows, saved, dx, G);
        giveBuffer(saved);
        return [tf.tensor2d(dx, [n, d]), ...ps.map((p, i) => tf.tensor(G.subarray(offsets[i]!, offsets[i + 1]!), p.shape))];
      },
    };
  });
  return f(x, ...params) as tf.Tensor2D;
}

// ------------------------------------------------------------------------------------------------
// Layer normalisation over the last axis of [N, d]

export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D {
  const [n, d] = x.shape;
  const f = tf.customGrad((xi: tf.Tensor | Saver, gi: tf.Tensor | Saver, bi: tf.Tensor | Saver) => {
    const gd = readF32(gi as tf.Tensor);
    const xhat = new Float32Array(n * d), rstd = new Float32Array(n), out = new Float32Array(n * d);
    const nn = nativeNN('layerNorm');
    if (nn) nn.layerNormForward(readF32(xi as tf.Tensor), n, d, gd, readF32(bi as tf.Tensor), eps, xhat, rstd, out);
    else layerNormForward(readF32(xi as tf.Tensor), n, d, gd, readF32(bi as tf.Tensor), eps, xhat, rstd, out);
    return {
      value: tf.tensor2d(out, [n, d]),
      gradFunc: (dy: tf.Tensor) => {
        if (nn) {
          const dx = new Float32Array(n * d), dg = new Float32Array(d), db = new Float32Array(d);
          nn.layerNormBackward(readF32(dy), xhat, rstd, gd, n, d, dx, dg, db);
          return [tf.tensor2d(dx, [n, d]), tf.tensor1d(dg), tf.tensor1d(db)];
        }
        const dx = new Float32Array(n * d), dg = new Float64Array(d), db = new Float64Array(d);
        layerNormBackward(readF32(dy), xhat, rstd, gd, n, d, dx, dg, db);
        return [tf.tensor2d(dx, [n, d]), tf.tensor1d(Float32Array.from(dg)), tf.tensor1d(Float32Array.from(db))];
      },
    };
  });
  return f(x, gamma, beta) as tf.Tensor2D;
}

function embedRows(ed: Float32Array, pd: Float32Array, ids: Int32Array, pos: Int32Array, d: number, out: Float32Array): void {
  for (let r = 0; r < ids.length; r++) {
    const eo = ids[r]! * d, po = pos[r]! * d, o = r * d;
    for (let j = 0; j < d; j++) out[o + j] = ed[eo + j]! + pd[po + j]!;
  }
}

function embedGrad(g: Float32Array, ids: Int32Array, pos: Int32Array, d: number, dE: Float32Array, dP: Float32Array): void {
  for (let r = 0; r < ids.length; r++) {
    const eo = ids[r]! * d, po = pos[r]! * d, o = r * d;
    for (let j = 0; j < d; j++) { const v = g[o + j]!; dE[eo + j] += v; dP[po + j] += v; }
  }
}

function layerNormForward(x: Float32Array, n: number, d: number, g: Float32Array, b: Float32Array, eps: number, xhat: Float32Array, rstd: Float32Array, out: Float32Array): void {
  for (let r = 0; r < n; r++) {
    const o = r * d;
    let mean = 0;
    for (let j = 0; j < d; j++) mean += x[o + j]!;
    mean /= d;
    let v = 0;
    for (let j = 0; j < d; j++) { const c = x[o + j]! - mean; v += c * c; }
    const rs = 1 / Math.sqrt(v / d + eps);
    rstd[r] = rs;
    for (let j = 0; j < d; j++) {
      const h = (x[o + j]! - mean) * rs;
      xhat[o + j] = h;
      out[o + j] = h * g[j]! + b[j]!;
    }
  }
}

function layerNormBackward(g: Float32Array, xhat: Float32Array, rstd: Float32Array, gamma: Float32Array, n: number, d: number, dx: Float32Array, dg: Float64Array, db: Float64Array): void {
  for (let r = 0; r < n; r++) {
    const o = r * d;
    let m1 = 0, m2 = 0;
    for (let j = 0; j < d; j++) {
      const gy = g[o + j]!, h = xhat[o + j]!;
      dg[j] += gy * h; db[j] += gy;
      const dh = gy * gamma[j]!;
      m1 += dh; m2 += dh * h;
    }
    m1 /= d; m2 /= d;
    const rs = rstd[r]!;
    for (let j = 0; j < d; j++) dx[o + j] = rs * (g[o + j]! * gamma[j]! - m1 - xhat[o + j]! * m2);
  }
}

/** The same normalisation on plain arrays (the KV-cached sampler's step; the saved values are dropped). */
export function layerNormRows(x: Float32Array, n: number, d: number, gamma: Float32Array, beta: Float32Array, eps: number, out: Float32Array): void {
  const xhat = takeBuffer(n * d), rstd = takeBuffer(n);
  layerNormForward(x, n, d, gamma, beta, eps, xhat, rstd, out);
  giveBuffer(xhat);
  giveBuffer(rstd);
}

// ------------------------------------------------------------------------------------------------
// Linear layer y = act(x·W + b), W stored [in, out]

/**
 * The MLP's activation: ReLU (Colloquy's own models), GPT-2's tanh-approximated GELU
 * (transformers' `gelu_new`, also called `gelu_pytorch_tanh`), or the exact erf GELU (`gelu`).
 */
export type Activation = 'relu' | 'gelu_new' | 'gelu';
export const ACTIVATIONS: readonly Activation[] = ['relu', 'gelu_new', 'gelu'];

/** y = x·W + b, then `act` ('linear' or false: none; true: ReLU, as before activations were named). */
export function linear(x: tf.Tensor2D, W: tf.Tensor2D, b: tf.Tensor1D, act: Activation | 'linear' | boolean = false): tf.Tensor2D {
  const a = act === true ? 'relu' : act === false ? 'linear' : act;
  if (a === 'gelu_new' || a === 'gelu') return gelu(linearRelu(x, W, b, false), a);
  return linearRelu(x, W, b, a === 'relu');
}

function linearRelu(x: tf.Tensor2D, W: tf.Tensor2D, b: tf.Tensor1D, relu: boolean): tf.Tensor2D {
  const f = tf.customGrad((xi: tf.Tensor | Saver, wi: tf.Tensor | Saver, bi: tf.Tensor | Saver, save: tf.Tensor | Saver) => {
    const xt = xi as tf.Tensor2D, wt = wi as tf.Tensor2D;
    const y = tf.fused.matMul({ a: xt, b: wt, bias: bi as tf.Tensor, activation: relu ? 'relu' : 'linear' });
    (save as Saver)(relu ? [xt, wt, y] : [xt, wt]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws, ys] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D?];
        const g = (relu ? tf.mul(dy, tf.step(ys!)) : dy) as tf.Tensor2D;
        const flags = nativeKernelsActive();
        const dx = flags ? tf.matMul(g, ws, false, true) : tf.matMul(g, tf.transpose(ws));
        const dW = flags ? tf.matMul(xs, g, true, false) : tf.matMul(tf.transpose(xs), g);
        const db = tf.reshape(tf.matMul(tf.ones([1, g.shape[0]]), g), [g.shape[1]]);
        return [dx, dW, db];
      },
    };
  });
  return f(x, W, b) as tf.Tensor2D;
}

// ------------------------------------------------------------------------------------------------
// GELU, elementwise (the MLP activation of GPT-2-family models)

/** `geluForward`'s kind codes (the native addon's too). */
const GELU_KIND = { gelu_new: 0, gelu: 1 } as const;

/** GELU of x: 'gelu_new' is ½x(1 + tanh(√(2/π)(x + 0.044715x³))), 'gelu' is x·Φ(x) (erf). */
export function gelu(x: tf.Tensor2D, kind: 'gelu_new' | 'gelu'): tf.Tensor2D {
  const f = tf.customGrad((xi: tf.Tensor | Saver, save: tf.Tensor | Saver) => {
    const xt = xi as tf.Tensor2D;
    const xs = readF32(xt), out = new Float32Array(xs.length);
    const nn = nativeNN('gelu');
    if (nn?.geluForward) nn.geluForward(xs, xs.length, GELU_KIND[kind], out);
    else geluRows(xs, kind, out);
    (save as Saver)([xt]);
    return {
      value: tf.tensor2d(out, xt.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const xv = readF32(saved[0]!), g = readF32(dy), dx = new Float32Array(xv.length);
        if (nn?.geluBackward) nn.geluBackward(xv, g, xv.length, GELU_KIND[kind], dx);
        else geluGradRows(xv, g, kind, dx);
        return tf.tensor2d(dx, xt.shape);
      },
    };
  });
  return f(x) as tf.Tensor2D;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI), INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Φ(x), the standard normal CDF, from erfc (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2, t = 1 / (1 + 0.5 * z);
  const erfc = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - 0.5 * erfc : 0.5 * erfc;
}

/** GELU of each element (the JS path; the native addon's `geluForward` computes the same). */
export function geluRows(x: Float32Array, kind: 'gelu_new' | 'gelu', out: Float32Array): void {
  if (kind === 'gelu') { for (let i = 0; i < x.length; i++) out[i] = x[i]! * normalCdf(x[i]!); return; }
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    out[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
  }
}

function geluGradRows(x: Float32Array, g: Float32Array, kind: 'gelu_new' | 'gelu', dx: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    let d: number;
    if (kind === 'gelu') d = normalCdf(v) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v);
    else {
      const t = Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v));
      d = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * v * v);
    }
    dx[i] = g[i]! * d;
  }
}

// ------------------------------------------------------------------------------------------------
// Causal multi-head self-attention on packed q|k|v rows

export interface AttentionShape {
  /** Sequences. */
  B: number;
  /** Positions per sequence. */
  T: number;
  /** Heads. */
  H: number;
  /**
   * Left padding per sequence (keys before it are masked), or null. Pad queries attend only to
   * themselves, so their rows are finite but meaningless.
   */
  starts: Int32Array | null;
  /** Receives each call's q|k|v rows (the sampler fills its KV cache from them). */
  capture?: (qkv: Float32Array) => void;
}

const causalMasks = new Map<number, tf.Tensor>();
/** [T, T] additive causal mask, cached per T (kept for the life of the process). */
function causalMask(T: number): tf.Tensor {
  let m = causalMasks.get(T);
  if (!m) {
    const a = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) a[i * T + j] = -1e9;
    m = tf.keep(tf.tensor2d(a, [T, T]));
    causalMasks.set(T, m);
  }
  return m;
}

/** [T, T] additive mask for a row left-padded by `start`: causal over the real tokens; a pad query sees only itself. */
function paddedMask(T: number, start: number): tf.Tensor {
  const a = new Float32Array(T * T);
  for (let i = 0; i < T; i++) {
    const o = i * T;
    for (let j = 0; j < T; j++) {
      const ok = i < start ? j === i : j <= i && j >= start;
      if (!ok) a[o + j] = -1e9;
    }
  }
  return tf.tensor2d(a, [T, T]);
}

/**
 * qkv: [B·T, 3·d] with columns q | k | v, head h at h·hd … (h+1)·hd within each. Returns [B·T, d].
 *
 * Per (sequence, head) bh: S = (Q·scale)·Kᵀ, P = softmax(S + mask), O = P·V, each a plain 2-D
 * matMul (XNNPACK on wasm). The head layouts are built in JS in one pass. Backward, with
 * dS = P ⊙ (dP − rowsum(dP ⊙ P)):  dVᵀ = dOᵀ·P,  dP = dO·Vᵀ,  dQ = dS·K·scale,  dKᵀ = (Q·scale)ᵀ·dS,
 * so no T×T matrix is ever transposed.
 */
export function attention(qkv: tf.Tensor2D, shape: AttentionShape): tf.Tensor2D {
  const { B, T, H, starts } = shape;
  const d3 = qkv.shape[1], d = d3 / 3, hd = d / H;
  if (!Number.isInteger(hd)) throw new RangeError(`attention: width ${d} is not divisible by ${H} heads`);
  const nn = nativeNN('attention');
  if (nn) {
    const native = tf.customGrad((qi: tf.Tensor | Saver) => {
      const a = readF32(qi as tf.Tensor);
      shape.capture?.(a);
      const out = new Float32Array(B * T * d), P = takeBuffer(B * H * T * T);
      nn.attentionForward(a, B, T, H, hd, starts, out, P);
      return {
        value: tf.tensor2d(out, [B * T, d]),
        gradFunc: (dy: tf.Tensor) => {
          const dqkv = new Float32Array(B * T * d3);
          nn.attentionBackward(a, readF32(dy), P, B, T, H, hd, starts, dqkv);
          giveBuffer(P);
          return tf.tensor2d(dqkv, [B * T, d3]);
        },
      };
    });
    return native(qkv) as tf.Tensor2D;
  }
  const scale = 1 / Math.sqrt(hd);
  const BH = B * H, th = T * hd;
  const f = tf.customGrad((qi: tf.Tensor | Saver, save: tf.Tensor | Saver) => {
    const a = readF32(qi as tf.Tensor);
    shape.capture?.(a);
    // Layouts per (b, h): Q·scale [T, hd], Kᵀ [hd, T], V [T, hd].
    const Q = new Float32Array(BH * th), KT = new Float32Array(BH * th), V = new Float32Array(BH * th);
    splitHeads(a, B, T, H, hd, scale, Q, KT, V);
    const masks: tf.Tensor[] = starts ? Array.from({ length: B }, (_, b) => paddedMask(T, starts[b]!)) : [causalMask(T)];
    const out = new Float32Array(B * T * d);
    const keep: tf.Tensor[] = [];
    for (let bh = 0; bh < BH; bh++) {
      const b = Math.floor(bh / H), h = bh % H;
      const qt = tf.tensor2d(Q.subarray(bh * th, (bh + 1) * th), [T, hd]);
      const kt = tf.tensor2d(KT.subarray(bh * th, (bh + 1) * th), [hd, T]);
      const vt = tf.tensor2d(V.subarray(bh * th, (bh + 1) * th), [T, hd]);
      const s = tf.matMul(qt, kt);
      const sm = tf.add(s, masks[starts ? b : 0]!);
      const p = tf.softmax(sm);
      const ot = tf.matMul(p, vt);
      mergeHead(readF32(ot), out, b, h, T, hd, d);
      keep.push(p);
      tf.dispose([qt, kt, vt, s, sm, ot]);
    }
    (save as Saver)(keep);
    tf.dispose(keep);
    if (starts) tf.dispose(masks);
    return {
      value: tf.tensor2d(out, [B * T, d]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const g = readF32(dy);
        // Layouts for the backward pass: dO [T, hd], dOᵀ [hd, T], Vᵀ [hd, T], K [T, hd], (Q·scale)ᵀ [hd, T].
        const dO = new Float32Array(BH * th), dOT = new Float32Array(BH * th), VT = new Float32Array(BH * th), K = new Float32Array(BH * th), QT = new Float32Array(BH * th);
        splitHeadsBackward(a, g, B, T, H, hd, scale, dO, dOT, VT, K, QT);
        const dqkv = new Float32Array(B * T * d3);
        for (let bh = 0; bh < BH; bh++) {
          const b = Math.floor(bh / H), h = bh % H;
          const sl = (x: Float32Array) => x.subarray(bh * th, (bh + 1) * th);
          tf.tidy(() => {
            const p = saved[bh]!;
            const dVT = readF32(tf.matMul(tf.tensor2d(sl(dOT), [hd, T]), p));                 // [hd, T]
            const dP = tf.matMul(tf.tensor2d(sl(dO), [T, hd]), tf.tensor2d(sl(VT), [hd, T])); // [T, T]
            const dS = tf.mul(p, tf.sub(dP, tf.sum(tf.mul(dP, p), -1, true)));
            const dQ = readF32(tf.matMul(dS, tf.tensor2d(sl(K), [T, hd])));                  // [T, hd]
            const dKT = readF32(tf.matMul(tf.tensor2d(sl(QT), [hd, T]), dS));                // [hd, T]
            mergeHeadGrads(dQ, dKT, dVT, dqkv, b, h, T, hd, d, scale);
          });
        }
        return tf.tensor2d(dqkv, [B * T, d3]);
      },
    };
  });
  return f(qkv) as tf.Tensor2D;
}

// Head layout loops (module-level functions, so that V8 optimises them once).

function splitHeads(a: Float32Array, B: number, T: number, H: number, hd: number, scale: number, Q: Float32Array, KT: Float32Array, V: Float32Array): void {
  const d = H * hd, d3 = 3 * d, th = T * hd;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const base = (b * H + h) * th;
      for (let t = 0; t < T; t++) {
        const c = (b * T + t) * d3 + h * hd, qo = base + t * hd, ko = base + t;
        for (let j = 0; j < hd; j++) {
          Q[qo + j] = a[c + j]! * scale;
          KT[ko + j * T] = a[c + d + j]!;
          V[qo + j] = a[c + 2 * d + j]!;
        }
      }
    }
  }
}

function mergeHead(o: Float32Array, out: Float32Array, b: number, h: number, T: number, hd: number, d: number): void {
  for (let t = 0; t < T; t++) {
    const dst = (b * T + t) * d + h * hd, src = t * hd;
    for (let j = 0; j < hd; j++) out[dst + j] = o[src + j]!;
  }
}

function splitHeadsBackward(a: Float32Array, g: Float32Array, B: number, T: number, H: number, hd: number, scale: number,
  dO: Float32Array, dOT: Float32Array, VT: Float32Array, K: Float32Array, QT: Float32Array): void {
  const d = H * hd, d3 = 3 * d, th = T * hd;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const base = (b * H + h) * th;
      for (let t = 0; t < T; t++) {
        const c = (b * T + t) * d3 + h * hd, gc = (b * T + t) * d + h * hd, to = base + t, ro = base + t * hd;
        for (let j = 0; j < hd; j++) {
          const gv = g[gc + j]!;
          dO[ro + j] = gv;
          dOT[to + j * T] = gv;
          VT[to + j * T] = a[c + 2 * d + j]!;
          K[ro + j] = a[c + d + j]!;
          QT[to + j * T] = a[c + j]! * scale;
        }
      }
    }
  }
}

function mergeHeadGrads(dQ: Float32Array, dKT: Float32Array, dVT: Float32Array, dqkv: Float32Array, b: number, h: number, T: number, hd: number, d: number, scale: number): void {
  const d3 = 3 * d;
  for (let t = 0; t < T; t++) {
    const row = (b * T + t) * d3 + h * hd;
    for (let j = 0; j < hd; j++) {
      dqkv[row + j] = dQ[t * hd + j]! * scale;
      dqkv[row + d + j] = dKT[j * T + t]!;
      dqkv[row + 2 * d + j] = dVT[j * T + t]!;
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Row selection

/** Rows `rows` of x [n, d] as [rows.length, d]; the gradient scatters back (JS loops: no gather gradient on wasm). */
export function selectRows(x: tf.Tensor2D, rows: Int32Array): tf.Tensor2D {
  const [n, d] = x.shape;
  const m = rows.length;
  const f = tf.customGrad((xi: tf.Tensor | Saver) => {
    const xd = readF32(xi as tf.Tensor);
    const out = new Float32Array(m * d);
    for (let i = 0; i < m; i++) {
      const r = rows[i]!;
      if (!(r >= 0 && r < n)) throw new RangeError(`selectRows: row ${r} outside [0, ${n})`);
      out.set(xd.subarray(r * d, (r + 1) * d), i * d);
    }
    return {
      value: tf.tensor2d(out, [m, d]),
      gradFunc: (dy: tf.Tensor) => {
        const g = readF32(dy);
        const dx = new Float32Array(n * d);
        for (let i = 0; i < m; i++) {
          const o = rows[i]! * d, s = i * d;
          for (let j = 0; j < d; j++) dx[o + j] += g[s + j]!;
        }
        return tf.tensor2d(dx, [n, d]);
      },
    };
  });
  return f(x) as tf.Tensor2D;
}

// ------------------------------------------------------------------------------------------------
// Output projection + softmax cross-entropy

/**
 * Mean (weighted) negative log-likelihood of `targets` under softmax(h·Eᵀ), E [V, d] (the tied
 * embedding or the output matrix). Rows with weight 0 contribute nothing. One op: the gradient is
 * (p − onehot)·w/Σw, projected back through E.
 */
export function outputCrossEntropy(h: tf.Tensor2D, E: tf.Tensor2D, targets: Int32Array, weights: Float32Array | null = null): tf.Scalar {
  const [n] = h.shape;
  const V = E.shape[0];
  let wsum = n;
  if (weights) { wsum = 0; for (let i = 0; i < n; i++) wsum += weights[i]!; }
  if (!(wsum > 0)) throw new RangeError('outputCrossEntropy: all weights are zero');
  const flat = new Int32Array(n), idx2 = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const y = targets[i]!;
    if (y < 0 || y >= V) throw new RangeError(`target ${y} outside the vocabulary [0, ${V})`);
    flat[i] = i * V + y; idx2[2 * i] = i; idx2[2 * i + 1] = y;
  }
  const nn = nativeNN('crossEntropy');
  if (nn) {
    const d = E.shape[1];
    const native = tf.customGrad((hi: tf.Tensor | Saver, ei: tf.Tensor | Saver) => {
      const hd = readF32(hi as tf.Tensor), ed = readF32(ei as tf.Tensor);
      const P = takeBuffer(n * V);
      const loss = nn.crossEntropyForward(hd, ed, targets, weights, n, V, d, P);
      return {
        value: tf.scalar(loss),
        gradFunc: (dy: tf.Tensor) => {
          const dh = new Float32Array(n * d), dE = new Float32Array(V * d);
          nn.crossEntropyBackward(hd, ed, P, targets, weights, n, V, d, readF32(dy)[0]! / wsum, dh, dE);
          giveBuffer(P);
          return [tf.tensor2d(dh, [n, d]), tf.tensor2d(dE, [V, d])];
        },
      };
    });
    return native(h, E) as tf.Scalar;
  }
  const f = tf.customGrad((hi: tf.Tensor | Saver, ei: tf.Tensor | Saver, save: tf.Tensor | Saver) => {
    const ht = hi as tf.Tensor2D, et = ei as tf.Tensor2D;
    const p = tf.tidy(() => tf.softmax(tf.matMul(ht, tf.transpose(et))));
    const pt = tidyRead(() => tf.gather(tf.reshape(p, [-1]), tf.tensor1d(flat, 'int32')));
    let loss = 0;
    for (let i = 0; i < n; i++) loss -= (weights ? weights[i]! : 1) * Math.log(Math.max(pt[i]!, 1e-30));
    (save as Saver)([ht, et, p]);
    return {
      value: tf.scalar(loss / wsum),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [hs, es, ps] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const upd = new Float32Array(n);
        for (let i = 0; i < n; i++) upd[i] = pt[i]! - 1;
        const dl = tf.tensorScatterUpdate(ps, tf.tensor2d(idx2, [n, 2], 'int32'), tf.tensor1d(upd));
        const scale = readF32(dy)[0]! / wsum;
        const col = weights ? tf.tensor2d(weights.map(w => w * scale), [n, 1]) : tf.scalar(scale);
        const dh = tf.mul(tf.matMul(dl, es), col);
        const dE = tf.transpose(tf.matMul(tf.transpose(tf.mul(hs, col)), dl));
        return [dh, dE];
      },
    };
  });
  return f(h, E) as tf.Scalar;
}

/** Logits h·Eᵀ for a few rows, as one Float32Array [n·V]. */
export function logitsRows(h: tf.Tensor2D, E: tf.Tensor2D): Float32Array {
  return tidyRead(() => matMulTransposedB(h, E));
}

/** a·bᵀ: a transpose flag with the native kernels, an explicit transpose otherwise (faster on plain wasm). */
export function matMulTransposedB(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return nativeKernelsActive() ? tf.matMul(a, b, false, true) : tf.matMul(a, tf.transpose(b));
}

/** In-place log-softmax of each length-V row of `x` (float64 accumulation). */
export function logSoftmaxRows(x: Float32Array, V: number): Float32Array {
  const n = x.length / V;
  const nn = nativeNN('logSoftmax');
  if (nn) { nn.logSoftmaxRows(x, n, V); return x; }
  for (let r = 0; r < n; r++) {
    const o = r * V;
    let m = -Infinity;
    for (let j = 0; j < V; j++) if (x[o + j]! > m) m = x[o + j]!;
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(x[o + j]! - m);
    const lse = m + Math.log(s);
    for (let j = 0; j < V; j++) x[o + j] = x[o + j]! - lse;
  }
  return x;
}
