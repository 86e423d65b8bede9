import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../models/backend.ts';
import { TransformerLM } from '../../models/lm.ts';
import {
  LOG_MIN_PROB, conservativeLogProbs, ensemblePosterior, lowerLogProb, lowerProbabilities, mixWithHelper, plausibleSet, posteriorWeights,
} from '../../agents/imitation/ensemble.ts';
import { ConservativeReference, ModelReference, klToReference } from '../../agents/imitation/reference.ts';

const log = (xs: number[]) => Float32Array.from(xs.map(Math.log));
const sum = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0);

describe('posterior weights and the plausible set', () => {
  it('w_k ∝ exp(−s·NLL_k)', () => {
    const w = posteriorWeights([1, 1 + Math.LN2, 1 + Math.log(4)]);
    expect(w[0]).toBeCloseTo(4 / 7, 12);
    expect(w[1]).toBeCloseTo(2 / 7, 12);
    expect(w[2]).toBeCloseTo(1 / 7, 12);
    const w2 = posteriorWeights([1, 1 + Math.LN2], 3);
    expect(w2[0]! / w2[1]!).toBeCloseTo(8, 10);
    expect(posteriorWeights([5, 9], 0)).toEqual([0.5, 0.5]);
  });

  it('is stable for large NLLs and honours a prior', () => {
    const w = posteriorWeights([10000, 10001]);
    expect(w[0]! / w[1]!).toBeCloseTo(Math.E, 9);
    const wp = posteriorWeights([1, 1], 1, [3, 1]);
    expect(wp[0]).toBeCloseTo(0.75, 14);
    expect(wp[1]).toBeCloseTo(0.25, 14);
  });

  it('keeps the models within a factor α of the best', () => {
    const w = [4 / 7, 2 / 7, 1 / 7];
    expect(plausibleSet(w, 1)).toEqual([0]);
    expect(plausibleSet(w, 0.5)).toEqual([0, 1]);
    expect(plausibleSet(w, 0.49)).toEqual([0, 1]);
    expect(plausibleSet(w, 0.25)).toEqual([0, 1, 2]);
    expect(plausibleSet([0.5, 0.5], 1)).toEqual([0, 1]);
    expect(() => plausibleSet(w, 0)).toThrow(RangeError);
    expect(() => plausibleSet(w, 1.5)).toThrow(RangeError);
    const post = ensemblePosterior([1, 1 + Math.LN2, 1 + Math.log(4)], { alpha: 0.5, posteriorScale: 1 });
    expect(post.members).toEqual([0, 1]);
  });
});

