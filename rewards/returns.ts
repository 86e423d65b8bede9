/**
 * Returns and credit assignment for dialog RL, as pure functions on arrays (shared by agents and
 * evaluation):
 * - `discountedReturns`: G_t = r_t + γ G_{t+1} over any step sequence (e.g. one reward per turn:
 *   γ per turn), with an optional bootstrap value after the last step.
 * - `spreadReward` / `spreadTurnRewards`: put an utterance-level reward on its tokens, all on the
 *   last token or spread uniformly.
 * - `gae`: generalised advantage estimation over a token sequence with turn boundaries: the
 *   discount γ is applied only where a turn ends (a turn is one step of the dialog), while λ
 *   decays per token. Without `turnEnds`, every token is its own turn (standard per-token GAE).
 * - `tokenReturns`: discounted token returns with γ at turn boundaries (= `gae` with V = 0, λ = 1).
 *
 * Episode ends: `dones[t]` (true/1) means the episode terminated after token t, so nothing flows
 * back across it. A truncated episode is bootstrapped through `lastValue` (pass V(s_T)); pass 0
 * when it terminated.
 */

export type Flags = ArrayLike<boolean | number>;

function checkLen(name: string, a: ArrayLike<unknown> | undefined, n: number): void {
  if (a !== undefined && a.length !== n) throw new RangeError(`${name} has length ${a.length}, expected ${n}`);
}
function checkGamma(name: string, g: number): void {
  if (!(g >= 0 && g <= 1)) throw new RangeError(`${name} must be in [0, 1], got ${g}`);
}

/** G_t = r_t + γ·G_{t+1} (no flow across `dones`), G_T = `bootstrap`. */
export function discountedReturns(rewards: ArrayLike<number>, gamma: number, opts: { bootstrap?: number; dones?: Flags } = {}): Float64Array {
  checkGamma('gamma', gamma);
  const n = rewards.length;
  checkLen('dones', opts.dones, n);
  const out = new Float64Array(n);
  let g = opts.bootstrap ?? 0;
  for (let t = n - 1; t >= 0; t--) {
    if (opts.dones && opts.dones[t]) g = 0;
    g = rewards[t]! + gamma * g;
    out[t] = g;
  }
  return out;
}

export type SpreadMode = 'last' | 'uniform';

/** An utterance-level reward over `numTokens` tokens: all on the last token, or reward/numTokens on each. */
export function spreadReward(reward: number, numTokens: number, mode: SpreadMode = 'last'): Float64Array {
  if (!Number.isInteger(numTokens) || numTokens < 0) throw new RangeError(`numTokens must be a non-negative integer, got ${numTokens}`);
  const out = new Float64Array(numTokens);
  if (numTokens === 0) return out;
  if (mode === 'last') out[numTokens - 1] = reward;
  else out.fill(reward / numTokens);
  return out;
}

/**
 * Token rewards of a whole sequence from per-turn rewards: turn i has `turnLengths[i]` tokens and
 * reward `turnRewards[i]`. Also returns the `turnEnds` flags (last token of each non-empty turn)
 * for `gae`/`tokenReturns`. A turn of 0 tokens cannot carry a reward: its reward moves to the
 * previous token (or is dropped at the very start, with a RangeError if non-zero).
 */
export function spreadTurnRewards(turnRewards: ArrayLike<number>, turnLengths: ArrayLike<number>, mode: SpreadMode = 'last'): { rewards: Float64Array; turnEnds: Uint8Array } {
  checkLen('turnLengths', turnLengths, turnRewards.length);
  let total = 0;
  for (let i = 0; i < turnLengths.length; i++) {
    const n = turnLengths[i]!;
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`turnLengths[${i}] must be a non-negative integer, got ${n}`);
    total += n;
  }
  const rewards = new Float64Array(total);
  const turnEnds = new Uint8Array(total);
  let o = 0;
  for (let i = 0; i < turnRewards.length; i++) {
    const n = turnLengths[i]!;
    const r = turnRewards[i]!;
    if (n === 0) {
      if (o > 0) rewards[o - 1] += r;
      else if (r !== 0) throw new RangeError(`turn ${i} has no tokens and nothing before it to carry its reward`);
      continue;
    }
    rewards.set(spreadReward(r, n, mode), o);
    o += n;
    turnEnds[o - 1] = 1;
  }
  return { rewards, turnEnds };
}

export interface GaeInput {
  /** Reward after each token. */
  rewards: ArrayLike<number>;
  /** V(s_t) before each token. */
  values: ArrayLike<number>;
  /** V(s_T) after the last token (0 if the episode terminated there). */
  lastValue?: number;
  /** Token t is the last token of a turn: γ applies between t and t+1. Default: every token. */
  turnEnds?: Flags;
  /** The episode terminated after token t: no bootstrap and no advantage flows back across it. */
  dones?: Flags;
  /** Discount per turn. */
  gamma: number;
  /** GAE λ, per token. */
  lambda: number;
}

/**
 * GAE with turn-level discounting:
 *   γ_t = γ if turnEnds[t] else 1;  m_t = 0 if dones[t] else 1
 *   δ_t = r_t + γ_t·m_t·V_{t+1} − V_t
 *   A_t = δ_t + γ_t·λ·m_t·A_{t+1},   returns_t = A_t + V_t
 */
export function gae(input: GaeInput): { advantages: Float64Array; returns: Float64Array } {
  const { rewards, values, turnEnds, dones, gamma, lambda } = input;
  checkGamma('gamma', gamma);
  checkGamma('lambda', lambda);
  const n = rewards.length;
  checkLen('values', values, n);
  checkLen('turnEnds', turnEnds, n);
  checkLen('dones', dones, n);
  const adv = new Float64Array(n);
  const ret = new Float64Array(n);
  let nextValue = input.lastValue ?? 0;
  let nextAdv = 0;
  for (let t = n - 1; t >= 0; t--) {
    const g = !turnEnds || turnEnds[t] ? gamma : 1;
    const m = dones && dones[t] ? 0 : 1;
    const delta = rewards[t]! + g * m * nextValue - values[t]!;
    nextAdv = delta + g * lambda * m * nextAdv;
    adv[t] = nextAdv;
    ret[t] = nextAdv + values[t]!;
    nextValue = values[t]!;
  }
  return { advantages: adv, returns: ret };
}

/** Discounted token returns with γ applied at turn boundaries only (`gae` with V = 0 and λ = 1). */
export function tokenReturns(rewards: ArrayLike<number>, turnEnds: Flags | undefined, gamma: number, opts: { bootstrap?: number; dones?: Flags } = {}): Float64Array {
  const zeros = new Float64Array(rewards.length);
  const r = gae({ rewards, values: zeros, lastValue: opts.bootstrap ?? 0, turnEnds, dones: opts.dones, gamma, lambda: 1 });
  return r.returns;
}

/** Whitened copy (mean 0, std 1; unchanged shape), e.g. for advantages. Returns zeros when the std is 0. */
export function whiten(x: ArrayLike<number>, eps = 1e-8): Float64Array {
  const n = x.length;
  const out = new Float64Array(n);
  if (n === 0) return out;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i]!;
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (x[i]! - mean) ** 2;
  const sd = Math.sqrt(v / n);
  if (!(sd > eps)) return out;
  for (let i = 0; i < n; i++) out[i] = (x[i]! - mean) / sd;
  return out;
}
