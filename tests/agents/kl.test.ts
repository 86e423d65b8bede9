import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../models/backend.ts';
import { Rng } from '../../core/rng.ts';
import { AdaptiveKlController, FixedKlController, PiKlController, type KlController, entropy, exactKl, k1, k2, k3, klEstimate, logSoftmax, makeKlController } from '../../agents/rl/kl.ts';
import { solveMixture } from '../../agents/rl/kl-mixture.ts';
import { budgetTarget, mixtureOutputs } from '../../agents/rl/budget-policy.ts';
import { sampleLogp } from '../../agents/rl/rollout.ts';
import { nativeNN } from '../../models/native.ts';

beforeAll(async () => { await initBackend('cpu'); });

function randomLogits(rng: Rng, V: number, scale: number): Float64Array {
  return logSoftmax(Array.from({ length: V }, () => rng.normal() * scale));
}

describe('KL estimators', () => {
  it('exact KL matches closed forms', () => {
    const p = [0.5, 0.5], q = [0.9, 0.1];
    const expected = 0.9 * Math.log(0.9 / 0.5) + 0.1 * Math.log(0.1 / 0.5);
    expect(exactKl(q.map(Math.log), p.map(Math.log))).toBeCloseTo(expected, 12);
    expect(exactKl(p.map(Math.log), p.map(Math.log))).toBe(0);
    // A token with zero policy mass contributes nothing; zero base mass under the policy is infinite.
    expect(exactKl([0, -Infinity], [Math.log(0.5), Math.log(0.5)])).toBeCloseTo(Math.log(2), 12);
    expect(exactKl([Math.log(0.5), Math.log(0.5)], [0, -Infinity])).toBe(Infinity);
    expect(entropy(p.map(Math.log))).toBeCloseTo(Math.log(2), 12);
  });

  it('k1 and k3 average to the exact KL over samples from the policy; k3 is never negative', () => {
    const rng = new Rng(7);
    for (const scale of [0.3, 1, 2]) {
      const pi = randomLogits(rng, 50, scale), base = randomLogits(rng, 50, scale);
      const exact = exactKl(pi, base);
      let s1 = 0, s3 = 0, s2 = 0;
      const n = 20000;
      for (let i = 0; i < n; i++) {
        const a = sampleLogp(pi, rng);
        s1 += k1(pi[a]!, base[a]!);
        const v3 = k3(pi[a]!, base[a]!);
        expect(v3).toBeGreaterThanOrEqual(0);
        s3 += v3;
        s2 += k2(pi[a]!, base[a]!);
      }
      // Monte-Carlo tolerance: a few standard errors (the estimators' spread grows with the KL).
      const tol = 0.04 * Math.max(1, exact);
      expect(Math.abs(s1 / n - exact)).toBeLessThan(tol);
      expect(Math.abs(s3 / n - exact)).toBeLessThan(tol);
      expect(s2 / n).toBeGreaterThan(0);
      expect(klEstimate('exact', 0, 0, exact)).toBe(exact);
    }
  });

  it('k3 is exact to second order near the base policy', () => {
    expect(k3(-1, -1)).toBe(0);
    expect(k3(-1 + 1e-4, -1)).toBeCloseTo(0.5e-8, 12);
  });
});

describe('KL controllers', () => {
  it('adaptive β rises above the target and falls below it, by at most 20% per horizon', () => {
    const c = new AdaptiveKlController(0.1, 6, 10);
    c.update(12, 10);
    expect(c.value).toBeCloseTo(0.12, 12);
    c.update(6, 10);
    expect(c.value).toBeCloseTo(0.12, 12);
    c.update(0, 5);
    expect(c.value).toBeCloseTo(0.12 * 0.9, 12);
    const before = c.value;
    c.update(Number.NaN, 10);
    expect(c.value).toBe(before);
  });

  it('a fixed β never moves; the factory picks by target and restores state', () => {
    const f = new FixedKlController(0.05);
    f.update();
    expect(f.value).toBe(0.05);
    expect(makeKlController({ beta: 0.2, target: null, horizon: 1 })).toBeInstanceOf(FixedKlController);
    const a = makeKlController({ beta: 0.2, target: 3, horizon: 100 }, { kind: 'adaptive', value: 0.7 });
    expect(a).toBeInstanceOf(AdaptiveKlController);
    expect(a.value).toBe(0.7);
    expect(() => new AdaptiveKlController(0, 1, 1)).toThrow();
  });
});

