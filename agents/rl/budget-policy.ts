/**
 * The kl-budget agent's networks (Cohen et al. 2024): a proposal + per-token KL target head and a
 * critic, both on frozen features of the base model, with the policy the KL-budgeted mixture of
 * the proposal and the base policy (kl-mixture.ts).
 *
 * - Input of a state: the base model's final hidden state there (d values), the KL budget left
 *   (in nats / 10 and as a fraction of the episode's budget) and the fraction of time left.
 *   The hidden state is read from a KV-cached session of the base model (`LMSession.hidden`):
 *   the rollout's own base session when the rollout was given `baseReference()` (kl-budget.ts
 *   does this: no second forward pass), else a session of the policy's own.
 * - Head (linear, zero-initialised so that training starts at the base policy): V logit offsets
 *   added to the base log-probabilities (the proposal a ∝ p_base · exp(offset)) and one target
 *   logit τ. The per-token target is k = σ(τ − log n)·B with B the budget left and n a horizon
 *   (16 as in the paper's code: τ = 0 spends ~6% of what is left per token; or the tokens left).
 * - The mixture is solved per token, so KL(x‖b) ≤ k < B: charged with its exact KL, an episode
 *   never spends more than its budget.
 */
import * as tf from '@tensorflow/tfjs';
import type { TransformerLM } from '../../models/lm.ts';
import type { LMSession } from '../../models/sampler.ts';
import { linear, readF32, tidyRead } from '../../models/lm-ops.ts';
import { Rng } from '../../core/rng.ts';
import { logSoftmax } from './kl.ts';
import { mixtureBackward, solveMixture } from './kl-mixture.ts';
import type { Episode, KlReference, RolloutPolicy, RowContext } from './rollout.ts';

type Saver = tf.GradSaveFunc;

/** Extra inputs beside the hidden state. */
export const BUDGET_INPUTS = 3;
/** Budgets are fed in units of this many nats. */
const BUDGET_SCALE = 10;

/** What a kl-budget rollout keeps per agent step. */
export interface BudgetAux {
  /** Head input: hidden state, budget left / 10, budget fraction left, time left. */
  input: Float32Array;
  /** Base log-probabilities at the state. */
  logb: Float32Array;
  /** Budget left before the step (nats). */
  budgetLeft: number;
  /** n in the target k = σ(τ − log n)·B. */
  horizon: number;
  /** Target and mixture weight. */
  k: number;
  alpha: number;
}

function sigmoid(x: number): number { return 1 / (1 + Math.exp(-x)); }

/** The per-token target k = σ(τ − log n)·B. */
export function budgetTarget(tau: number, horizon: number, budgetLeft: number): number {
  return sigmoid(tau - Math.log(Math.max(1, horizon))) * Math.max(0, budgetLeft);
}

export interface MixtureRowInput {
  logb: ArrayLike<number>;
  /** The mixture weight solved when the token was sampled (a starting guess). */
  alpha?: number;
  budgetLeft: number;
  /** n in the target k = σ(τ − log n)·B. */
  horizon: number;
}

/**
 * One op over a batch of head outputs z [n, V+1] (offsets | τ): solves each row's mixture and
 * returns [n, 3] = (log x(action), entropy of x, squared gap (KL(a‖b) − k)² when α = 1), with the
 * gradient to z through the solve (implicit differentiation, kl-mixture.ts).
 */
