/**
 * KL control, shared by the RL agents: per-token KL estimators, the exact KL between two
 * next-token distributions, and the KL coefficient controllers (fixed, adaptive as in Ziegler et
 * al. 2019, and a proportional-integral controller of log β that holds its target).
 *
 * With a token a sampled from the policy π and the base (prior) policy p, and
 * log r = log p(a) − log π(a) (Schulman, "Approximating KL divergence", 2020):
 *   k1 = −log r                 unbiased, can be negative, high variance
 *   k2 = (log r)² / 2           biased, low variance (reported only)
 *   k3 = (r − 1) − log r        unbiased, never negative, low variance
 *   exact = Σ_a π(a) (log π(a) − log p(a))   the expectation of k1 and k3 over a ~ π
 * Summed over an episode's agent tokens, each estimates the sequence-level KL(π ‖ p): the student's
 * tokens are the environment's, the same under both policies, so they contribute nothing.
 */

export type KlEstimator = 'k1' | 'k3' | 'exact';
export const KL_ESTIMATORS: readonly KlEstimator[] = ['k1', 'k3', 'exact'];

/** k1 = log π(a) − log p(a). */
export function k1(logpPolicy: number, logpBase: number): number {
  return logpPolicy - logpBase;
}

/** k2 = (log π(a) − log p(a))² / 2. */
export function k2(logpPolicy: number, logpBase: number): number {
  const d = logpPolicy - logpBase;
  return 0.5 * d * d;
}

/** k3 = (r − 1) − log r with r = p(a) / π(a). */
export function k3(logpPolicy: number, logpBase: number): number {
  const logr = logpBase - logpPolicy;
  // expm1 keeps precision when r ≈ 1 (the usual case near the base policy).
  return Math.expm1(logr) - logr;
}

/**
 * Exact KL(π ‖ p) = Σ_a π(a) (log π(a) − log p(a)) from full log-probability vectors (float64
 * accumulation), over π's entries (p may have more, e.g. a reference's HELP action). Tokens with
 * π(a) = 0 contribute 0; tokens with p(a) = 0 and π(a) > 0 give +∞.
 */
export function exactKl(logpPolicy: ArrayLike<number>, logpBase: ArrayLike<number>): number {
  const V = logpPolicy.length;
  // The base may have more entries (a reference's HELP action, which the policy never takes).
  if (logpBase.length < V) throw new RangeError(`exactKl: the policy has ${V} entries, the base ${logpBase.length}`);
  let kl = 0;
  for (let j = 0; j < V; j++) {
    const lq = logpPolicy[j]!;
    if (lq === -Infinity) continue;
    kl += Math.exp(lq) * (lq - logpBase[j]!);
  }
  // Rounding can leave a tiny negative value for identical distributions.
  return Math.max(0, kl);
}

/** Entropy −Σ π log π of a log-probability vector. */
export function entropy(logp: ArrayLike<number>): number {
  let h = 0;
  for (let j = 0; j < logp.length; j++) {
    const l = logp[j]!;
    if (l !== -Infinity) h -= Math.exp(l) * l;
  }
  return Math.max(0, h);
}

/** The per-token KL estimate that goes into the reward. */
export function klEstimate(estimator: KlEstimator, logpPolicy: number, logpBase: number, exact: number): number {
  switch (estimator) {
    case 'k1': return k1(logpPolicy, logpBase);
    case 'k3': return k3(logpPolicy, logpBase);
    case 'exact': return exact;
  }
}

/** log-softmax of a row of logits into a new Float64Array. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  const V = logits.length;
  let m = -Infinity;
  for (let j = 0; j < V; j++) if (logits[j]! > m) m = logits[j]!;
  let s = 0;
  for (let j = 0; j < V; j++) s += Math.exp(logits[j]! - m);
  const lse = m + Math.log(s);
  const out = new Float64Array(V);
  for (let j = 0; j < V; j++) out[j] = logits[j]! - lse;
  return out;
}

// ------------------------------------------------------------------------------------------------
// KL coefficient controllers

export interface KlController {
  /** The current coefficient β. */
  readonly value: number;
  /**
   * Feed the KL measured on the last batch (mean per episode) and the number of episodes (or
   * samples) it came from.
   */
  update(currentKl: number, nSteps: number): void;
  toJSON(): KlControllerState;
}

export interface KlControllerState { kind: 'fixed' | 'adaptive' | 'pi'; value: number; target?: number; horizon?: number; integral?: number; error?: number }