describe('KL-budgeted mixture', () => {
  it('meets the per-token target from below, or takes the proposal when it is within the target', () => {
    const rng = new Rng(3);
    for (let trial = 0; trial < 50; trial++) {
      const V = 5 + rng.int(200);
      const a = randomLogits(rng, V, 3), b = randomLogits(rng, V, 1);
      const full = exactKl(a, b);
      const k = full * rng.uniform(0, 1.5);
      const s = solveMixture(a, b, k);
      expect(s.kl).toBeLessThanOrEqual(k + 1e-12);
      expect(exactKl(s.logx, b)).toBeLessThanOrEqual(k + 1e-9);
      if (k >= full) { expect(s.alpha).toBe(1); expect(s.kl).toBeCloseTo(full, 10); }
      else expect(s.kl).toBeGreaterThanOrEqual(k * (1 - 1e-5));
      let total = 0;
      for (const l of s.logx) total += Math.exp(l);
      expect(total).toBeCloseTo(1, 10);
    }
    const zero = solveMixture(randomLogits(rng, 10, 2), randomLogits(rng, 10, 2), 0);
    expect(zero.alpha).toBe(0);
    expect(zero.kl).toBe(0);
  });

  it('an episode never spends more than its budget', () => {
    const rng = new Rng(11);
    for (let ep = 0; ep < 20; ep++) {
      const budget = rng.uniform(0.5, 20);
      let left = budget, spent = 0;
      const T = 100 + rng.int(150);
      for (let t = 0; t < T; t++) {
        // Aggressive proposals and targets (τ up to +20: try to spend everything at once).
        const a = randomLogits(rng, 64, 6), b = randomLogits(rng, 64, 1);
        const k = budgetTarget(rng.uniform(-5, 20), T - t, left);
        const s = solveMixture(a, b, k);
        const x = sampleLogp(s.logx, rng);
        void x;
        const kl = exactKl(s.logx, b);
        spent += kl;
        left = Math.max(0, left - kl);
      }
      expect(spent).toBeLessThanOrEqual(budget + 1e-9);
    }
  });

  it('gradients through the solve match finite differences', () => {
    const rng = new Rng(5);
    const V = 12;
    const rows = [
      { logb: Array.from(randomLogits(rng, V, 1)), budgetLeft: 0.3, horizon: 4 },   // binding target: α < 1
      { logb: Array.from(randomLogits(rng, V, 1)), budgetLeft: 50, horizon: 2 },    // loose target: α = 1
    ];
    const z0 = Array.from({ length: 2 * (V + 1) }, () => rng.normal());
    const alphas = rows.map((r, i) => {
      const u = r.logb.map((l, j) => l + z0[i * (V + 1) + j]!);
      return solveMixture(logSoftmax(u), r.logb, budgetTarget(z0[i * (V + 1) + V]!, r.horizon, r.budgetLeft)).alpha;
    });
    expect(alphas[0]).toBeGreaterThan(0);
    expect(alphas[0]).toBeLessThan(1);
    expect(alphas[1]).toBe(1);
    const actions = new Int32Array([3, 7]);
    const check = (w: number[], only?: (i: number) => boolean) => {
      const loss = (z: number[]) => tf.tidy(() => {
        const out = mixtureOutputs(tf.tensor2d(z, [2, V + 1]), rows, actions);
        return tf.sum(tf.mul(out, tf.tensor2d([w, w], [2, 3]))).dataSync()[0]!;
      });
      const grads = tf.tidy(() => {
        const zt = tf.variable(tf.tensor2d(z0, [2, V + 1]), true, `fdcheck${w.join('_')}`);
        const g = tf.variableGrads(() => tf.sum(tf.mul(mixtureOutputs(zt as tf.Tensor2D, rows, actions), tf.tensor2d([w, w], [2, 3]))) as tf.Scalar, [zt]);
        const out = Array.from(g.grads[zt.name]!.dataSync());
        zt.dispose();
        return out;
      });
      // Central differences in float32: a loose tolerance.
      const eps = 1e-2;
      let worst = 0;
      for (let i = 0; i < z0.length; i++) {
        if (only && !only(i)) { expect(grads[i]).toBe(0); continue; }
        const zp = z0.slice(); zp[i]! += eps;
        const zm = z0.slice(); zm[i]! -= eps;
        const num = (loss(zp) - loss(zm)) / (2 * eps);
        worst = Math.max(worst, Math.abs(num - grads[i]!) / Math.max(1, Math.abs(num)));
      }
      return worst;
    };
    // Log-probability of the action and entropy of the mixture: the exact gradient.
    expect(check([1.3, -0.7, 0])).toBeLessThan(2e-2);
    // The squared gap (α = 1 row only) moves the target logit τ, never the proposal.
    expect(check([0, 0, 0.4], i => i === 2 * (V + 1) - 1)).toBeLessThan(2e-2);
  });
});

/**
 * A plant for the adaptive KL controllers (issue 12, item 5): the policy's KL per episode moves a
 * third of the way each update toward g/β (it spends more KL when β is lower; g doubles half-way, as
 * when the policy finds a new way to earn reward), and each batch measures it with log-normal
 * noise (s.d. 0.25 in log). 16 episodes per update, horizon 50 episodes, target 10 nats, β₀ = 0.1.
 * Returns the policy's true KL per update.
 */
function simulateKl(controller: KlController, updates: number, seed: number): number[] {
  const rng = new Rng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng.random())) * Math.cos(2 * Math.PI * rng.random());
  const trace: number[] = [];
  let kl = 0;
  for (let t = 0; t < updates; t++) {
    const g = t < updates / 2 ? 2.4 : 4.8;
    kl += (g / controller.value - kl) / 3;
    trace.push(kl);
    controller.update(kl * Math.exp(0.25 * normal()), 16);
  }
  return trace;
}

