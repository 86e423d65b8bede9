/**
 * Native matrix-multiply kernels for the TensorFlow.js wasm backend (native/README.md).
 *
 * The wasm backend runs XNNPACK's 128-bit SIMD kernels on one thread: 10–20 GFLOP/s here. When the
 * project's N-API addon built during `npm ci` (native/, AVX2+FMA with a portable fallback), this
 * module replaces the wasm backend's `BatchMatMul` and `_FusedMatMul` kernels with ones that run
 * the addon directly on the wasm heap (no copies): 45–65 GFLOP/s on the same core, transposes
 * included. Everything else — tensors, autodiff, the other kernels — stays TF.js. Inputs the
 * addon does not handle (other dtypes, activations, bias shapes, broadcasts) go to the original
 * kernel. `COLLOQUY_NATIVE=0` turns it off.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export interface NativeAddon {
  gemm(a: Float32Array, aOff: number, b: Float32Array, bOff: number, c: Float32Array, cOff: number,
    batch: number, M: number, N: number, K: number, strideA: number, strideB: number, flags: number,
    bias?: Float32Array | null, biasOff?: number, biasSize?: number): void;
  info(): { avx2: boolean };
}

/** `gemm` flags. */
export const GEMM = { transA: 1, transB: 2, accumulate: 4, relu: 8, portable: 16 } as const;

const ADDON = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'build', 'Release', 'colloquy_native.node');

let loaded: { addon: NativeAddon | null; why: string } | null = null;

/** The addon, or null with the reason (not built, disabled, failed to load). */
export function loadNative(): { addon: NativeAddon | null; why: string } {
  if (loaded) return loaded;
  if (process.env.COLLOQUY_NATIVE === '0') loaded = { addon: null, why: 'COLLOQUY_NATIVE=0' };
  else if (!existsSync(ADDON)) loaded = { addon: null, why: 'not built (npm ci builds it with node-gyp; or run `node native/build.mjs`)' };
  else {
    try {
      loaded = { addon: createRequire(import.meta.url)(ADDON) as NativeAddon, why: '' };
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
function nativeMatMul(addon: NativeAddon, args: KernelArgs, bias: tf.TensorInfo | null, relu: boolean): tf.TensorInfo | null {
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
  const flags = (transposeA ? GEMM.transA : 0) | (transposeB ? GEMM.transB : 0) | (relu ? GEMM.relu : 0);
  addon.gemm(h, off(a), h, off(b), h, off(out), batch, M, N, Ka, batchA === 1 ? 0 : M * Ka, batchB === 1 ? 0 : Ka * N, flags,
    bias ? h : null, bias ? off(bias) : 0, biasSize);
  return out;
}

let installed: string | null = null;

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
  replace('BatchMatMul', args => nativeMatMul(addon, args, null, false) ?? originals.get('BatchMatMul')!(args));
  replace('_FusedMatMul', args => {
    const { activation } = args.attrs as { activation?: string };
    const act = activation ?? 'linear';
    const ok = (act === 'linear' || act === 'relu') && !args.inputs.preluActivationWeights;
    return (ok ? nativeMatMul(addon, args, args.inputs.bias ?? null, act === 'relu') : null) ?? originals.get('_FusedMatMul')!(args);
  });
  installed = `native-gemm (${addon.info().avx2 ? 'avx2' : 'portable'})`;
  return { feature: installed, why: '' };
}

/** Whether the native kernels are in place (transposed matMuls then cost no more than plain ones). */
export function nativeKernelsActive(): boolean {
  return installed !== null && tf.getBackend() === 'wasm';
}
