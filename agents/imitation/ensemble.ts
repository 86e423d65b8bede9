/**
 * The arithmetic of the conservative ("don't do anything I mightn't do") imitator — Cohen, Hutter &
 * Nanda (2022), "Fully General Online Imitation Learning" — in the practical token-level form of
 * DESIGN.md:
 *
 *   K imitators ν_1 … ν_K (different seeds / bootstrap resamples of the demonstrator's transcripts);
 *   posterior weights     w_k ∝ exp(−s · NLL_k)   (NLL_k: held-out NLL per token, s: `posteriorScale`);
 *   plausible set         M = {k : w_k ≥ α · max_j w_j};
 *   lower probability     ℓ(a|s) = min_{k∈M} ν_k(a|s);
 *   help mass             θ(s) = 1 − Σ_a ℓ(a|s).
 *
 * The conservative agent samples an ordinary token a with probability ℓ(a|s) and asks the
 * demonstrator for help with probability θ(s). With one plausible model ℓ = ν and θ = 0; the more
 * the plausible models disagree about the next token, the more mass goes to asking for help.
 *
 * Everything here is pure and works on full next-token distributions given as log-probabilities
 * (Float32Array of length V, as `TransformerLM.nextTokenLogProbs` returns them). Sums are in
 * float64, and each model's distribution is renormalised in float64 first, so that a single model
 * gives θ = 0 (below `THETA_ROUNDING`, 1 − Σℓ is rounding) rather than float32 softmax noise.
 */

/** Probabilities below this are reported as this in log space (log θ of a single model, etc.). */
export const MIN_PROB = 1e-20;
export const LOG_MIN_PROB = Math.log(MIN_PROB);
/** A help mass below this is rounding in the float64 sum of ℓ (a single model), and counts as 0. */
export const THETA_ROUNDING = 1e-10;

/**
 * Posterior weights from held-out NLLs: w_k ∝ prior_k · exp(−scale · nll_k), normalised.
 * With `nll` the mean NLL per held-out token, `scale = 1` weighs models per token; `scale = n`
 * (the number of held-out tokens) gives the full Bayesian posterior given the held-out data, which
 * is usually so peaked that one model alone stays plausible.
 */
export function posteriorWeights(nll: readonly number[], scale = 1, prior?: readonly number[]): number[] {
  if (!nll.length) throw new RangeError('posteriorWeights: no models');
  if (!(scale >= 0)) throw new RangeError(`posteriorWeights: scale must be ≥ 0, got ${scale}`);
  if (prior && prior.length !== nll.length) throw new RangeError('posteriorWeights: prior and nll differ in length');
  const logw = nll.map((x, k) => {
    if (!Number.isFinite(x)) throw new RangeError(`posteriorWeights: nll[${k}] = ${x} is not finite`);
    const p = prior ? prior[k]! : 1;
    if (!(p >= 0)) throw new RangeError(`posteriorWeights: prior[${k}] = ${p} is negative`);
    return -scale * x + (p > 0 ? Math.log(p) : -Infinity);
  });
  const max = Math.max(...logw);
  if (max === -Infinity) throw new RangeError('posteriorWeights: every prior weight is 0');
  const w = logw.map(l => Math.exp(l - max));
  const z = w.reduce((a, b) => a + b, 0);
  return w.map(x => x / z);
}

/** The plausible set M = {k : w_k ≥ α · max w}, as sorted indices (never empty). α ∈ (0, 1]. */
export function plausibleSet(weights: readonly number[], alpha: number): number[] {
  if (!weights.length) throw new RangeError('plausibleSet: no weights');
  if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`plausibleSet: alpha must be in (0, 1], got ${alpha}`);
  const max = Math.max(...weights);
  // A relative tolerance so that α = 1 keeps exact ties despite rounding in the normalisation.
  const thr = alpha * max * (1 - 1e-12);
  const out: number[] = [];
  weights.forEach((w, k) => { if (w >= thr) out.push(k); });
  return out;
}

/** A model's distribution from log-probabilities, renormalised in float64. */
export function probsFromLogProbs(logProbs: ArrayLike<number>): Float64Array {
  const V = logProbs.length;
  let max = -Infinity;
  for (let j = 0; j < V; j++) if (logProbs[j]! > max) max = logProbs[j]!;
  const p = new Float64Array(V);
  let z = 0;
  for (let j = 0; j < V; j++) { const e = Math.exp(logProbs[j]! - max); p[j] = e; z += e; }
  for (let j = 0; j < V; j++) p[j]! /= z;
  return p;
}

export interface LowerProbabilities {
  /** ℓ(a|s) for every ordinary token a (float64). */
  ell: Float64Array;
  /** θ(s) = 1 − Σ ℓ, clamped to [0, 1]. */
  theta: number;
}

/**
 * ℓ = elementwise min over the given models' distributions and θ = 1 − Σ ℓ.
 * `logProbs[k]` is model k's next-token log-probabilities; `members` (default all) the plausible set.
 */