const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** |ln(mean KL / target)| over updates [from, to). */
const offTarget = (trace: number[], from: number, to: number) => Math.abs(Math.log(meanOf(trace.slice(from, to)) / 10));

describe('the PI KL controller', () => {
  it('holds its target where Ziegler et al.\'s rule lags: less overshoot, and it follows a policy that starts spending more', () => {
    const z = { peak: [] as number[], after: [] as number[], settled: [] as number[] }, p = { peak: [] as number[], after: [] as number[], settled: [] as number[] };
    for (let seed = 1; seed <= 8; seed++) {
      for (const [acc, c] of [[z, new AdaptiveKlController(0.1, 10, 50)], [p, new PiKlController(0.1, 10, 50, 1)]] as const) {
        const tr = simulateKl(c, 80, seed);
        acc.peak.push(Math.max(...tr));
        acc.after.push(offTarget(tr, 40, 55));
        acc.settled.push(offTarget(tr, 65, 80));
      }
    }
    console.log(`KL controllers on the simulated plant (8 seeds; target 10 nats): peak KL ziegler ${meanOf(z.peak).toFixed(1)}, pi ${meanOf(p.peak).toFixed(1)}; |ln(mean KL/target)| in the 15 updates after the policy doubles its spending ziegler ${meanOf(z.after).toFixed(3)}, pi ${meanOf(p.after).toFixed(3)}; over the last 15 updates ziegler ${meanOf(z.settled).toFixed(3)}, pi ${meanOf(p.settled).toFixed(3)}`);
    expect(meanOf(p.peak)).toBeLessThan(meanOf(z.peak));
    expect(meanOf(p.after)).toBeLessThan(0.5 * meanOf(z.after));
    expect(meanOf(p.settled)).toBeLessThan(0.1);
  });

  it('moves ln β by kp·e now and e·n/horizon for good, clips e to [−0.2, 1], ignores a non-finite KL and restores its state', () => {
    const c = new PiKlController(0.1, 10, 50, 1);
    c.update(20, 16);
    const e = Math.log(2);
    expect(Math.log(c.value)).toBeCloseTo(Math.log(0.1) + e * 16 / 50 + e, 12);
    c.update(10, 16);
    expect(Math.log(c.value)).toBeCloseTo(Math.log(0.1) + e * 16 / 50, 12);
    c.update(1e6, 50);
    expect(Math.log(c.value)).toBeCloseTo(Math.log(0.1) + e * 16 / 50 + 1 + 1, 12);
    // Below the target (here: a policy that has not moved), β falls no faster than Ziegler et al.'s rule.
    const high = Math.log(c.value);
    c.update(0, 50);
    expect(Math.log(c.value)).toBeCloseTo(high - 1 - 1 * 0.2 - 0.2, 12);
    const v = c.value;
    c.update(Number.NaN, 16);
    expect(c.value).toBe(v);
    const restored = makeKlController({ beta: 0.5, target: 10, horizon: 50, controller: 'pi', kp: 1 }, c.toJSON());
    expect(restored).toBeInstanceOf(PiKlController);
    expect(restored.value).toBeCloseTo(v, 12);
    restored.update(20, 16);
    c.update(20, 16);
    expect(restored.value).toBeCloseTo(c.value, 12);
  });
});

describe('the mixture solve, natively', () => {
  it('agrees with the JS solve to float64 rounding: the weight, the KLs and log x (targets below, at and above KL(a‖b), with guesses)', () => {
    // The native path is there to compare (npm ci builds the addon).
    expect(nativeNN('mixture')?.solveMixture).toBeTypeOf('function');
    const rng = new Rng(21);
    let compared = 0;
    for (let t = 0; t < 40; t++) {
      const V = [7, 300, 2540][t % 3]!;
      const loga = randomLogits(rng, V, 1 + (t % 5)), logb = Float32Array.from(randomLogits(rng, V, 2));
      const full = solveMixture(loga, Float64Array.from(logb), 1e9).proposalKl;
      const k = [0, 0.3 * full, full, 2 * full, 0.01][t % 5]!;
      const opts = t % 2 ? { guess: 0.1 + 0.8 * rng.random() } : {};
      const run = (off: string) => {
        process.env.COLLOQUY_NATIVE_OFF = off;
        try { return solveMixture(loga, logb, k, opts); } finally { delete process.env.COLLOQUY_NATIVE_OFF; }
      };
      const native = run(''), js = run('mixture');
      expect(native.alpha, `case ${t}`).toBeCloseTo(js.alpha, 9);
      expect(native.kl, `case ${t}`).toBeCloseTo(js.kl, 9);
      expect(native.proposalKl, `case ${t}`).toBeCloseTo(js.proposalKl, 9);
      expect(native.kl).toBeLessThanOrEqual(k * (1 + 1e-9) + 1e-12);
      let d = 0;
      for (let j = 0; j < V; j++) if (Number.isFinite(js.logx[j]!)) d = Math.max(d, Math.abs(native.logx[j]! - js.logx[j]!));
      expect(d, `case ${t}`).toBeLessThan(1e-9);
      compared++;
    }
    expect(compared).toBe(40);
  });
});