describe('lower probabilities ℓ and help mass θ', () => {
  const p1 = [0.5, 0.3, 0.2];
  const p2 = [0.2, 0.3, 0.5];
  const p3 = [0.4, 0.4, 0.2];

  it('ℓ is the elementwise min and θ = 1 − Σℓ', () => {
    const { ell, theta } = lowerProbabilities([log(p1), log(p2)]);
    expect(Array.from(ell).map(x => +x.toFixed(6))).toEqual([0.2, 0.3, 0.2]);
    expect(theta).toBeCloseTo(0.3, 6);
    const all = lowerProbabilities([log(p1), log(p2), log(p3)]);
    expect(Array.from(all.ell).map(x => +x.toFixed(6))).toEqual([0.2, 0.3, 0.2]);
    expect(all.theta).toBeCloseTo(0.3, 6);
  });

  it('uses only the plausible set', () => {
    const { ell, theta } = lowerProbabilities([log(p1), log(p2), log(p3)], [0, 2]);
    expect(Array.from(ell).map(x => +x.toFixed(6))).toEqual([0.4, 0.3, 0.2]);
    expect(theta).toBeCloseTo(0.1, 6);
  });

  it('one model: ℓ = ν and θ = 0; identical models: the same', () => {
    const one = lowerProbabilities([log(p1)]);
    expect(one.theta).toBe(0);
    const same = lowerProbabilities([log(p1), log(p1)]);
    expect(same.theta).toBe(0);
    expect(Array.from(same.ell).map(x => +x.toFixed(6))).toEqual(p1);
  });

  it('disjoint models: θ = 1', () => {
    const { theta } = lowerProbabilities([log([1 - 1e-30, 1e-30]), log([1e-30, 1 - 1e-30])]);
    expect(theta).toBeCloseTo(1, 12);
  });

  it('the V+1 distribution sums to 1 with θ on HELP; floors a zero θ', () => {
    const lp = conservativeLogProbs([log(p1), log(p2)]);
    expect(lp.length).toBe(4);
    expect(sum(Array.from(lp).map(Math.exp))).toBeCloseTo(1, 6);
    expect(Math.exp(lp[3]!)).toBeCloseTo(0.3, 6);
    const single = conservativeLogProbs([log(p1)]);
    expect(single[3]).toBe(Math.fround(LOG_MIN_PROB));
  });

  it('ℓ of one token from per-token log-probs', () => {
    expect(lowerLogProb([Math.log(0.5), Math.log(0.2), Math.log(0.4)])).toBeCloseTo(Math.log(0.2), 12);
    expect(lowerLogProb([Math.log(0.5), Math.log(0.2), Math.log(0.4)], [0, 2])).toBeCloseTo(Math.log(0.4), 12);
  });

  it('help by the demonstrator: π = ℓ + θ·D', () => {
    const lower = lowerProbabilities([log(p1), log(p2)]);
    const pi = Array.from(mixWithHelper(lower, log([0.1, 0.1, 0.8]))).map(Math.exp);
    expect(pi[0]).toBeCloseTo(0.2 + 0.3 * 0.1, 6);
    expect(pi[1]).toBeCloseTo(0.3 + 0.3 * 0.1, 6);
    expect(pi[2]).toBeCloseTo(0.2 + 0.3 * 0.8, 6);
  });
});

describe('exact KL to a reference', () => {
  it('matches the closed form', () => {
    const kl = klToReference(log([0.5, 0.5]), log([0.25, 0.75]));
    expect(kl).toBeCloseTo(0.5 * Math.log(2) + 0.5 * Math.log(0.5 / 0.75), 6);
    expect(klToReference(log([0.3, 0.7]), log([0.3, 0.7]))).toBeCloseTo(0, 6);
    // Zero-probability actions of π add nothing (no NaN from 0·−∞).
    expect(klToReference(Float32Array.from([0, -Infinity]), log([0.5, 0.5]))).toBeCloseTo(Math.log(2), 6);
  });

  it('to the conservative reference: KL(π‖ℓ/(1−θ)) − log(1−θ)', () => {
    const ref = conservativeLogProbs([log([0.5, 0.3, 0.2]), log([0.2, 0.3, 0.5])]); // ℓ = .2 .3 .2, θ = .3
    const pi = [0.2, 0.5, 0.3];
    const kl = klToReference(log(pi), ref);
    const ellN = [0.2 / 0.7, 0.3 / 0.7, 0.2 / 0.7];
    const closed = pi.reduce((a, p, j) => a + p * Math.log(p / ellN[j]!), 0) - Math.log(0.7);
    expect(kl).toBeCloseTo(closed, 5);
    expect(kl).toBeGreaterThanOrEqual(-Math.log(0.7) - 1e-6);
  });
});

