/**
 * The KL-budgeted mixture policy of Cohen, Hutter, Bengio & Russell (2024), "RL, but don't do
 * anything I wouldn't do" (code: mkc1000/kl_reg_paper, `KLFixedMixture`).
 *
 * Each token, the agent proposes a distribution a (its learned proposal) and a per-token KL target
 * k; the policy is the mixture with the base policy b
 *     x = α·a + (1 − α)·b,
 * with α ∈ [0, 1] solved so that KL(x ‖ b) = k, or α = 1 when KL(a ‖ b) ≤ k already. KL(x ‖ b) is
 * convex in α and 0 at α = 0, so the root is bracketed and found by a safeguarded bisection: Newton
 * steps from above (they stay above the root of a convex increasing function) and chord steps from
 * below (they stay below it), falling back to halving. The solver returns the lower end of the
 * bracket, so the realised KL never exceeds k; with k a fraction of the budget left, the KL summed
 * over an episode never exceeds the episode's budget.
 *
 * The gradient goes through the solve by implicit differentiation of F(α, a, k) = KL(x‖b) − k = 0:
 *     dα/dk = 1 / F_α,   dα/da_j = −F_{a_j} / F_α,
 *     F_α = Σ_j (a_j − b_j)(log x_j − log b_j),   F_{a_j} = α (log x_j − log b_j + 1).
 * When α = 1 the mixture is the proposal (x = a) and the squared gap (KL(a‖b) − k)² is added to the
 * loss, as in the paper's code, so that k does not drift far above what the proposal uses (its
 * gradient goes to k only).
 */
import { nativeNN } from '../../models/native.ts';

export interface MixtureSolution {
  /** Mixture weight of the proposal. */
  alpha: number;
  /** The per-token target. */
  k: number;
  /** Realised KL(x ‖ b) (≤ k up to rounding). */
  kl: number;
  /** KL(a ‖ b) of the proposal alone. */
  proposalKl: number;
  /** log x, the mixture's log-probabilities. */
  logx: Float64Array;
}

/** KL(x‖b) and its derivative in α for x = α·a + (1−α)·b; fills `logx`. */
function klAt(alpha: number, a: Float64Array, b: Float64Array, logb: ArrayLike<number>, logx: Float64Array): { kl: number; dkl: number } {
  let kl = 0, dkl = 0;
  const V = a.length;
  for (let j = 0; j < V; j++) {
    const x = alpha * a[j]! + (1 - alpha) * b[j]!;
    if (x <= 0) { logx[j] = -Infinity; continue; }
    const lx = Math.log(x);
    logx[j] = lx;
    const d = lx - logb[j]!;
    kl += x * d;
    dkl += (a[j]! - b[j]!) * d;
  }
  return { kl: Math.max(0, kl), dkl };
}

/**
 * Solve the mixture weight for one token. `loga` and `logb` are normalised log-probabilities;
 * `k` ≥ 0 is the target. Precision: stops when the realised KL is within `rtol`·k below k.
 */