export function mixtureOutputs(z: tf.Tensor2D, rows: readonly MixtureRowInput[], actions: Int32Array): tf.Tensor2D {
  const [n, V1] = z.shape;
  const V = V1 - 1;
  const f = tf.customGrad((zi: tf.Tensor | Saver) => {
    const zd = readF32(zi as tf.Tensor);
    const out = new Float32Array(n * 3);
    const saved: { loga: Float64Array; sol: ReturnType<typeof solveMixture>; sg: number }[] = [];
    for (let i = 0; i < n; i++) {
      const r = rows[i]!;
      const u = new Float64Array(V);
      for (let j = 0; j < V; j++) u[j] = zd[i * V1 + j]! + r.logb[j]!;
      const loga = logSoftmax(u);
      const tau = zd[i * V1 + V]!;
      const s = sigmoid(tau - Math.log(Math.max(1, r.horizon)));
      const k = s * Math.max(0, r.budgetLeft);
      const sol = solveMixture(loga, r.logb, k, r.alpha !== undefined ? { guess: r.alpha } : {});
      let H = 0;
      for (let j = 0; j < V; j++) { const l = sol.logx[j]!; if (l > -Infinity) H -= Math.exp(l) * l; }
      out[3 * i] = sol.logx[actions[i]!]!;
      out[3 * i + 1] = H;
      out[3 * i + 2] = sol.alpha >= 1 ? (sol.proposalKl - k) ** 2 : 0;
      saved.push({ loga, sol, sg: s * (1 - s) * Math.max(0, r.budgetLeft) });
    }
    return {
      value: tf.tensor2d(out, [n, 3]),
      gradFunc: (dy: tf.Tensor) => {
        const g = readF32(dy);
        const dz = new Float32Array(n * V1);
        const gradX = new Float64Array(V);
        for (let i = 0; i < n; i++) {
          const { loga, sol, sg } = saved[i]!;
          const a = actions[i]!;
          for (let j = 0; j < V; j++) gradX[j] = -g[3 * i + 1]! * (sol.logx[j]! + 1);
          gradX[a] += g[3 * i]! / Math.exp(sol.logx[a]!);
          const { gradLoga, gradK } = mixtureBackward(sol, loga, rows[i]!.logb, gradX, g[3 * i + 2]!);
          let s = 0;
          for (let j = 0; j < V; j++) s += gradLoga[j]!;
          for (let j = 0; j < V; j++) dz[i * V1 + j] = gradLoga[j]! - Math.exp(loga[j]!) * s;
          dz[i * V1 + V] = gradK * sg;
        }
        return tf.tensor2d(dz, [n, V1]);
      },
    };
  });
  return f(z) as tf.Tensor2D;
}

export class BudgetPolicy implements RolloutPolicy<BudgetAux> {
  readonly V: number;
  readonly d: number;
  readonly inputs: number;
  /** Proposal / target head. */
  readonly W: tf.Variable;
  readonly b: tf.Variable;
  /** Critic MLP. */
  readonly c1: tf.Variable;
  readonly cb1: tf.Variable;
  readonly c2: tf.Variable;
  readonly cb2: tf.Variable;
  /** The frozen base model whose hidden states are the features. */
  readonly base: TransformerLM;
  /** The features' session: the policy's own (kept in step by begin / resetRow / extendRow)… */
  private own: LMSession | null = null;
  /** …or the rollout's base session, started through `baseReference()`. */
  private shared: LMSession | null = null;
  /** Budget given to episodes that start from now on (ramped by the trainer). */
  budget = 0;
  accounting: 'exact' | 'sampled' = 'exact';
  /**
   * n in the target k = σ(τ − log n)·B: a constant (the paper's code: 16, so τ = 0 spends ~6% of
   * the budget left per token, front-loaded), or null for the tokens left in the episode.
   */
  targetHorizon: number | null = 16;

  constructor(base: TransformerLM, opts: { criticHidden: number; seed: number; name?: string }) {
    const c = base.config;
    this.V = c.vocabSize; this.d = c.dModel; this.inputs = this.d + BUDGET_INPUTS;
    this.base = base;
    const p = opts.name ?? 'klbudget';
    const F = this.inputs, H = opts.criticHidden;
    this.W = tf.variable(tf.zeros([F, this.V + 1]), true, `${p}/actor/w`);
    this.b = tf.variable(tf.zeros([this.V + 1]), true, `${p}/actor/b`);
    // Critic: small random first layer (orthogonal-ish scale), zero output layer (as the paper).
    const rng = new Rng(opts.seed);
    const w1 = new Float32Array(F * H);
    for (let i = 0; i < w1.length; i++) w1[i] = (rng.random() * 2 - 1) * Math.sqrt(3 / F);
    this.c1 = tf.variable(tf.tensor2d(w1, [F, H]), true, `${p}/critic/w1`);
    this.cb1 = tf.variable(tf.zeros([H]), true, `${p}/critic/b1`);
    this.c2 = tf.variable(tf.zeros([H, 1]), true, `${p}/critic/w2`);
    this.cb2 = tf.variable(tf.zeros([1]), true, `${p}/critic/b2`);
  }

  actorVariables(): tf.Variable[] { return [this.W, this.b]; }
  criticVariables(): tf.Variable[] { return [this.c1, this.cb1, this.c2, this.cb2]; }

  /**
   * The base model as the rollout's KL reference, sharing its session with the policy: the
   * features are then read from the session the base log-probabilities come from, at no cost.
   */
  baseReference(): KlReference {
    const V = this.V;
    return { name: 'base', vocabSize: V, outputSize: V, startSession: prefixes => (this.shared = this.base.startSession(prefixes)) };
  }