describe('references over real models', () => {
  const cfg = { vocabSize: 40, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32, contextLength: 16 };
  let models: TransformerLM[];
  beforeAll(async () => {
    await initBackend('wasm');
    models = [1, 2, 3].map(s => TransformerLM.create({ ...cfg, initStd: 0.5 }, s));
  });

  it('the conservative reference is the ensemble arithmetic of its members, in batch and in sessions', async () => {
    const ref = new ConservativeReference(models, [0, 2]);
    expect(ref.helpAction).toBe(40);
    expect(ref.outputSize).toBe(41);
    const contexts = [[1, 2, 3], [4, 5, 6, 7, 8], [9]];
    const got = await ref.nextTokenLogProbs(contexts);
    const m0 = models[0]!.nextTokenLogProbs(contexts), m2 = models[2]!.nextTokenLogProbs(contexts);
    contexts.forEach((_, i) => {
      const want = conservativeLogProbs([m0[i]!, m2[i]!]);
      for (let j = 0; j < 41; j++) expect(got[i]![j]).toBeCloseTo(want[j]!, 5);
      expect(sum(Array.from(got[i]!).map(Math.exp))).toBeCloseTo(1, 5);
      expect(Math.exp(got[i]![40]!)).toBeGreaterThan(0.01); // random models disagree
    });
    // The KV-cached session gives the same distributions after appends.
    const s = ref.startSession(contexts);
    s.append([10, null, 11]);
    s.extend(1, [12, 13]);
    const after = await ref.nextTokenLogProbs([[1, 2, 3, 10], [4, 5, 6, 7, 8, 12, 13], [9, 11]]);
    const fromSession = s.nextLogProbs();
    after.forEach((a, i) => { for (let j = 0; j < 41; j++) expect(fromSession[i]![j]).toBeCloseTo(a[j]!, 4); });
    s.dispose();
    // Per-token log ℓ of a continuation = min over members = the full distribution's entry.
    const seq = await ref.sequenceLogProbs([[1, 2, 3]], [[10, 20]]);
    const full0 = await ref.nextTokenLogProbs([[1, 2, 3]]);
    const full1 = await ref.nextTokenLogProbs([[1, 2, 3, 10]]);
    expect(seq[0]![0]).toBeCloseTo(full0[0]![10]!, 4);
    expect(seq[0]![1]).toBeCloseTo(full1[0]![20]!, 4);
  });

  it('a single-model reference has no HELP and θ = 0 as an ensemble of one', async () => {
    const single = new ModelReference(models[0]!);
    expect(single.helpAction).toBeNull();
    expect(single.outputSize).toBe(40);
    const one = new ConservativeReference([models[0]!]);
    const [lp] = await one.nextTokenLogProbs([[1, 2]]);
    const [base] = await single.nextTokenLogProbs([[1, 2]]);
    expect(lp![40]).toBeLessThan(-40);
    for (let j = 0; j < 40; j++) expect(lp![j]).toBeCloseTo(base![j]!, 5);
  });
});

describe('the normalised conservative reference (no HELP)', () => {
  it('is ℓ / (1 − θ) over the ordinary tokens', async () => {
    const { normalisedLowerLogProbs } = await import('../../agents/imitation/ensemble.ts');
    const lp = normalisedLowerLogProbs([log([0.5, 0.3, 0.2]), log([0.2, 0.3, 0.5])]);
    expect(Array.from(lp).map(x => +Math.exp(x).toFixed(6))).toEqual([+(0.2 / 0.7).toFixed(6), +(0.3 / 0.7).toFixed(6), +(0.2 / 0.7).toFixed(6)]);
    const models = [4, 5].map(s => TransformerLM.create({ vocabSize: 40, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32, contextLength: 16, initStd: 0.5 }, s));
    const ref = new ConservativeReference(models, undefined, undefined, { normalise: true });
    expect(ref.helpAction).toBeNull();
    expect(ref.outputSize).toBe(40);
    const [full] = await ref.nextTokenLogProbs([[1, 2, 3]]);
    expect(sum(Array.from(full!).map(Math.exp))).toBeCloseTo(1, 5);
    const seq = await ref.sequenceLogProbs([[1, 2, 3]], [[7, 9]]);
    const [next] = await ref.nextTokenLogProbs([[1, 2, 3, 7]]);
    expect(seq[0]![0]).toBeCloseTo(full![7]!, 4);
    expect(seq[0]![1]).toBeCloseTo(next![9]!, 4);
    models.forEach(m => m.dispose());
  });
});