export function lowerProbabilities(logProbs: readonly ArrayLike<number>[], members?: readonly number[]): LowerProbabilities {
  const which = members ?? logProbs.map((_, k) => k);
  if (!which.length) throw new RangeError('lowerProbabilities: empty plausible set');
  const V = logProbs[which[0]!]!.length;
  const ell = new Float64Array(V).fill(Infinity);
  for (const k of which) {
    const lp = logProbs[k];
    if (!lp) throw new RangeError(`lowerProbabilities: no distribution for model ${k}`);
    if (lp.length !== V) throw new RangeError(`lowerProbabilities: model ${k} has ${lp.length} entries, expected ${V}`);
    const p = probsFromLogProbs(lp);
    for (let j = 0; j < V; j++) if (p[j]! < ell[j]!) ell[j] = p[j]!;
  }
  let s = 0;
  for (let j = 0; j < V; j++) s += ell[j]!;
  const t = 1 - s;
  const theta = t < THETA_ROUNDING ? 0 : Math.min(1, t);
  return { ell, theta };
}

/**
 * The conservative reference as one distribution over V + 1 actions, in log space: entries 0…V−1
 * are log ℓ(a|s), entry V (the HELP action) is log θ(s). Probabilities below `MIN_PROB` are
 * reported as `LOG_MIN_PROB` (θ = 0 for a single model becomes log 1e-20 ≈ −46, not −∞), so that
 * the array is finite and sums to 1 up to that floor.
 */
export function conservativeLogProbs(logProbs: readonly ArrayLike<number>[], members?: readonly number[]): Float32Array {
  const { ell, theta } = lowerProbabilities(logProbs, members);
  const V = ell.length;
  const out = new Float32Array(V + 1);
  for (let j = 0; j < V; j++) out[j] = ell[j]! > MIN_PROB ? Math.log(ell[j]!) : LOG_MIN_PROB;
  out[V] = theta > MIN_PROB ? Math.log(theta) : LOG_MIN_PROB;
  return out;
}

/** log(ℓ(a|s) / (1 − θ(s))) over the V ordinary tokens: the lower probabilities renormalised. */
export function normalisedLowerLogProbs(logProbs: readonly ArrayLike<number>[], members?: readonly number[]): Float32Array {
  const { ell } = lowerProbabilities(logProbs, members);
  let s = 0;
  for (let j = 0; j < ell.length; j++) s += ell[j]!;
  const out = new Float32Array(ell.length);
  for (let j = 0; j < ell.length; j++) out[j] = ell[j]! > 0 ? Math.log(ell[j]! / s) : LOG_MIN_PROB;
  return out;
}

/**
 * log ℓ(a|s) of one token from each model's log-probability of that token: min over the plausible
 * set (the token's own probability needs no full distribution; θ does).
 */
export function lowerLogProb(tokenLogProbs: readonly number[], members?: readonly number[]): number {
  const which = members ?? tokenLogProbs.map((_, k) => k);
  if (!which.length) throw new RangeError('lowerLogProb: empty plausible set');
  let m = Infinity;
  for (const k of which) m = Math.min(m, tokenLogProbs[k]!);
  return m;
}

/**
 * The effective next-token distribution of the conservative agent when a helper with distribution
 * `helper` writes the token on a help request: π(a) = ℓ(a) + θ · helper(a). (With help for the rest
 * of the turn, this is the distribution of the first token; the later ones are the helper's.)
 * Returns log-probabilities (float32, length V).
 */
export function mixWithHelper(lower: LowerProbabilities, helperLogProbs: ArrayLike<number>): Float32Array {
  const V = lower.ell.length;
  if (helperLogProbs.length !== V) throw new RangeError(`mixWithHelper: helper has ${helperLogProbs.length} entries, expected ${V}`);
  const h = probsFromLogProbs(helperLogProbs);
  const out = new Float32Array(V);
  let z = 0;
  const p = new Float64Array(V);
  for (let j = 0; j < V; j++) { p[j] = lower.ell[j]! + lower.theta * h[j]!; z += p[j]!; }
  for (let j = 0; j < V; j++) out[j] = Math.log(Math.max(p[j]! / z, Number.MIN_VALUE));
  return out;
}

/** Settings of a conservative ensemble (the `imitation` section of an experiment config). */
export interface EnsembleSettings {
  /** Plausible-set threshold α ∈ (0, 1]: keep models with w_k ≥ α · max w. */
  alpha: number;
  /** Multiplier s on the per-token held-out NLL in w_k ∝ exp(−s · NLL_k). */
  posteriorScale: number;
}

/** Weights and plausible set of an ensemble from its members' held-out NLLs. */
export function ensemblePosterior(nll: readonly number[], settings: EnsembleSettings): { weights: number[]; members: number[] } {
  const weights = posteriorWeights(nll, settings.posteriorScale);
  return { weights, members: plausibleSet(weights, settings.alpha) };
}
