/**
 * Native matrix-multiply kernels for the TensorFlow.js wasm backend (native/README.md).
 *
 * The wasm backend runs XNNPACK's 128-bit SIMD kernels on one thread: 10–20 GFLOP/s here. When the
 * project's N-API addon built during `npm ci` (native/, AVX2+FMA with a portable fallback), this
 * module replaces the wasm backend's `BatchMatMul` and `_FusedMatMul` kernels with ones that run
 * the addon directly on the wasm heap (no copies): 45–65 GFLOP/s on the same core, transposes
 * included. Everything else — tensors, autodiff, the other kernels — stays TF.js. Inputs the
 * addon does not handle (other dtypes, PReLU, bias shapes, broadcasts) go to the original kernel.
 * `COLLOQUY_NATIVE=0` turns it off.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../core/paths.ts';

export interface NativeAddon {
  gemm(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number,
    batch: number, M: number, N: number, K: number, strideA: number, strideB: number, flags: number,
    bias?: Float32Array | null, biasOff?: number, biasSize?: number, act?: number, alpha?: number): void;
  /** avx2: the AVX2 kernels run; threads: 2 when large kernels may use a helper thread (older addons: absent). */
  info(): { avx2: boolean; threads?: number };
  /** 1: every kernel on the calling thread; 2: large ones split with a helper thread (the same bits). Optional: older addons lack it. */
  setThreads?(n: number): void;
  /** In-place log-softmax of each length-n row. */
  logSoftmaxRows(x: Float32Array, rows: number, n: number): void;
  /** Mean (weighted) NLL of targets under softmax(h·Eᵀ); fills P [n, V] with the probabilities. */
  crossEntropyForward(h: Float32Array, E: Float32Array, targets: Int32Array, weights: Float32Array | null, n: number, V: number, d: number, P: Float32Array): number;
  /** dh, dE of `scale`·Σ w·NLL from the forward pass's P (overwritten). */
  crossEntropyBackward(h: Float32Array, E: Float32Array, P: Float32Array, targets: Int32Array, weights: Float32Array | null,
    n: number, V: number, d: number, scale: number, dh: Float32Array, dE: Float32Array): void;
  /** The policy's log π(a) and entropy per row of h [n, d] under softmax(h·Eᵀ) into out [n, 2]; P, logP [n, V] and ent [n] kept for backward. Optional: older addons lack it. */
  policyLogProbsForward?(h: Float32Array, E: Float32Array, actions: Int32Array, n: number, V: number, d: number,
    P: Float32Array, logP: Float32Array, ent: Float64Array, out: Float32Array): void;
  /** dh (and dE unless null) of g [n, 2]·(log π(a), H) from the forward pass's P (overwritten), logP, ent. */
  policyLogProbsBackward?(h: Float32Array, E: Float32Array, P: Float32Array, logP: Float32Array, ent: Float64Array,
    actions: Int32Array, g: Float32Array, n: number, V: number, d: number, dh: Float32Array, dE: Float32Array | null): void;
  /** Floats blockForward saves for m output rows (native/block.h); dims [B, T, H, d, F, act]. Optional: older addons lack the block calls. */
  blockSavedFloats?(dims: Int32Array, eps: number, m: number): number;
  /** One transformer block on x [B·T, d] with its parameters packed W (block.h), y [m, d] at `rows` (null: all). */
  blockForward?(x: Float32Array, W: Float32Array, dims: Int32Array, eps: number, starts: Int32Array | null, rows: Int32Array | null, saved: Float32Array, y: Float32Array): void;
  /** dx [B·T, d] and the packed parameter gradient G from dy [m, d] and the forward pass's `saved`. */
  blockBackward?(dy: Float32Array, W: Float32Array, dims: Int32Array, eps: number, starts: Int32Array | null, rows: Int32Array | null, saved: Float32Array, dx: Float32Array, G: Float32Array): void;
  /** kl-mixture.ts solveMixture in float64 (native/mixture.h): log x into logx, (α, KL(x‖b), KL(a‖b)) into out; guess outside (0, 1): none. Optional: older addons lack it. */
  solveMixture?(loga: Float64Array, logb: Float32Array, k: number, rtol: number, maxIter: number, guess: number, logx: Float64Array, out: Float64Array): void;
  /** Causal attention on packed q|k|v [B·T, 3d] → out [B·T, d]; P [B·H, T, T] gets the weights. */
  attentionForward(qkv: Float32Array, B: number, T: number, H: number, hd: number, starts: Int32Array | null, out: Float32Array, P: Float32Array): void;
  attentionBackward(qkv: Float32Array, dout: Float32Array, P: Float32Array, B: number, T: number, H: number, hd: number, starts: Int32Array | null, dqkv: Float32Array): void;
  /** One q|k|v row (at qkvOff) against a KV cache [H, C, hd]: stores k, v at `slot`, writes the attended row at outOff. */
  layerNormForward(x: Float32Array, n: number, d: number, g: Float32Array, b: Float32Array, eps: number, xhat: Float32Array, rstd: Float32Array, out: Float32Array): void;
  layerNormBackward(dy: Float32Array, xhat: Float32Array, rstd: Float32Array, g: Float32Array, n: number, d: number, dx: Float32Array, dg: Float32Array, db: Float32Array): void;
  /** A token from softmax(logProbs / temperature) with the uniform draw u (argmax when temperature ≤ 0). */
  sampleRow(logProbs: Float32Array, V: number, temperature: number, u: number): number;
  /** GELU of n elements (kind 0: tanh approximation, 1: erf); optional: an addon built before GELU lacks it. */
  geluForward?(x: Float32Array, n: number, kind: number, out: Float32Array): void;
  /** dx = dy · GELU'(x). */
  geluBackward?(x: Float32Array, dy: Float32Array, n: number, kind: number, dx: Float32Array): void;
  attendCached(qkv: Float32Array, qkvOff: number, K: Float32Array, V: Float32Array, slot: number, H: number, hd: number, C: number, out: Float32Array, outOff: number): void;
  /**
   * A tokens through the whole model against KV caches (native/decode.h): W the packed weights
   * (`InferenceCache.packed`), dims [L, d, H, F, V, C, act], each entry's token, position and cache
   * ([L][K, V][H, C, hd]; a dialog's several new tokens share its cache, in slot order); writes
   * logp [nOut·V] (log-softmaxed) and hidden [nOut·d] for the entries `outRows`. Optional: an addon
   * built before it lacks it.
   */
  decodeStep?(W: Float32Array, dims: Int32Array, tokens: Int32Array, slots: Int32Array, caches: Float32Array[], outRows: Int32Array, logp: Float32Array, hidden: Float32Array, eps: number): void;
}

