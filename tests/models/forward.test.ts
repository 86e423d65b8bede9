import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { TransformerLM, windowStart, type LMConfig } from '../../models/lm.ts';
import { Rng } from '../../core/rng.ts';
import { nativeDecodeStep } from '../../models/sampler.ts';

const CFG: Partial<LMConfig> = { vocabSize: 40, dModel: 16, nLayers: 3, nHeads: 2, dFF: 32, contextLength: 12 };

function read(t: tf.Tensor): number[] { return Array.from(t.dataSync()); }

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The final hidden state at the last token of `tokens`, from the full forward pass. */
function lastHidden(m: TransformerLM, tokens: number[]): number[] {
  const T = tokens.length, d = m.config.dModel;
  return tf.tidy(() => read(m.hidden(Int32Array.from(tokens), 1, T)).slice((T - 1) * d, T * d));
}

describe('the forward pass in pieces', () => {
  let model: TransformerLM;
  beforeAll(() => { model = TransformerLM.create(CFG, 4); });
  afterAll(() => model.dispose());

  it('embed → blocks in any split → finalNorm is the one-pass hidden state, bit for bit (padding and dropout too)', () => {
    const dropModel = TransformerLM.create({ ...CFG, dropout: 0.2 }, 5);
    const rng = new Rng(3);
    const B = 3, T = 9;
    const ids = Int32Array.from({ length: B * T }, () => rng.int(40));
    const starts = new Int32Array([0, 2, 5]);
    for (const [m, opts] of [[model, { starts }], [dropModel, { dropoutSeed: 17 }], [dropModel, { starts, dropoutSeed: 4 }]] as const) {
      tf.tidy(() => {
        const whole = read(m.hidden(ids, B, T, opts));
        for (const k of [0, 1, 2, 3]) {
          const low = m.blocks(m.embed(ids, B, T, opts), B, T, { ...opts, to: k });
          const split = read(m.finalNorm(m.blocks(low, B, T, { ...opts, from: k })));
          expect(split).toEqual(whole);
        }
      });
    }
    // Dropout is on: another seed gives other numbers.
    tf.tidy(() => { expect(read(dropModel.hidden(ids, B, T, { dropoutSeed: 18 }))).not.toEqual(read(dropModel.hidden(ids, B, T, { dropoutSeed: 17 }))); });
    dropModel.dispose();
  });

  it('gradients flow through the trainable top only when the lower blocks are fed as a constant', () => {
    const ids = Int32Array.from([1, 2, 3, 4, 5, 6]);
    const trunk = tf.tidy(() => read(model.blocks(model.embed(ids, 1, 6), 1, 6, { to: 2 })));
    const { value, grads } = tf.variableGrads(() => tf.sum(model.finalNorm(model.blocks(tf.tensor2d(trunk, [6, 16]), 1, 6, { from: 2 }))) as tf.Scalar, model.variables);
    const names = Object.keys(grads).filter(n => read(grads[n]!).some(g => g !== 0)).map(n => n.slice(n.indexOf('/') + 1));
    expect(names.some(n => n.startsWith('h2.'))).toBe(true);
    expect(names.filter(n => n.startsWith('h0.') || n.startsWith('h1.') || n === 'tok_emb')).toEqual([]);
    tf.dispose([value, ...Object.values(grads)]);
  });

  it('blocks with `rows`: those rows of the full pass, bit for bit, with the gradients of picking them afterwards', () => {
    const rng = new Rng(6);
    const B = 2, T = 10;
    const ids = Int32Array.from({ length: B * T }, () => rng.int(40));
    const rows = Int32Array.from([3, 0, 9, 15, 19, 12]);
    const dy = tf.tensor2d(Array.from({ length: rows.length * 16 }, () => rng.normal()), [rows.length, 16]);
    for (const [from, to] of [[0, 3], [1, 3], [2, 3], [0, 2], [3, 3]] as const) {
      tf.tidy(() => {
        const x = model.blocks(model.embed(ids, B, T), B, T, { to: from });
        const all = read(model.blocks(x, B, T, { from, to }));
        const picked = read(model.blocks(x, B, T, { from, to, rows }));
        const want = Array.from(rows).flatMap(r => all.slice(r * 16, (r + 1) * 16));
        expect(picked, `[${from}, ${to})`).toEqual(want);
        if (from === to) return;
        const vars = model.variables.filter(v => /h[0-2]\./.test(v.name));
        const g1 = tf.variableGrads(() => tf.sum(tf.mul(model.blocks(x, B, T, { from, to, rows }), dy)) as tf.Scalar, vars).grads;
        // The same rows picked after the full pass, as a sum against a one-hot selection matrix.
        const pick = tf.tensor2d(Array.from({ length: rows.length * B * T }, (_, i) => (rows[Math.floor(i / (B * T))] === i % (B * T) ? 1 : 0)), [rows.length, B * T]);
        const g2 = tf.variableGrads(() => tf.sum(tf.mul(tf.matMul(pick, model.blocks(x, B, T, { from, to })), dy)) as tf.Scalar, vars).grads;
        for (const v of vars) {
          const a = g1[v.name], b = g2[v.name];
          if (!a || !b) { expect(Boolean(a), v.name).toBe(Boolean(b)); continue; }
          expect(maxAbsDiff(read(a), read(b)), v.name).toBeLessThan(1e-5);
        }
      });
    }
    dy.dispose();
  });

  it('rejects a block range outside the model', () => {
    tf.tidy(() => {
      const x = model.embed(Int32Array.from([1, 2]), 1, 2);
      expect(() => model.blocks(x, 1, 2, { from: 2, to: 1 })).toThrow(RangeError);
      expect(() => model.blocks(x, 1, 2, { to: 4 })).toThrow(RangeError);
      expect(() => model.embed(Int32Array.from([1, 2, 3]), 1, 2)).toThrow(RangeError);
    });
  });
});

