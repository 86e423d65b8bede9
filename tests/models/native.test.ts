// The native kernels (native/, models/native.ts): the addon's gemm against a float64
// reference, row-for-row batch invariance, coded argument errors; the replaced wasm matMul kernels
// against the originals; and each native LM op (attention, cross-entropy, layer norm,
// log-softmax, the KV cache, the fused decoding step, the policy's log-probabilities) against its
// JS path, values and gradients.
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { GEMM, loadNative, nativeKernelsActive, setNativeEnabled, type NativeAddon } from '../../models/native.ts';
import { attention, layerNorm, logSoftmaxRows, outputCrossEntropy } from '../../models/lm-ops.ts';
import { sampleToken } from '../../models/sampler.ts';
import { actionLogProbs } from '../../agents/rl/policy.ts';
import { TransformerLM } from '../../models/lm.ts';
import { Rng } from '../../core/rng.ts';

const { addon, why } = loadNative();
const disabled = process.env.COLLOQUY_NATIVE === '0';

function rand(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** float64 reference of C = op(A)·op(B) (+bias, relu), one batch member. */
function reference(a: Float32Array, b: Float32Array, M: number, N: number, K: number, ta: boolean, tb: boolean): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (ta ? a[k * M + i]! : a[i * K + k]!) * (tb ? b[j * K + k]! : b[k * N + j]!);
      c[i * N + j] = s;
    }
  }
  return c;
}

function maxRelErr(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  let scale = 1e-6, err = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]!));
  for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(x[i]! - ref[i]!));
  return err / scale;
}

describe('native addon', () => {
  it('is built and loads (npm ci builds it; COLLOQUY_NATIVE=0 skips these tests)', () => {
    if (disabled) return;
    expect(addon, why).not.toBeNull();
    expect(typeof addon!.info().avx2).toBe('boolean');
  });
});

describe.skipIf(!addon || disabled)('native gemm', () => {
  const n = addon as NativeAddon;
  const rng = new Rng(7);

  it('matches a float64 reference for every transpose, edge sizes, and both kernels', () => {
    const shapes: [number, number, number][] = [[1, 1, 1], [1, 40, 7], [2, 33, 17], [3, 5, 300], [5, 17, 9], [6, 16, 256], [7, 31, 257], [24, 70, 3], [25, 64, 130], [97, 130, 600]];
    for (const [M, N, K] of shapes) {
      for (const flags of [0, GEMM.transA, GEMM.transB, GEMM.transA | GEMM.transB]) {
        for (const portable of [0, GEMM.portable]) {
          const a = rand(M * K, rng), b = rand(K * N, rng), c = new Float32Array(M * N);
          n.gemm(a, 0, b, 0, c, 0, 1, M, N, K, 0, 0, flags | portable);
          const ref = reference(a, b, M, N, K, (flags & GEMM.transA) !== 0, (flags & GEMM.transB) !== 0);
          expect(maxRelErr(c, ref), `${M}x${N}x${K} flags ${flags | portable}`).toBeLessThan(1e-5);
        }
      }
    }
  });

  it('batches with broadcast, offsets, accumulation, bias and ReLU', () => {
    const M = 9, N = 20, K = 11, batch = 3;
    const a = rand(5 + batch * M * K, rng), b = rand(K * N, rng), bias = rand(N, rng);
    const c0 = rand(batch * M * N, rng);
    const c = new Float32Array(2 + batch * M * N);
    c.set(c0, 2);
    n.gemm(a, 5, b, 0, c, 2, batch, M, N, K, M * K, 0, GEMM.accumulate | GEMM.relu, bias, 0, N);
    for (let i = 0; i < batch; i++) {
      const ref = reference(a.subarray(5 + i * M * K), b, M, N, K, false, false);
      const want = Array.from(ref, (v, q) => Math.max(0, v + c0[i * M * N + q]! + bias[q % N]!));
      expect(maxRelErr(c.subarray(2 + i * M * N, 2 + (i + 1) * M * N), want)).toBeLessThan(1e-5);
    }
    expect(c[0]).toBe(0);
    expect(c[1]).toBe(0);
  });

  it('gives each row the same bits alone or in a batch of any size', () => {
    for (const [N, K] of [[384, 128], [128, 512], [37, 300]] as const) {
      for (const flags of [0, GEMM.accumulate]) {
        const rows = 40, a = rand(rows * K, rng), b = rand(K * N, rng), init = rand(rows * N, rng);
        const all = init.slice();
        n.gemm(a, 0, b, 0, all, 0, 1, rows, N, K, 0, 0, flags);
        for (const M of [1, 2, 3, 4, 7, 24, 25]) {
          const c = init.slice(0, M * N);
          n.gemm(a, 0, b, 0, c, 0, 1, M, N, K, 0, 0, flags);
          expect(Buffer.from(c.buffer).equals(Buffer.from(all.buffer, 0, M * N * 4)), `M=${M} N=${N} K=${K}`).toBe(true);
        }
      }
    }
  });

  it('rejects bad arguments with coded errors and writes nothing', () => {
    const a = new Float32Array(6), b = new Float32Array(6), c = new Float32Array(4).fill(3);
    const call = (f: () => void) => { try { f(); return null; } catch (e) { return e as Error & { code?: string }; } };
    const short = call(() => n.gemm(a, 0, b, 0, c, 0, 1, 2, 3, 3, 0, 0, 0));
    expect(short).toBeInstanceOf(RangeError);
    expect(short!.code).toBe('ERR_NATIVE_ARG');
    expect(Array.from(c)).toEqual([3, 3, 3, 3]);
    const type = call(() => n.gemm(new Float64Array(6) as unknown as Float32Array, 0, b, 0, c, 0, 1, 2, 2, 3, 0, 0, 0));
    expect(type).toBeInstanceOf(TypeError);
    expect(type!.code).toBe('ERR_NATIVE_ARG');
    expect(call(() => n.gemm(a, -1, b, 0, c, 0, 1, 2, 2, 3, 0, 0, 0))!.code).toBe('ERR_NATIVE_ARG');
    expect(call(() => n.gemm(a, 0.5, b, 0, c, 0, 1, 2, 2, 3, 0, 0, 0))!.code).toBe('ERR_NATIVE_ARG');
    expect(call(() => n.attendCached(a, 0, b, b, 9, 1, 2, 3, c, 0))!.code).toBe('ERR_NATIVE_ARG');
  });
});

