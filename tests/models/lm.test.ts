import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { TransformerLM, windowStart, type LMConfig } from '../../models/lm.ts';
import { sampleToken } from '../../models/sampler.ts';
import { loadCheckpoint, saveCheckpoint } from '../../models/checkpoint.ts';
import { Rng } from '../../core/rng.ts';

const SMALL: Partial<LMConfig> = { vocabSize: 50, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, contextLength: 16 };

function randomTokens(n: number, V: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => rng.int(V));
}

/** The same model written with plain tfjs ops and autodiff (slow, but obviously right). */
function referenceLoss(m: TransformerLM, tokens: Int32Array, B: number, T: number): tf.Scalar {
  const c = m.config, d = c.dModel, H = c.nHeads, hd = d / H, V = c.vocabSize;
  const ids: number[] = [], tg: number[] = [], pos: number[] = [];
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) { ids.push(tokens[b * (T + 1) + t]!); tg.push(tokens[b * (T + 1) + t + 1]!); pos.push(t); }
  const p = (n: string) => m.param(n);
  const ln = (x: tf.Tensor, g: tf.Tensor, bb: tf.Tensor) => {
    const mo = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.div(tf.sub(x, mo.mean), tf.sqrt(tf.add(mo.variance, c.layerNormEps))), g), bb);
  };
  let x = tf.add(tf.matMul(tf.oneHot(tf.tensor1d(ids, 'int32'), V), p('tok_emb')), tf.matMul(tf.oneHot(tf.tensor1d(pos, 'int32'), c.contextLength), m.positionTable()));
  const mask = tf.tensor2d(Array.from({ length: T * T }, (_, k) => ((k % T) > Math.floor(k / T) ? -1e9 : 0)), [T, T]);
  for (let l = 0; l < c.nLayers; l++) {
    const q = (n: string) => p(`h${l}.${n}`);
    const h1 = ln(x, q('ln1.g'), q('ln1.b'));
    const qkv = tf.add(tf.matMul(h1, q('attn.qkv.w')), q('attn.qkv.b'));
    const [qq, kk, vv] = tf.split(qkv, 3, 1).map(t => tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]));
    const s = tf.add(tf.div(tf.matMul(qq!, kk!, false, true), Math.sqrt(hd)), mask);
    const o = tf.reshape(tf.transpose(tf.matMul(tf.softmax(s), vv!), [0, 2, 1, 3]), [B * T, d]);
    x = tf.add(x, tf.add(tf.matMul(o, q('attn.out.w')), q('attn.out.b')));
    const h2 = ln(x, q('ln2.g'), q('ln2.b'));
    x = tf.add(x, tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(h2, q('mlp.fc.w')), q('mlp.fc.b'))), q('mlp.proj.w')), q('mlp.proj.b')));
  }
  const hf = ln(x, p('ln_f.g'), p('ln_f.b'));
  const logits = tf.matMul(hf, m.outputMatrix(), false, true);
  return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(tg, 'int32'), V), logits) as tf.Scalar;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('TransformerLM', () => {
  let model: TransformerLM;
  beforeAll(() => { model = TransformerLM.create(SMALL, 1); });
  afterAll(() => model.dispose());

  it('counts and names its parameters', () => {
    const d = 16, V = 50, L = 2, ff = 32, C = 16;
    const block = 2 * d + d * 3 * d + 3 * d + d * d + d + 2 * d + d * ff + ff + ff * d + d;
    expect(model.numParams).toBe(V * d + C * d + L * block + 2 * d);
    expect(model.variables.every(v => v.name.includes('/'))).toBe(true);
  });

  it('rejects inconsistent configs', () => {
    expect(() => TransformerLM.create({ ...SMALL, nHeads: 3 }, 1)).toThrow(/divisible/);
    expect(() => TransformerLM.create({ ...SMALL, bogus: 1 } as Partial<LMConfig>, 1)).toThrow(/bogus/);
  });

  for (const variant of [{ tieEmbeddings: true, positional: 'learned' as const }, { tieEmbeddings: false, positional: 'sinusoidal' as const }]) {
    it(`hand-written gradients match tfjs autodiff (${variant.positional}, tied=${variant.tieEmbeddings})`, () => {
      const m = TransformerLM.create({ ...SMALL, ...variant }, 2);
      const B = 3, T = 8;
      const tokens = randomTokens(B * (T + 1), 50, 3);
      const ours = tf.variableGrads(() => m.loss({ tokens, batchSize: B, seqLength: T }));
      const ref = tf.variableGrads(() => referenceLoss(m, tokens, B, T));
      expect(ours.value.dataSync()[0]!).toBeCloseTo(ref.value.dataSync()[0]!, 5);
      for (const v of m.variables) {
        const a = ours.grads[v.name]!.dataSync(), b = ref.grads[v.name]!.dataSync();
        const scale = Math.max(...Array.from(b, Math.abs), 1e-6);
        expect(maxAbsDiff(a, b) / scale, v.name).toBeLessThan(1e-4);
      }
      tf.dispose([ours.value, ref.value, ...Object.values(ours.grads), ...Object.values(ref.grads)]);
      m.dispose();
    });
  }

  it('windowStart reads everything up to C, then slides by half windows', () => {
    const C = 16;
    for (let n = 1; n <= C; n++) expect(windowStart(n, C)).toBe(0);
    expect(C + 1 - windowStart(C + 1, C)).toBe(8);
    for (let n = C + 1; n < 100; n++) {
      const len = n - windowStart(n, C);
      expect(len).toBeGreaterThanOrEqual(8);
      expect(len).toBeLessThanOrEqual(C);
      // Either the window grows by one token or it restarts at h tokens.
      const prev = n - 1 - windowStart(n - 1, C);
      expect(len === prev + 1 || len === 8).toBe(true);
    }
  });

  it('the KV-cached session gives the full forward pass\'s log-probs (ragged rows, past the context length)', () => {
    const prefixes = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20], [21], []];
    const s = model.startSession(prefixes);
    const hist = prefixes.map(p => (p.length ? [...p] : [model.config.bosTokenId]));
    let worst = 0;
    for (let step = 0; step < 30; step++) {
      // Rows 0..2 advance every step; row 3 every other step (ragged appends).
      const lp = s.nextLogProbs();
      const full = model.nextTokenLogProbs(hist);
      for (let r = 0; r < hist.length; r++) worst = Math.max(worst, maxAbsDiff(lp[r]!, full[r]!));
      const toks = hist.map((_, r) => (r === 3 && step % 2 === 1 ? null : (step * 7 + r * 13) % 50));
      s.append(toks);
      toks.forEach((t, r) => { if (t !== null) hist[r]!.push(t); });
    }
    expect(worst).toBeLessThan(1e-4);
    const lp = s.nextLogProbs();
    expect(lp.every(row => Math.abs(row.reduce((a, x) => a + Math.exp(x), 0) - 1) < 1e-4)).toBe(true);
    s.dispose();
    expect(() => s.nextLogProbs()).toThrow(/dispose/);
  });

  it('sequenceLogProbs equals token-by-token next-token log-probs, also past the context length', () => {
    const prefixes = [[1, 2], [3, 4, 5, 6, 7]];
    const conts = [Array.from(randomTokens(30, 50, 9)), Array.from(randomTokens(4, 50, 10))];
    const got = model.sequenceLogProbs(prefixes, conts);
    for (let r = 0; r < 2; r++) {
      for (let k = 0; k < conts[r]!.length; k++) {
        const ctx = prefixes[r]!.concat(conts[r]!.slice(0, k));
        const want = model.nextTokenLogProbs([ctx])[0]![conts[r]![k]!]!;
        expect(Math.abs(got[r]![k]! - want)).toBeLessThan(1e-4);
      }
    }
  });

  it('samples deterministically given a seed, and honours temperature, top-k and stop tokens', () => {
    const prefixes = [[1, 2, 3], [4], [5, 6]];
    const a = model.generate(prefixes, { maxTokens: 12, temperature: 1, rng: new Rng(7) });
    const b = model.generate(prefixes, { maxTokens: 12, temperature: 1, rng: new Rng(7) });
    const c = model.generate(prefixes, { maxTokens: 12, temperature: 1, rng: new Rng(8) });
    expect(a.tokens).toEqual(b.tokens);
    expect(a.logProbs).toEqual(b.logProbs);
    expect(a.tokens).not.toEqual(c.tokens);
    expect(a.tokens.every(t => t.length === 12)).toBe(true);
    // Greedy = temperature 0 = top-k 1 = near-greedy at a very low temperature.
    const g = model.generate(prefixes, { maxTokens: 8, temperature: 0 });
    expect(model.generate(prefixes, { maxTokens: 8, temperature: 1, topK: 1, rng: new Rng(1) }).tokens).toEqual(g.tokens);
    expect(model.generate(prefixes, { maxTokens: 8, temperature: 1e-4, rng: new Rng(2) }).tokens).toEqual(g.tokens);
    // Stop tokens end a row (the stop token is kept).
    const stop = g.tokens[0]![2]!;
    const st = model.generate(prefixes, { maxTokens: 8, temperature: 0, stopTokens: [stop] });
    expect(st.tokens[0]![st.tokens[0]!.length - 1]).toBe(stop);
    expect(st.finishReasons[0]).toBe('stop');
    expect(st.tokens[0]!.length).toBeLessThanOrEqual(3);
    // Sampled log-probs are the model's.
    const lp = model.sequenceLogProbs(prefixes, a.tokens);
    for (let r = 0; r < 3; r++) expect(maxAbsDiff(lp[r]!, a.logProbs[r]!)).toBeLessThan(1e-4);
  });

  it('logits and session.step agree with the distributions', () => {
    const ctx = [[1, 2, 3], [4]];
    const lg = model.logits(ctx), lp = model.nextTokenLogProbs(ctx);
    for (let r = 0; r < 2; r++) {
      const m = Math.max(...lg[r]!);
      const lse = m + Math.log(lg[r]!.reduce((a, x) => a + Math.exp(x - m), 0));
      expect(maxAbsDiff(lg[r]!.map(x => x - lse), lp[r]!)).toBeLessThan(1e-5);
    }
    const s = model.startSession(ctx);
    const greedy = s.step({ temperature: 0 });
    expect(greedy).toEqual(lp.map(row => row.indexOf(Math.max(...row))));
    expect(s.tokens(0)).toEqual([1, 2, 3, greedy[0]]);
    s.resetRow(1, [7, 8]);
    expect(s.tokens(1)).toEqual([7, 8]);
    expect(maxAbsDiff(s.nextLogProbs([1])[0]!, model.nextTokenLogProbs([[7, 8]])[0]!)).toBeLessThan(1e-4);
    s.dispose();
  });

  it('top-p keeps the smallest most-likely set', () => {
    const lp = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
    const seen = new Set<number>();
    const rng = new Rng(3);
    for (let i = 0; i < 300; i++) seen.add(sampleToken(lp, { topP: 0.75, rng }));
    expect([...seen].sort()).toEqual([0, 1]);
    const seenK = new Set<number>();
    for (let i = 0; i < 300; i++) seenK.add(sampleToken(lp, { topK: 3, rng }));
    expect([...seenK].sort()).toEqual([0, 1, 2]);
  });

  it('does not leak tensors in a training step or in sampling', () => {
    const m = TransformerLM.create(SMALL, 4);
    const opt = tf.train.adam(1e-3);
    const tokens = randomTokens(2 * 9, 50, 5);
    const trainStep = () => {
      const { value, grads } = tf.variableGrads(() => m.loss({ tokens, batchSize: 2, seqLength: 8 }));
      opt.applyGradients(grads as Parameters<typeof opt.applyGradients>[0]);
      tf.dispose([value, ...Object.values(grads)]);
    };
    const sample = () => {
      m.generate([[1, 2], [3]], { maxTokens: 20, temperature: 1, rng: new Rng(1) });
      m.nextTokenLogProbs([[1, 2, 3], [4]]);
      m.sequenceLogProbs([[1]], [[2, 3, 4]]);
    };
    trainStep(); sample();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) { trainStep(); sample(); }
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
    m.dispose();
  });

  it('saves and loads a checkpoint with bit-identical outputs', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'colloquy-lm-'));
    try {
      const m = TransformerLM.create({ ...SMALL, positional: 'sinusoidal', tieEmbeddings: false }, 6);
      await saveCheckpoint(m, dir, { trainConfig: { note: 'x' }, metadata: { step: 3 } });
      const ck = await loadCheckpoint(dir);
      expect(ck.model.config).toEqual(m.config);
      expect(ck.metadata?.step).toBe(3);
      expect(ck.metadata?.tfjsVersion).toBe(tf.version.tfjs);
      const ctx = [[1, 2, 3, 4], [5]];
      const a = m.nextTokenLogProbs(ctx), b = ck.model.nextTokenLogProbs(ctx);
      for (let r = 0; r < 2; r++) expect(Array.from(b[r]!)).toEqual(Array.from(a[r]!));
      const ga = m.generate(ctx, { maxTokens: 10, temperature: 1, rng: new Rng(3) });
      const gb = ck.model.generate(ctx, { maxTokens: 10, temperature: 1, rng: new Rng(3) });
      expect(gb).toEqual(ga);
      const again = (await loadCheckpoint(dir)).model;
      expect(Array.from(again.nextTokenLogProbs(ctx)[0]!)).toEqual(Array.from(a[0]!));
      tf.dispose([]);
      m.dispose(); ck.model.dispose(); again.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