export function solveMixture(loga: ArrayLike<number>, logb: ArrayLike<number>, k: number, opts: { rtol?: number; maxIter?: number; guess?: number } = {}): MixtureSolution {
  const V = loga.length;
  if (logb.length !== V) throw new RangeError(`solveMixture: proposal has ${V} entries, base ${logb.length}`);
  if (!(k >= 0)) throw new RangeError(`solveMixture: target must be >= 0, got ${k}`);
  const rtol = opts.rtol ?? 1e-6, maxIter = opts.maxIter ?? 60;
  // Natively (native/mixture.cc): the same iteration; its exp and log are the C library's, so the
  // figures agree with this path's to float64 rounding.
  const nn = nativeNN('mixture');
  if (nn?.solveMixture && loga instanceof Float64Array && logb instanceof Float32Array) {
    const logx = new Float64Array(V), out = new Float64Array(3);
    const g = opts.guess;
    nn.solveMixture(loga, logb, k, rtol, maxIter, g !== undefined && g > 0 && g < 1 ? g : -1, logx, out);
    return { alpha: out[0]!, k, kl: out[1]!, proposalKl: out[2]!, logx };
  }
  const a = new Float64Array(V), b = new Float64Array(V);
  for (let j = 0; j < V; j++) { a[j] = Math.exp(loga[j]!); b[j] = Math.exp(logb[j]!); }
  // Two buffers: `best` holds log x at the lower end of the bracket, `scratch` the last candidate.
  let best = new Float64Array(V), scratch = new Float64Array(V);
  const full = klAt(1, a, b, logb, best);
  if (full.kl <= k) return { alpha: 1, k, kl: full.kl, proposalKl: full.kl, logx: best };
  // Bracket: KL(lo) ≤ k < KL(hi). log x at lo = 0 is log b.
  for (let j = 0; j < V; j++) best[j] = logb[j]!;
  let lo = 0, klLo = 0, hi = 1, klHi = full.kl, dHi = full.dkl;
  const tryAt = (cand: number) => {
    const r = klAt(cand, a, b, logb, scratch);
    if (r.kl <= k) { lo = cand; klLo = r.kl; const t = best; best = scratch; scratch = t; } else { hi = cand; klHi = r.kl; dHi = r.dkl; }
  };
  // A guess (e.g. the weight solved when the token was sampled) narrows the bracket at once.
  if (opts.guess !== undefined && opts.guess > 0 && opts.guess < 1 && k > 0) tryAt(opts.guess);
  for (let it = 0; it < maxIter && k > 0; it++) {
    if (k - klLo <= rtol * k || hi - lo < 1e-15) break;
    const width = hi - lo;
    // Newton from above (stays ≥ the root), chord from below (stays ≤ the root).
    const newton = dHi > 0 ? hi - (klHi - k) / dHi : lo;
    const chord = lo + (k - klLo) * (hi - lo) / (klHi - klLo);
    if (chord > lo && chord < hi) tryAt(chord);
    if (newton > lo && newton < hi && k - klLo > rtol * k) tryAt(newton);
    if (hi - lo > 0.5 * width) tryAt(0.5 * (lo + hi));
  }
  return { alpha: lo, k, kl: klLo, proposalKl: full.kl, logx: best };
}

/**
 * Backward pass of one solved token. `gradX[j]` = ∂L/∂x_j for the loss terms that read the mixture
 * (e.g. −A·ratio/x at the taken action, the entropy's −(log x_j + 1)); `gradGap` = ∂L/∂gap for the
 * squared-gap term gap = (KL(a‖b) − k)² (only active when α = 1; it moves k, not a). Returns ∂L/∂(log a) (with log a
 * normalised, so chain it through the log-softmax) and ∂L/∂k.
 */
export function mixtureBackward(sol: MixtureSolution, loga: ArrayLike<number>, logb: ArrayLike<number>, gradX: ArrayLike<number>, gradGap: number): { gradLoga: Float64Array; gradK: number } {
  const V = loga.length;
  const { alpha, logx } = sol;
  const gradLoga = new Float64Array(V);
  if (alpha >= 1) {
    // x = a: the gradient passes straight through. The gap term moves only k (down toward what
    // the proposal uses), as in the paper's code: it must not push the proposal to spend.
    for (let j = 0; j < V; j++) gradLoga[j] = Math.exp(loga[j]!) * gradX[j]!;
    return { gradLoga, gradK: -2 * (sol.proposalKl - sol.k) * gradGap };
  }
  let S = 0, Fa = 0;
  const a = new Float64Array(V);
  for (let j = 0; j < V; j++) {
    const aj = Math.exp(loga[j]!), bj = Math.exp(logb[j]!);
    a[j] = aj;
    S += gradX[j]! * (aj - bj);
    Fa += (aj - bj) * (logx[j]! - logb[j]!);
  }
  // α = 0 (nothing to spend) or a degenerate bracket: x = b does not depend on the proposal.
  if (!(alpha > 0) || !(Fa > 1e-12)) return { gradLoga, gradK: 0 };
  const c = S / Fa;
  for (let j = 0; j < V; j++) {
    const dLda = alpha * gradX[j]! - c * alpha * (logx[j]! - logb[j]! + 1);
    gradLoga[j] = a[j]! * dLda;
  }
  return { gradLoga, gradK: c };
}