/** β stays where it is. */
export class FixedKlController implements KlController {
  constructor(public value: number) {
    if (!(value >= 0)) throw new RangeError(`KL coefficient must be >= 0, got ${value}`);
  }
  update(): void { /* fixed */ }
  toJSON(): KlControllerState { return { kind: 'fixed', value: this.value }; }
}

/**
 * Ziegler et al. (2019), "Fine-tuning language models from human preferences":
 *   e = clip(KL / target − 1, −0.2, 0.2);   β ← β · (1 + e · n / horizon)
 * β rises while the measured KL is above the target and falls while it is below.
 */
export class AdaptiveKlController implements KlController {
  constructor(public value: number, readonly target: number, readonly horizon: number) {
    if (!(value > 0)) throw new RangeError(`adaptive KL needs an initial coefficient > 0, got ${value}`);
    if (!(target > 0)) throw new RangeError(`adaptive KL needs a target > 0, got ${target}`);
    if (!(horizon > 0)) throw new RangeError(`adaptive KL needs a horizon > 0, got ${horizon}`);
  }
  update(currentKl: number, nSteps: number): void {
    if (!Number.isFinite(currentKl)) return;
    const e = Math.max(-0.2, Math.min(0.2, currentKl / this.target - 1));
    this.value *= 1 + (e * nSteps) / this.horizon;
  }
  toJSON(): KlControllerState { return { kind: 'adaptive', value: this.value, target: this.target, horizon: this.horizon }; }
}

/**
 * A proportional-integral controller of log β. With the error e = clip(ln(KL / target), −0.2, 1)
 * of the batch,
 *   I ← I + e · n / horizon,       ln β = I + kp · e
 * with n the episodes of the batch. The integral term alone is Ziegler et al.'s rule in log space
 * (β(1 + e·n/h) ≈ β·exp(e·n/h)) and settles where the KL meets the target; the proportional term
 * answers a batch over the target at once, before the policy's next update spends more. The error
 * is clipped asymmetrically: a KL below the target lowers β as slowly as Ziegler et al.'s rule (at
 * the start the policy has not moved yet, which is no reason to stop penalising it: a symmetric
 * ±1 dropped β threefold in the first update and overshot to 2.7× the target), a KL above it raises
 * β up to five times as fast. The integral stops where β would leave [1e-4, 1e3] (no wind-up).
 */
export class PiKlController implements KlController {
  private integral: number;
  private error: number;
  constructor(beta: number, readonly target: number, readonly horizon: number, readonly kp: number, saved?: { integral?: number; error?: number }) {
    if (!(beta > 0)) throw new RangeError(`the PI KL controller needs an initial coefficient > 0, got ${beta}`);
    if (!(target > 0)) throw new RangeError(`the PI KL controller needs a target > 0, got ${target}`);
    if (!(horizon > 0)) throw new RangeError(`the PI KL controller needs a horizon > 0, got ${horizon}`);
    if (!(kp >= 0)) throw new RangeError(`the PI KL controller needs kp >= 0, got ${kp}`);
    this.error = saved?.error ?? 0;
    this.integral = saved?.integral ?? Math.log(beta) - this.kp * this.error;
  }
  get value(): number { return Math.exp(this.integral + this.kp * this.error); }
  update(currentKl: number, nSteps: number): void {
    if (!Number.isFinite(currentKl)) return;
    const e = Math.max(-0.2, Math.min(1, Math.log(Math.max(currentKl, 1e-12) / this.target)));
    this.error = e;
    this.integral = Math.max(Math.log(1e-4), Math.min(Math.log(1e3), this.integral + (e * nSteps) / this.horizon));
  }
  toJSON(): KlControllerState { return { kind: 'pi', value: this.value, target: this.target, horizon: this.horizon, integral: this.integral, error: this.error }; }
}

export interface KlControlConfig {
  /** Initial (or fixed) coefficient β. */
  beta: number;
  /** Target KL per episode for the adaptive controllers, or null for a fixed β. */
  target: number | null;
  /** Horizon of the adaptive controllers (in episodes). */
  horizon: number;
  /** 'ziegler' (Ziegler et al.'s proportional rule) or 'pi' (PiKlController); default 'ziegler'. */
  controller?: 'ziegler' | 'pi';
  /** Proportional gain of the PI controller. */
  kp?: number;
}

export function makeKlController(c: KlControlConfig, state?: KlControllerState): KlController {
  const beta = state?.value ?? c.beta;
  if (c.target === null) return new FixedKlController(beta);
  if (c.controller === 'pi') return new PiKlController(beta, c.target, c.horizon, c.kp ?? 1, state?.kind === 'pi' ? state : undefined);
  return new AdaptiveKlController(beta, c.target, c.horizon);
}