/** Run `f` with the native paths on and off; returns both results. */
function both<T>(f: () => T): { native: T; js: T } {
  setNativeEnabled(true);
  const native = f();
  setNativeEnabled(false);
  try { return { native, js: f() }; } finally { setNativeEnabled(true); }
}

describe.skipIf(!addon || disabled || tf.getBackend() !== 'wasm')('native kernels in TensorFlow.js', () => {
  afterAll(() => setNativeEnabled(true));
  const rng = new Rng(11);

  it('replace the wasm matMuls with the same results, transposes, batches, bias and activations included', () => {
    expect(nativeKernelsActive()).toBe(true);
    const cases: { a: number[]; b: number[]; ta: boolean; tb: boolean }[] = [
      { a: [5, 7], b: [7, 3], ta: false, tb: false },
      { a: [7, 5], b: [3, 7], ta: true, tb: true },
      { a: [2, 4, 6], b: [2, 6, 5], ta: false, tb: false },
      { a: [3, 4, 6], b: [6, 5], ta: false, tb: false },
      { a: [6, 4], b: [2, 5, 6], ta: true, tb: true },
    ];
    for (const { a, b, ta, tb } of cases) {
      const ta_ = tf.tensor(rand(a.reduce((x, y) => x * y), rng), a), tb_ = tf.tensor(rand(b.reduce((x, y) => x * y), rng), b);
      const r = both(() => tf.tidy(() => tf.matMul(ta_, tb_, ta, tb).arraySync()));
      expect(maxRelErr((r.native as number[][]).flat(3) as number[], (r.js as number[][]).flat(3) as number[])).toBeLessThan(1e-5);
      const N = tb ? b[b.length - 2]! : b[b.length - 1]!;
      const bias = tf.tensor1d(rand(N, rng));
      // Against matMul + bias + activation as separate original kernels (tfjs 4.22's own wasm
      // _FusedMatMul adds the bias wrongly for batched or transposed inputs, so it is no reference).
      const acts = { linear: (x: tf.Tensor) => x, relu: tf.relu, relu6: tf.relu6, elu: tf.elu, sigmoid: tf.sigmoid, leakyrelu: (x: tf.Tensor) => tf.leakyRelu(x, 0.3) };
      for (const [activation, fn] of Object.entries(acts)) {
        setNativeEnabled(true);
        const fused = tf.tidy(() => Array.from(tf.fused.matMul({ a: ta_ as tf.Tensor2D, b: tb_ as tf.Tensor2D, transposeA: ta, transposeB: tb, bias, activation: activation as 'relu', leakyreluAlpha: 0.3 }).dataSync()));
        setNativeEnabled(false);
        const plain = tf.tidy(() => Array.from(fn(tf.add(tf.matMul(ta_, tb_, ta, tb), bias)).dataSync()));
        setNativeEnabled(true);
        expect(maxRelErr(fused, plain), `${activation} ${JSON.stringify({ a, b, ta, tb })}`).toBeLessThan(1e-5);
      }
      tf.dispose([ta_, tb_, bias]);
    }
  });

  it('attention forward and gradient equal the JS path, with and without left padding', () => {
    // T = 150: the native path takes query rows in blocks of 64, so three blocks, the last partial.
    const B = 3, T = 150, H = 2, hd = 8, d = H * hd;
    const qkv = tf.tensor2d(rand(B * T * 3 * d, rng), [B * T, 3 * d]);
    const dy = tf.tensor2d(rand(B * T * d, rng), [B * T, d]);
    for (const starts of [null, Int32Array.from([0, 70, 149])]) {
      const run = () => tf.tidy(() => {
        const { value, grads } = tf.valueAndGrads((x: tf.Tensor) => tf.sum(tf.mul(attention(x as tf.Tensor2D, { B, T, H, starts }), dy)))([qkv]);
        return { value: value.dataSync()[0]!, grad: Array.from(grads[0]!.dataSync()) };
      });
      const r = both(run);
      expect(r.native.value).toBeCloseTo(r.js.value, 4);
      expect(maxRelErr(r.native.grad, r.js.grad)).toBeLessThan(1e-4);
    }
    tf.dispose([qkv, dy]);
  });

  it('cross-entropy (weighted) and layer norm equal the JS path, values and gradients', () => {
    const n = 12, V = 37, d = 8;
    const h = tf.tensor2d(rand(n * d, rng), [n, d]), E = tf.tensor2d(rand(V * d, rng), [V, d]);
    const targets = Int32Array.from({ length: n }, (_, i) => (i * 7) % V);
    const weights = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 0 : 0.5 + i / n));
    const xe = both(() => tf.tidy(() => {
      const { value, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) => outputCrossEntropy(a as tf.Tensor2D, b as tf.Tensor2D, targets, weights))([h, E]);
      return { value: value.dataSync()[0]!, gh: Array.from(grads[0]!.dataSync()), gE: Array.from(grads[1]!.dataSync()) };
    }));
    expect(xe.native.value).toBeCloseTo(xe.js.value, 5);
    expect(maxRelErr(xe.native.gh, xe.js.gh)).toBeLessThan(1e-4);
    expect(maxRelErr(xe.native.gE, xe.js.gE)).toBeLessThan(1e-4);
    const g = tf.tensor1d(rand(d, rng)), b = tf.tensor1d(rand(d, rng)), dy = tf.tensor2d(rand(n * d, rng), [n, d]);
    const ln = both(() => tf.tidy(() => {
      const { value, grads } = tf.valueAndGrads((x: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(layerNorm(x as tf.Tensor2D, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-5), dy)))([h, g, b]);
      return { value: value.dataSync()[0]!, grads: grads.map(t => Array.from(t.dataSync())) };
    }));
    expect(ln.native.value).toBeCloseTo(ln.js.value, 4);
    ln.native.grads.forEach((gr, i) => expect(maxRelErr(gr, ln.js.grads[i]!)).toBeLessThan(1e-4));
    const rows = rand(3 * V, rng);
    const ls = both(() => Array.from(logSoftmaxRows(rows.slice(), V)));
    expect(maxRelErr(ls.native, ls.js)).toBeLessThan(1e-5);
    tf.dispose([h, E, g, b, dy]);
  });

  it('an LM gives the same loss, gradients and KV-cached distributions either way', () => {
    const m = TransformerLM.create({ vocabSize: 60, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, contextLength: 16 }, 3);
    const B = 2, T = 10;
    const tokens = Int32Array.from({ length: B * (T + 1) }, (_, i) => (i * 13 + 5) % 60);
    const r = both(() => tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => m.loss({ tokens, batchSize: B, seqLength: T }));
      const s = m.startSession([[1, 2, 3], [4, 5, 6, 7, 8]]);
      s.nextLogProbs();
      s.append([9, 10]);
      const dists = s.nextLogProbs().map(x => Array.from(x));
      s.dispose();
      return { loss: value.dataSync()[0]!, grads: m.variables.map(v => Array.from(grads[v.name]!.dataSync())), dists };
    }));
    expect(r.native.loss).toBeCloseTo(r.js.loss, 5);
    r.native.grads.forEach((g, i) => expect(maxRelErr(g, r.js.grads[i]!), m.variables[i]!.name).toBeLessThan(1e-4));
    r.native.dists.forEach((d, i) => expect(maxRelErr(d, r.js.dists[i]!)).toBeLessThan(1e-4));
    m.dispose();
  });

  it('the fused decoding step: a dialog gets the same bits however its tokens arrive, and the numbers of the TF.js step path', () => {
    for (const activation of ['relu', 'gelu', 'gelu_new'] as const) {
      const m = TransformerLM.create({ vocabSize: 70, dModel: 24, nLayers: 3, nHeads: 3, dFF: 40, contextLength: 20, activation }, 5);
      const rng = new Rng(4);
      // Three dialogs of 30 tokens (past the context of 20: the window slides).
      const dialogs = [0, 1, 2].map(() => Array.from({ length: 30 }, () => rng.int(70)));
      // Feed each dialog in pieces of the given sizes, reading every row's distribution after each round.
      const feed = (pieces: number[], off = '') => {
        process.env.COLLOQUY_NATIVE_OFF = off;
        try {
          const s = m.startSession(dialogs.map(t => t.slice(0, pieces[0])));
          const seen: number[][][] = [s.nextLogProbs().map(x => Array.from(x))];
          let at = pieces[0]!;
          for (const k of pieces.slice(1)) {
            dialogs.forEach((t, r) => s.extend(r, t.slice(at, at + k)));
            at += k;
            seen.push(s.nextLogProbs().map(x => Array.from(x)));
          }
          const hidden = s.hidden().map(x => Array.from(x));
          s.dispose();
          return { last: seen[seen.length - 1]!, hidden, seen };
        } finally { delete process.env.COLLOQUY_NATIVE_OFF; }
      };
      const oneByOne = feed([1, ...Array<number>(29).fill(1)]);
      const chunks = feed([7, 5, 1, 6, 2, 9]);
      const whole = feed([30]);
      // The same dialog state: the same bits, by single tokens, chunks, or all at once (prefill).
      expect(chunks.last, activation).toEqual(oneByOne.last);
      expect(whole.last, activation).toEqual(oneByOne.last);
      expect(whole.hidden, activation).toEqual(oneByOne.hidden);
      // The TF.js single-token step (no native decoding): the same numbers to float rounding.
      const steps = feed([1, ...Array<number>(29).fill(1)], 'decode');
      oneByOne.seen.forEach((round, k) => round.forEach((lp, r) => expect(maxRelErr(lp, steps.seen[k]![r]!), `${activation} round ${k}`).toBeLessThan(1e-5)));
      m.dispose();
    }
  });

  it('a whole block as one native op gives the bits of the TF.js ops, values and gradients (padding, picked rows, ReLU and GELU)', () => {
    for (const activation of ['relu', 'gelu_new', 'gelu'] as const) {
      const m = TransformerLM.create({ vocabSize: 50, dModel: 16, nLayers: 3, nHeads: 2, dFF: 24, contextLength: 16, activation }, 7);
      const B = 3, T = 11;
      const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 17 + 3) % 50);
      const starts = Int32Array.from([0, 4, 10]);
      const dyRows = Int32Array.from([2, 32, 11, 20, 21, 5]);
      for (const [opts, rows] of [[{}, null], [{ starts }, null], [{ starts }, dyRows], [{}, dyRows]] as const) {
        const run = (off: string) => {
          process.env.COLLOQUY_NATIVE_OFF = off;
          try {
            return tf.tidy(() => {
              const { value, grads } = tf.variableGrads(() => {
                const h = m.blocks(m.embed(ids, B, T, opts), B, T, { ...opts, ...(rows ? { rows } : {}) });
                const w = tf.tensor2d(Array.from({ length: h.shape[0] * 16 }, (_, i) => Math.sin(i)), h.shape);
                return tf.sum(tf.mul(h, w)) as tf.Scalar;
              }, m.variables);
              return { value: value.dataSync()[0]!, grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, Array.from(g.dataSync())])) };
            });
          } finally { delete process.env.COLLOQUY_NATIVE_OFF; }
        };
        const native = run(''), ops = run('block');
        const label = `${activation} ${'starts' in opts ? 'padded' : 'unpadded'} ${rows ? 'rows' : 'all'}`;
        expect(native.value, label).toBe(ops.value);
        expect(Object.keys(native.grads).sort(), label).toEqual(Object.keys(ops.grads).sort());
        expect(Object.keys(native.grads).length, label).toBeGreaterThanOrEqual(3 * 12 + 1);
        for (const k of Object.keys(ops.grads)) expect(native.grads[k], `${label} ${k}`).toEqual(ops.grads[k]);
      }
      m.dispose();
    }
  });

  it('a native block outside a gradient scope (a few sequences per call) gives the numbers of one call and of the TF.js ops', () => {
    const m = TransformerLM.create({ vocabSize: 50, dModel: 16, nLayers: 2, nHeads: 2, dFF: 24, contextLength: 16 }, 9);
    const B = 9, T = 7;
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 13 + 1) % 50);
    const starts = Int32Array.from({ length: B }, (_, b) => b % 4);
    const forward = () => tf.tidy(() => Array.from(m.blocks(m.embed(ids, B, T, { starts }), B, T, { starts }).dataSync()));
    const chunked = forward();
    // Inside a gradient scope: one call for all nine sequences.
    let whole: number[] = [];
    tf.tidy(() => { tf.variableGrads(() => { const h = m.blocks(m.embed(ids, B, T, { starts }), B, T, { starts }); whole = Array.from(h.dataSync()); return tf.sum(h) as tf.Scalar; }, m.variables); });
    process.env.COLLOQUY_NATIVE_OFF = 'block';
    let ops: number[];
    try { ops = forward(); } finally { delete process.env.COLLOQUY_NATIVE_OFF; }
    expect(chunked).toEqual(whole);
    expect(chunked).toEqual(ops);
    m.dispose();
  });

  it("the policy's log π(a) and entropy equal the JS path, values and gradients, with E trained or not", () => {
    const N = 40, d = 16, V = 300;
    const h = tf.tensor2d(rand(N * d, rng), [N, d]), E = tf.tensor2d(rand(V * d, rng).map(x => 0.5 * x), [V, d]);
    const actions = Int32Array.from({ length: N }, (_, i) => (i * 37) % V);
    const w = tf.tensor2d(rand(N * 2, rng), [N, 2]);
    for (const trainE of [false, true]) {
      const run = (off: string) => {
        process.env.COLLOQUY_NATIVE_OFF = off;
        try {
          return tf.tidy(() => {
            const value = Array.from(actionLogProbs(h, E, actions, trainE).dataSync());
            const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(actionLogProbs(a as tf.Tensor2D, b as tf.Tensor2D, actions, trainE), w));
            const grads = trainE ? tf.grads(f)([h, E]) : [tf.grad((a: tf.Tensor) => f(a, E))(h)];
            return { value, grads: grads.map(g => Array.from(g.dataSync())) };
          });
        } finally { delete process.env.COLLOQUY_NATIVE_OFF; }
      };
      const native = run(''), js = run('policy');
      expect(maxRelErr(native.value, js.value)).toBeLessThan(1e-5);
      expect(maxRelErr(native.grads[0]!, js.grads[0]!)).toBeLessThan(1e-4);
      if (trainE) expect(maxRelErr(native.grads[1]!, js.grads[1]!)).toBeLessThan(1e-4);
    }
    expect(() => actionLogProbs(h, E, Int32Array.from({ length: N }, () => V), false)).toThrow(/outside the vocabulary/);
    tf.dispose([h, E, w]);
  });

  it('sampleRow draws what the JS sampler draws from the same uniform, and follows the distribution', () => {
    const V = 50;
    const lp = logSoftmaxRows(rand(V, rng).map(x => 2 * x), V);
    for (const temperature of [1, 0.5]) {
      const uniforms = Array.from({ length: 4000 }, () => rng.random());
      const draw = (u: number) => sampleToken(lp, { temperature, rng: { random: () => u } as unknown as Rng });
      const r = both(() => uniforms.map(draw));
      const agree = r.native.filter((t, i) => t === r.js[i]).length;
      expect(agree / uniforms.length).toBeGreaterThan(0.998);
      // Frequencies against softmax(lp / T).
      const w = Array.from(lp, l => Math.exp(l / temperature)), z = w.reduce((a, b) => a + b, 0);
      const freq = new Array<number>(V).fill(0);
      r.native.forEach(t => { freq[t]!++; });
      const tv = freq.reduce((acc, f, j) => acc + Math.abs(f / uniforms.length - w[j]! / z), 0) / 2;
      expect(tv).toBeLessThan(0.05);
    }
    const best = Array.from(lp).indexOf(Math.max(...lp));
    expect(both(() => sampleToken(lp, { temperature: 0 })).native).toBe(best);
  });
});
