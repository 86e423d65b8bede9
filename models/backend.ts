/**
 * Backend selection for TensorFlow.js, done once at an entry point (CLI command, server start,
 * worker). Order for `auto`: tensorflow-gpu (tfjs-node-gpu with a CUDA GPU), tensorflow
 * (tfjs-node), wasm (SIMD), cpu. The native packages are optionalDependencies and are loaded by
 * dynamic import; the chosen backend is verified with `tf.getBackend()` because tfjs can silently
 * fall back. On wasm, the project's native matmul kernels replace the wasm ones when they built
 * (native.ts; the feature `native-gemm`). Library code imports `@tensorflow/tfjs` only and never
 * calls this.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { installNativeWasmKernels } from './native.ts';

export const BACKENDS = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKENDS)[number];
export type BackendName = Exclude<BackendChoice, 'auto'>;

export interface BackendInfo {
  /** What was asked for. */
  requested: BackendChoice;
  /** What runs, as this module names it. */
  name: BackendName;
  /** What tfjs reports (`tf.getBackend()`), e.g. `tensorflow`, `wasm`, `cpu`. */
  tfBackend: string;
  /** Feature notes, e.g. `simd` for wasm. */
  features: string[];
  /** Why earlier choices were skipped. */
  skipped: string[];
  tfjsVersion: string;
}

let current: BackendInfo | null = null;

/** The backend chosen by `initBackend`, or null before it ran. */
export function backendInfo(): BackendInfo | null { return current; }

async function tryNative(pkg: string): Promise<string | null> {
  try {
    await import(pkg);
    return null;
  } catch (err) {
    return `${pkg}: ${(err as Error).message.split('\n')[0]}`;
  }
}

async function tryWasm(): Promise<string | null> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
    wasm.setWasmPaths(`${path.join(dir, 'dist')}${path.sep}`);
    return null;
  } catch (err) {
    return `@tensorflow/tfjs-backend-wasm: ${(err as Error).message.split('\n')[0]}`;
  }
}

async function activate(name: string): Promise<boolean> {
  try {
    const ok = await tf.setBackend(name);
    await tf.ready();
    return ok && tf.getBackend() === name;
  } catch {
    return false;
  }
}

/**
 * Choose and activate a backend. Idempotent: a second call with the same request returns the
 * first result. `COLLOQUY_BACKEND` overrides `auto`.
 */
export async function initBackend(requested: BackendChoice = 'auto', log?: (info: BackendInfo) => void): Promise<BackendInfo> {
  if (current && (current.requested === requested || requested === 'auto')) return current;
  const envPick = process.env.COLLOQUY_BACKEND as BackendChoice | undefined;
  const want: BackendChoice = requested === 'auto' && envPick && (BACKENDS as readonly string[]).includes(envPick) ? envPick : requested;
  const order: BackendName[] = want === 'auto' ? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] : [want];
  const skipped: string[] = [];
  for (const name of order) {
    let why: string | null = null;
    const features: string[] = [];
    if (name === 'tensorflow-gpu') {
      why = await tryNative('@tensorflow/tfjs-node-gpu');
      if (!why && !(await activate('tensorflow'))) why = 'tfjs-node-gpu loaded but the tensorflow backend did not activate';
      if (!why) features.push('cuda');
    } else if (name === 'tensorflow') {
      why = await tryNative('@tensorflow/tfjs-node');
      if (!why && !(await activate('tensorflow'))) why = 'tfjs-node loaded but the tensorflow backend did not activate';
    } else if (name === 'wasm') {
      why = await tryWasm();
      if (!why && !(await activate('wasm'))) why = 'wasm backend did not activate';
      if (!why) {
        const env = tf.env();
        if (env.getAsync) {
          const simd = await env.getAsync('WASM_HAS_SIMD_SUPPORT').catch(() => false);
          const threads = await env.getAsync('WASM_HAS_MULTITHREAD_SUPPORT').catch(() => false);
          if (simd) features.push('simd');
          if (threads) features.push('threads');
        }
        const native = installNativeWasmKernels();
        if (native.feature) features.push(native.feature);
        else skipped.push(`native-gemm: ${native.why}`);
      }
    } else {
      if (!(await activate('cpu'))) why = 'cpu backend did not activate';
    }
    if (why) { skipped.push(`${name}: ${why}`); continue; }
    current = { requested, name, tfBackend: tf.getBackend(), features, skipped, tfjsVersion: tf.version.tfjs };
    log?.(current);
    return current;
  }
  throw new Error(`no TensorFlow.js backend could be activated for '${requested}': ${skipped.join('; ')}`);
}