/** Activation codes of the native decoding step and block (native/decode.h, native/block.h). */
export const NATIVE_ACT = { relu: 0, gelu_new: 1, gelu: 2 } as const;

/** `gemm` flags. */
export const GEMM = { transA: 1, transB: 2, accumulate: 4, relu: 8, portable: 16 } as const;
/** `gemm` activations after the bias (ReLU is the flag above). */
const ACT: Record<string, number> = { linear: 0, relu: 0, relu6: 1, leakyrelu: 2, sigmoid: 3, elu: 4 };

const ADDON = path.join(PROJECT_ROOT, 'native', 'build', 'Release', 'colloquy_native.node');

let loaded: { addon: NativeAddon | null; why: string } | null = null;

/** The addon, or null with the reason (not built, disabled, failed to load). */
export function loadNative(): { addon: NativeAddon | null; why: string } {
  if (loaded) return loaded;
  if (process.env.COLLOQUY_NATIVE === '0') loaded = { addon: null, why: 'COLLOQUY_NATIVE=0' };
  else if (!existsSync(ADDON)) loaded = { addon: null, why: 'not built (npm ci builds it with node-gyp; or run `node native/build.mjs`)' };
  else {
    try {
      const addon = createRequire(import.meta.url)(ADDON) as NativeAddon;
      const threads = process.env.COLLOQUY_THREADS;
      if (threads !== undefined && threads !== '') addon.setThreads?.(Math.max(1, Number.parseInt(threads, 10) || 1));
      loaded = { addon, why: '' };
    } catch (err) {
      loaded = { addon: null, why: `failed to load: ${(err as Error).message.split('\n')[0]}` };
    }
  }
  return loaded;
}

// The parts of the wasm backend these kernels use (not in its public typings).
interface WasmBackend {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  wasm: { HEAPU8: Uint8Array };
}
interface KernelArgs { inputs: Record<string, tf.TensorInfo | undefined>; backend: WasmBackend; attrs: Record<string, unknown> }
type KernelFn = (args: KernelArgs) => tf.TensorInfo;