  /** The base model's final hidden states [n, d] at the current state of `rows`. */
  features(rows: readonly number[]): Float32Array {
    const session = this.own ?? this.shared;
    if (!session) throw new Error('BudgetPolicy: features read outside a rollout (call begin first)');
    const out = new Float32Array(rows.length * this.d);
    session.hidden(rows).forEach((h, i) => out.set(h, i * this.d));
    return out;
  }

  /** Head outputs [n, V+1] for inputs [n, F] (a tensor; with gradients inside variableGrads). */
  head(x: tf.Tensor2D): tf.Tensor2D {
    return linear(x, this.W as tf.Tensor2D, this.b as tf.Tensor1D);
  }

  critic(x: tf.Tensor2D): tf.Tensor1D {
    const h = tf.tanh(linear(x, this.c1 as tf.Tensor2D, this.cb1 as tf.Tensor1D)) as tf.Tensor2D;
    return tf.reshape(linear(h, this.c2 as tf.Tensor2D, this.cb2 as tf.Tensor1D), [-1]);
  }

  // ---------------------------------------------------------------------------- rollouts

  begin(transcripts: readonly number[][]): void {
    this.own?.dispose();
    this.own = null;
    // The rollout's base session serves when it holds exactly these rows (it was started for this
    // rollout); otherwise the policy keeps a session of its own.
    const s = this.shared;
    const inStep = s !== null && s.isOpen && s.size === transcripts.length && transcripts.every((t, i) => sameTokens(s.tokens(i), t));
    if (!inStep) {
      this.shared = null;
      this.own = this.base.startSession(transcripts.map(t => [...t]));
    }
  }
  resetRow(row: number, tokens: readonly number[], episode: Episode<BudgetAux>): void {
    this.own?.resetRow(row, [...tokens]);
    episode.state.budget = this.budget;
    episode.state.budgetLeft = this.budget;
    episode.state.spent = 0;
  }
  extendRow(row: number, tokens: readonly number[]): void { this.own?.extend(row, tokens); }
  end(): void { this.own?.dispose(); this.own = null; }

  next(rows: readonly number[], base: readonly Float32Array[], ctx: readonly RowContext<BudgetAux>[]): { logp: Float64Array[]; aux: BudgetAux[] } {
    const n = rows.length, F = this.inputs, V = this.V;
    const feats = this.features(rows);
    const input = new Float32Array(n * F);
    ctx.forEach((c, i) => {
      input.set(feats.subarray(i * this.d, (i + 1) * this.d), i * F);
      const B0 = c.episode.state.budget ?? 0, B = c.episode.state.budgetLeft ?? 0;
      input[i * F + this.d] = B / BUDGET_SCALE;
      input[i * F + this.d + 1] = B0 > 0 ? B / B0 : 0;
      input[i * F + this.d + 2] = c.timeLeft;
    });
    // tidyRead, not tf.tidy returning the array: tidy walks a returned array element by element.
    const z = tidyRead(() => this.head(tf.tensor2d(input, [n, F])));
    const logp: Float64Array[] = [], aux: BudgetAux[] = [];
    for (let i = 0; i < n; i++) {
      const logb = base[i]!;
      const u = new Float64Array(V);
      for (let j = 0; j < V; j++) u[j] = z[i * (V + 1) + j]! + logb[j]!;
      const loga = logSoftmax(u);
      const B = ctx[i]!.episode.state.budgetLeft ?? 0;
      const horizon = this.targetHorizon ?? (Number.isFinite(ctx[i]!.tokensLeft) ? ctx[i]!.tokensLeft : 1);
      const k = budgetTarget(z[i * (V + 1) + V]!, horizon, B);
      const sol = solveMixture(loga, logb, k);
      logp.push(sol.logx);
      aux.push({ input: input.slice(i * F, (i + 1) * F), logb, budgetLeft: B, horizon, k, alpha: sol.alpha });
    }
    return { logp, aux };
  }

  sampled(_rows: readonly number[], _actions: readonly number[], kl: readonly number[], ctx: readonly RowContext<BudgetAux>[]): void {
    ctx.forEach((c, i) => {
      const ep = c.episode;
      const t = ep.logp.length - 1;
      const charge = this.accounting === 'exact' ? kl[i]! : ep.logp[t]! - ep.baseLogp[t]!;
      ep.state.spent = (ep.state.spent ?? 0) + kl[i]!;
      ep.state.budgetLeft = Math.max(0, (ep.state.budgetLeft ?? 0) - charge);
    });
  }

  dispose(): void {
    this.end();
    this.shared = null;
    tf.dispose([this.W, this.b, this.c1, this.cb1, this.c2, this.cb2]);
  }
}

function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}
