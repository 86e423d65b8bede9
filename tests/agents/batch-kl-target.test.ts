/**
 * batch-kl as Jaques et al. (issue 12, item 7): the pessimistic target takes, per dropout sample,
 * the scalar target r + γ·log Σ exp Ψ and then the minimum over samples (not the minimum per action
 * before the log-sum-exp); the logged rewards are normalised by the run's own statistics, frozen;
 * and the KL-control term can be Way Off-Policy's log p − log π beside Ψ-learning's log p.
 */
import { describe, expect, it } from 'vitest';
import { applyRewardNorm, encodeDialog, pessimisticSoftValue, rewardNorm, tdTarget, type LoggedDialog } from '../../agents/batch-kl.ts';
import { BpeTokenizer } from '../../models/tokenizer.ts';
import { Rng } from '../../core/rng.ts';

function lse(z: ArrayLike<number>, o = 0, V = z.length): number {
  let m = -Infinity;
  for (let j = 0; j < V; j++) m = Math.max(m, z[o + j]!);
  let s = 0;
  for (let j = 0; j < V; j++) s += Math.exp(z[o + j]! - m);
  return m + Math.log(s);
}

describe('batch-kl target', () => {
  it('takes the minimum over samples of each sample\'s soft value', () => {
    // Two samples that disagree on which action is good: each values the state at ≈ 10.
    const a = Float32Array.from([0, 10]), b = Float32Array.from([10, 0]);
    const v = pessimisticSoftValue([a, b], 1, 2);
    expect(v[0]).toBeCloseTo(lse([0, 10]), 6);
    // The minimum per action first would value it at log 2.
    expect(v[0]).toBeGreaterThan(9);
  });

  it('taxes a token by about a hundredth of a nat, not a third, on the toy check (V = 4000, M = 5, logit noise σ = 0.3)', () => {
    const V = 4000, M = 5, sigma = 0.3, trials = 20, rng = new Rng(3);
    const normal = () => Math.sqrt(-2 * Math.log(1 - rng.random())) * Math.cos(2 * Math.PI * rng.random());
    let taxNew = 0, taxOld = 0;
    for (let t = 0; t < trials; t++) {
      const z0 = Float32Array.from({ length: V }, () => normal());
      const samples = Array.from({ length: M }, () => Float32Array.from(z0, x => x + sigma * normal()));
      const minPerAction = Float32Array.from(z0, (_, j) => Math.min(...samples.map(s => s[j]!)));
      // Against the samples' mean soft value (the target without pessimism).
      const mean = samples.reduce((acc, z) => acc + lse(z), 0) / M;
      taxNew += mean - pessimisticSoftValue(samples, 1, V)[0]!;
      taxOld += mean - lse(minPerAction);
    }
    taxNew /= trials; taxOld /= trials;
    console.log(`batch-kl toy check: the target is lowered by ${taxNew.toFixed(3)} nats per token (min over samples of the scalar target) against ${taxOld.toFixed(3)} (min per action, then log-sum-exp)`);
    expect(taxNew).toBeGreaterThan(0);
    expect(taxNew).toBeLessThan(0.1);
    expect(taxOld).toBeGreaterThan(0.25);
  });

  it('adds the KL control: log p (Ψ-learning) or log p − log π (Way Off-Policy), in units of c', () => {
    const x = { reward: 0.6, klCoef: 0.5, logPrior: -2, logPolicy: -0.5, discount: 0.9, nextValue: 1.5 };
    expect(tdTarget(x, 'prior')).toBeCloseTo(1.2 - 2 + 0.9 * 1.5, 12);
    expect(tdTarget(x, 'log-ratio')).toBeCloseTo(1.2 - 2 + 0.5 + 0.9 * 1.5, 12);
  });
});

describe('batch-kl rewards', () => {
  const tok = BpeTokenizer.train(['A chat. How are you? Fine. Good. Bye.'], { vocabSize: 280 });
  const dialog = (r1: number, r2: number): LoggedDialog => ({
    id: 'd', prompt: 'A chat.\n\nTeacher:', turns: [
      { role: 'teacher', text: ' How are you?' }, { role: 'student', text: 'Fine' }, { role: 'teacher', text: ' Good.' }, { role: 'student', text: 'Bye' },
    ], rewards: new Map([[1, r1], [3, r2]]), terminated: true, endedByTeacher: false,
  });
  const cfg = { gamma: 0.9, rewardOffset: 0, rewardScale: 1, rewardOn: 'every-token' as const, prompt: null };

  it('z-scores (or centres) the utterance rewards by the run\'s statistics, one value per utterance', () => {
    const ds = [dialog(0.6, 0.5), dialog(0.55, 0.45)];
    const z = rewardNorm(ds, 'zscore');
    expect(z.count).toBe(4);
    expect(z.mean).toBeCloseTo(0.525, 12);
    const e = encodeDialog(ds[0]!, tok, cfg, z);
    // Every token of the first utterance carries its z-score, and the un-centred 0.6 is gone.
    const first = e.transitions[0]!.reward;
    expect(first).toBeCloseTo((0.6 - 0.525) / z.std, 9);
    expect(applyRewardNorm(0.525, z)).toBeCloseTo(0, 12);
    expect(applyRewardNorm(0.6, rewardNorm(ds, 'center'))).toBeCloseTo(0.075, 12);
    expect(applyRewardNorm(0.6, rewardNorm(ds, 'none'))).toBe(0.6);
  });
});