let heapView: Float32Array | null = null;
/** A Float32Array over the whole wasm heap (made again after the heap grows). */
function heap(backend: WasmBackend): Float32Array {
  const buf = backend.wasm.HEAPU8.buffer;
  if (!heapView || heapView.buffer !== buf) heapView = new Float32Array(buf);
  return heapView;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * The matmul of `inputs.a`, `inputs.b` on the heap, or null when the original kernel must run.
 * `bias` (rank 1, length N or 1) and ReLU are fused when given.
 */
function nativeMatMul(addon: NativeAddon, args: KernelArgs, bias: tf.TensorInfo | null, activation = 'linear', alpha = 0): tf.TensorInfo | null {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || (bias && bias.dtype !== 'float32')) return null;
  const ra = a.shape.length, rb = b.shape.length;
  if (ra < 2 || rb < 2) return null;
  const M = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const Ka = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const Kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const N = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (Ka !== Kb) return null; // the original kernel throws tfjs's own message
  const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
  const batchA = size(outerA), batchB = size(outerB);
  // Batch broadcasting: equal outer shapes, or one side a single matrix.
  let outer: number[];
  if (batchA === 1) outer = outerB.length >= outerA.length ? outerB : outerA;
  else if (batchB === 1) outer = outerA.length >= outerB.length ? outerA : outerB;
  else if (outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i])) outer = outerA;
  else return null;
  let biasSize = 0;
  if (bias) {
    biasSize = size(bias.shape);
    if (!(biasSize === N || biasSize === 1) || (biasSize === N && bias.shape[bias.shape.length - 1] !== N)) return null;
  }
  const backend = args.backend;
  const out = backend.makeOutput([...outer, M, N], 'float32');
  const batch = Math.max(batchA, batchB);
  if (batch * M * N === 0) return out;
  const h = heap(backend); // after makeOutput: it may have grown the heap
  const off = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId)!.memoryOffset >> 2;
  const flags = (transposeA ? GEMM.transA : 0) | (transposeB ? GEMM.transB : 0) | (activation === 'relu' ? GEMM.relu : 0);
  addon.gemm(h, off(a), h, off(b), h, off(out), batch, M, N, Ka, batchA === 1 ? 0 : M * Ka, batchB === 1 ? 0 : Ka * N, flags,
    bias ? h : null, bias ? off(bias) : 0, biasSize, ACT[activation] ?? 0, alpha);
  return out;
}

let installed: string | null = null;
let enabled = true;

/**
 * Turn the native paths off (true → on again) without unloading anything: the replaced kernels
 * call the original wasm ones and the LM ops take their JS paths. For tests and benchmarks that
 * compare the two in one process.
 */
export function setNativeEnabled(on: boolean): void { enabled = on; }

/**
 * Replace the wasm backend's BatchMatMul and _FusedMatMul with the native ones. Returns a feature
 * note (`native-gemm (avx2)`), or null with nothing changed when the addon is unavailable or the
 * wasm backend is not registered. Idempotent.
 */
export function installNativeWasmKernels(): { feature: string | null; why: string } {
  if (installed) return { feature: installed, why: '' };
  const { addon, why } = loadNative();
  if (!addon) return { feature: null, why };
  const originals = new Map<string, KernelFn>();
  for (const name of ['BatchMatMul', '_FusedMatMul']) {
    const k = tf.getKernel(name, 'wasm');
    if (!k) return { feature: null, why: `wasm backend has no ${name} kernel` };
    originals.set(name, k.kernelFunc as unknown as KernelFn);
  }
  const replace = (name: string, fn: KernelFn) => {
    const k = tf.getKernel(name, 'wasm')!;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: fn as unknown as tf.KernelFunc, disposeFunc: k.disposeFunc });
  };
  replace('BatchMatMul', args => (enabled ? nativeMatMul(addon, args, null) : null) ?? originals.get('BatchMatMul')!(args));
  // (The original wasm _FusedMatMul of tfjs 4.22 adds the bias wrongly for batched or transposed
  // inputs; these cases are all handled here, except PReLU.)
  replace('_FusedMatMul', args => {
    const { activation, leakyreluAlpha } = args.attrs as { activation?: string; leakyreluAlpha?: number };
    const act = activation ?? 'linear';
    const ok = enabled && act in ACT && !args.inputs.preluActivationWeights;
    return (ok ? nativeMatMul(addon, args, args.inputs.bias ?? null, act, leakyreluAlpha ?? 0.2) : null) ?? originals.get('_FusedMatMul')!(args);
  });
  installed = `native-gemm (${addon.info().avx2 ? 'avx2' : 'portable'})`;
  return { feature: installed, why: '' };
}

/** The LM ops that can be left to their JS paths one by one (`COLLOQUY_NATIVE_OFF=attention,sample`). */
export type NativePart = 'attention' | 'crossEntropy' | 'layerNorm' | 'logSoftmax' | 'kvCache' | 'sample' | 'gelu' | 'decode' | 'policy' | 'block' | 'mixture';
let offCache: { raw: string; set: Set<string> } | null = null;
function offParts(): Set<string> {
  const raw = process.env.COLLOQUY_NATIVE_OFF ?? '';
  if (!offCache || offCache.raw !== raw) offCache = { raw, set: new Set(raw.split(',').map(x => x.trim()).filter(Boolean)) };
  return offCache.set;
}

/**
 * The addon for the LM's own ops on Float32Arrays (attention, cross-entropy, log-softmax, the KV
 * cache), when it loaded and the backend is wasm or cpu (on tfjs-node, TensorFlow's kernels run).
 */
export function nativeNN(part?: NativePart): NativeAddon | null {
  const b = tf.getBackend();
  if (part && offParts().has(part)) return null;
  return enabled && (b === 'wasm' || b === 'cpu') ? loadNative().addon : null;
}

/** Whether the native kernels are in place (transposed matMuls then cost no more than plain ones). */
export function nativeKernelsActive(): boolean {
  return enabled && installed !== null && tf.getBackend() === 'wasm';
}