describe('the KV-cached session exposes each row\'s final hidden state', () => {
  let model: TransformerLM;
  beforeAll(() => { model = TransformerLM.create({ ...CFG, tieEmbeddings: false }, 6); });
  afterAll(() => model.dispose());

  it('equals the full forward pass after the prefill and after cached steps and window slides', () => {
    const rng = new Rng(8);
    const prefixes = [[3], [1, 2, 3, 4, 5], [7, 8, 9]];
    const s = model.startSession(prefixes);
    // Without the native decoding step the prefill is the model's own full forward pass on the
    // left-padded batch: the same numbers as a pass over the same padded batch. With it, the native
    // catch-up fills the caches (the same numbers as single-token steps): equal to float rounding.
    const h0 = s.hidden();
    const T = 5, ids = new Int32Array(3 * T), starts = new Int32Array(3);
    prefixes.forEach((p, b) => { starts[b] = T - p.length; ids.set(p, b * T + starts[b]!); });
    const padded = tf.tidy(() => read(model.hidden(ids, 3, T, { starts })));
    const exact = nativeDecodeStep() === null;
    h0.forEach((h, b) => {
      const full = padded.slice((b * T + T - 1) * 16, (b * T + T) * 16);
      if (exact) expect(Array.from(h)).toEqual(full);
      else expect(maxAbsDiff(h, full)).toBeLessThan(1e-5);
    });
    // Cached single-token steps, past the context length (the window slides and the cache refills).
    for (let step = 0; step < 16; step++) {
      s.append(prefixes.map(() => rng.int(40)));
      const hs = s.hidden();
      hs.forEach((h, r) => expect(maxAbsDiff(h, lastHidden(model, s.tokens(r).slice(windowStart(s.tokens(r).length, 12))))).toBeLessThan(1e-5));
    }
    s.dispose();
  });

  it('is the state the next-token distribution comes from: log softmax(h·Eᵀ) = nextLogProbs', () => {
    const s = model.startSession([[1, 2], [5]]);
    s.append([3, 4]);
    s.append([6, null]);
    const lps = s.nextLogProbs(), hs = s.hidden();
    const E = model.outputMatrix();
    hs.forEach((h, r) => {
      const mine = tf.tidy(() => read(tf.logSoftmax(tf.matMul(tf.tensor2d(h, [1, 16]), E, false, true))));
      expect(maxAbsDiff(mine, lps[r]!)).toBeLessThan(1e-5);
    });
    // Asking again computes nothing new: the same arrays.
    expect(s.hidden()[0]).toBe(hs[0]);
    s.append([7, 7]);
    expect(s.hidden()[0]).not.toBe(hs[0]);
    s.dispose();
    expect(() => s.hidden()).toThrow(/dispose/);
    expect(s.isOpen).toBe(false);
  });
});

