/**
 * Reference policies: what an RL agent's KL penalty / budget is measured against, and what the
 * evaluation measures KL to.
 *
 * - `ModelReference`: one language model ν (the single imitator = the usual base policy, or the
 *   demonstrator D). Distributions over the V ordinary tokens; no HELP action.
 * - `ConservativeReference`: the "don't do anything I mightn't do" reference of an imitator
 *   ensemble (see ensemble.ts): ℓ(a|s) = min over the plausible set for every ordinary token a, and
 *   θ(s) = 1 − Σℓ on one extra HELP action (index V = `helpAction`). Its distributions have V + 1
 *   entries and sum to 1.
 *
 * All log-probabilities are finite (probabilities below 1e-20 are floored; see ensemble.ts).
 *
 * For an RL policy π over the V ordinary tokens (it never asks for help), the exact per-token KL
 * to the conservative reference is Σ_a π(a)·(log π(a) − log ℓ(a|s)). ℓ is a sub-probability
 * (Σℓ = 1 − θ), so this equals KL(π ‖ ℓ/(1−θ)) − log(1 − θ) ≥ −log(1 − θ) ≥ 0: besides the usual
 * KL, the agent pays −log(1−θ) in every state where the plausible imitators disagree — the
 * conservative prior discourages going where the demonstrator's behaviour is uncertain. Use
 * `klToReference` for it. A policy that has its own HELP action (V + 1 outputs) compares
 * entry for entry.
 *
 * Incremental use (rollouts, evaluation): `startSession(prefixes)` returns a KV-cached session with
 * the `LMSession` API (`append`, `extend`, `resetRow`, `nextLogProbs`, `dispose`).
 *
 * As the KL base of the RL agents (agents/rl, issue 5 item 3), the intended wiring is:
 *   - `TrainContext.reference?: ReferencePolicy` (default: `new ModelReference(ctx.base)`); the
 *     rollout opens `reference.startSession(...)` where it now opens `base.startSession(...)`;
 *   - per-token KL: `klToReference(π, ref)` (exactKl needs equal lengths: ref has V + 1 entries);
 *     `baseLogp` = ref[a] = log ℓ(a|s) for the k1 / k3 estimators;
 *   - kl-budget's mixture needs a normalised base: use ℓ/(1−θ) (drop HELP, renormalise) and add
 *     −log(1−θ) to the token's KL charge, or give the policy a HELP action; the policy's features
 *     still come from the single imitator (`ctx.base`);
 *   - record `reference.name` in the run's config.json as `meta.referenceName`, so the report can
 *     say which base a run was constrained to. `colloquy compare` passes `reference` in the
 *     TrainContext and treats a conservative run without that record as constrained to the imitator.
 */
import type { TransformerLM } from '../../models/lm.ts';
import type { LMSession } from '../../models/sampler.ts';
import { conservativeLogProbs, lowerLogProb, normalisedLowerLogProbs } from './ensemble.ts';

export interface ReferencePolicy {
  /** For logs and reports (`imitator`, `conservative(K=4, |M|=3)`, `demonstrator`). */
  readonly name: string;
  /** V: the number of ordinary tokens (the tokenizer's vocabulary). */
  readonly vocabSize: number;
  /** Index of the HELP action in the distributions (= vocabSize), or null when there is none. */
  readonly helpAction: number | null;
  /** Entries per distribution: V, or V + 1 with HELP. */
  readonly outputSize: number;
  /** Full next-token log-probabilities after each context (length `outputSize` each). */
  nextTokenLogProbs(contexts: number[][]): Promise<Float32Array[]>;
  /**
   * Log-probability of each continuation token (ordinary tokens only) given the prefix and the
   * continuation before it: log ν(a|s), or log ℓ(a|s) for the conservative reference.
   */
  sequenceLogProbs(prefixes: number[][], continuations: number[][]): Promise<number[][]>;
  /** A KV-cached incremental session over a batch of prefixes. */
  startSession(prefixes: number[][]): ReferenceSession;
}

/** The subset of `LMSession` a reference session offers (same semantics). */
export interface ReferenceSession {
  readonly size: number;
  /** Log-probabilities of each row's next action (length `outputSize`). Do not modify them. */
  nextLogProbs(rows?: readonly number[]): Float32Array[];
  /** One token per row; null leaves a row unchanged. */
  append(tokens: readonly (number | null)[]): void;
  extend(row: number, tokens: readonly number[]): void;
  resetRow(row: number, prefix: number[]): void;
  tokens(row: number): readonly number[];
  dispose(): void;
}

/** One language model as a reference (the single imitator, the base, the demonstrator). */
export class ModelReference implements ReferencePolicy {
  readonly helpAction = null;
  constructor(readonly model: TransformerLM, readonly name = 'imitator') {}
  get vocabSize(): number { return this.model.config.vocabSize; }
  get outputSize(): number { return this.model.config.vocabSize; }
  async nextTokenLogProbs(contexts: number[][]): Promise<Float32Array[]> { return this.model.nextTokenLogProbs(contexts); }
  async sequenceLogProbs(prefixes: number[][], continuations: number[][]): Promise<number[][]> {
    return this.model.sequenceLogProbs(prefixes, continuations);
  }
  startSession(prefixes: number[][]): ReferenceSession { return this.model.startSession(prefixes); }
}

/**
 * The conservative reference of an imitator ensemble: log ℓ on the V ordinary tokens and log θ on
 * HELP (index V). `members` is the plausible set M (indices into `models`).
 *
 * With `normalise: true` it is ℓ/(1 − θ) over the V ordinary tokens, without HELP: a proper
 * distribution for agents that need one (kl-budget's mixture). It keeps which tokens the plausible
 * imitators agree on, but not the cost −log(1 − θ) of going where they disagree.
 */
export class ConservativeReference implements ReferencePolicy {
  readonly members: readonly number[];
  readonly name: string;
  readonly normalised: boolean;

  constructor(readonly models: readonly TransformerLM[], members?: readonly number[], name?: string, opts: { normalise?: boolean } = {}) {
    if (!models.length) throw new RangeError('ConservativeReference: no models');
    const V = models[0]!.config.vocabSize;
    if (models.some(m => m.config.vocabSize !== V)) throw new RangeError('ConservativeReference: the models differ in vocabulary size');
    this.members = members ? [...members] : models.map((_, k) => k);
    if (!this.members.length || this.members.some(k => !models[k])) throw new RangeError('ConservativeReference: bad plausible set');
    this.normalised = opts.normalise === true;
    this.name = name ?? `conservative${this.normalised ? '-normalised' : ''}(K=${models.length}, |M|=${this.members.length})`;
  }

  get vocabSize(): number { return this.models[0]!.config.vocabSize; }
  get helpAction(): number | null { return this.normalised ? null : this.vocabSize; }
  get outputSize(): number { return this.normalised ? this.vocabSize : this.vocabSize + 1; }

  /** The plausible models only (the others never matter). */
  private plausible(): TransformerLM[] { return this.members.map(k => this.models[k]!); }

  /** This reference's distribution from the plausible members' log-probabilities. */
  combine(memberLogProbs: readonly ArrayLike<number>[]): Float32Array {
    return this.normalised ? normalisedLowerLogProbs(memberLogProbs) : conservativeLogProbs(memberLogProbs);
  }

  async nextTokenLogProbs(contexts: number[][]): Promise<Float32Array[]> {
    const per = this.plausible().map(m => m.nextTokenLogProbs(contexts));
    return contexts.map((_, i) => this.combine(per.map(p => p[i]!)));
  }

  async sequenceLogProbs(prefixes: number[][], continuations: number[][]): Promise<number[][]> {
    if (!this.normalised) {
      const per = this.plausible().map(m => m.sequenceLogProbs(prefixes, continuations));
      return continuations.map((c, i) => c.map((_, t) => lowerLogProb(per.map(p => p[i]![t]!))));
    }
    // log ℓ(a) − log(1 − θ): θ needs the full distributions at every position.
    const s = this.startSession(prefixes);
    try {
      return continuations.map((c, i) => c.map(tok => {
        const lp = s.nextLogProbs([i])[0]![tok]!;
        s.extend(i, [tok]);
        return lp;
      }));
    } finally { s.dispose(); }
  }

  startSession(prefixes: number[][]): ReferenceSession {
    return new EnsembleSession(this.plausible().map(m => m.startSession(prefixes)), (lps: Float32Array[]) => this.combine(lps));
  }
}

/** K sessions in lockstep, combined row by row. */
export class EnsembleSession implements ReferenceSession {
  private readonly cache = new Map<number, { version: number; value: Float32Array }>();
  private readonly versions: number[];

  constructor(readonly sessions: readonly LMSession[], private readonly combine: (logProbs: Float32Array[]) => Float32Array) {
    this.versions = new Array<number>(sessions[0]!.size).fill(0);
  }

  get size(): number { return this.sessions[0]!.size; }

  /** Every member's next-token log-probabilities for `rows` ([member][row]). */
  memberLogProbs(rows?: readonly number[]): Float32Array[][] {
    return this.sessions.map(s => s.nextLogProbs(rows));
  }

  nextLogProbs(rows?: readonly number[]): Float32Array[] {
    const which = rows ?? this.versions.map((_, i) => i);
    const need = which.filter(r => this.cache.get(r)?.version !== this.versions[r]);
    if (need.length) {
      const per = this.memberLogProbs(need);
      need.forEach((r, q) => this.cache.set(r, { version: this.versions[r]!, value: this.combine(per.map(p => p[q]!)) }));
    }
    return which.map(r => this.cache.get(r)!.value);
  }

  append(tokens: readonly (number | null)[]): void {
    for (const s of this.sessions) s.append(tokens);
    tokens.forEach((t, i) => { if (t !== null) this.versions[i]!++; });
  }

  extend(row: number, tokens: readonly number[]): void {
    for (const s of this.sessions) s.extend(row, tokens);
    this.versions[row]!++;
  }

  resetRow(row: number, prefix: number[]): void {
    for (const s of this.sessions) s.resetRow(row, prefix);
    this.versions[row]!++;
  }

  tokens(row: number): readonly number[] { return this.sessions[0]!.tokens(row); }

  dispose(): void { for (const s of this.sessions) s.dispose(); this.cache.clear(); }
}

/**
 * Exact KL(π ‖ ref) of one state from full log-probabilities: Σ_a π(a)·(log π(a) − log ref(a)),
 * summed over π's entries (V, or V + 1 when π has a HELP action). `ref` may be longer than `pi`
 * (the conservative reference's HELP entry, which π does not use). Entries with π(a) = 0 add 0.
 * Never negative (float rounding is clamped at 0).
 */
export function klToReference(piLogProbs: ArrayLike<number>, refLogProbs: ArrayLike<number>): number {
  if (refLogProbs.length < piLogProbs.length) throw new RangeError(`klToReference: reference has ${refLogProbs.length} entries, policy ${piLogProbs.length}`);
  let kl = 0;
  for (let a = 0; a < piLogProbs.length; a++) {
    const lp = piLogProbs[a]!;
    if (lp === -Infinity) continue;
    const p = Math.exp(lp);
    if (p === 0) continue;
    kl += p * (lp - refLogProbs[a]!);
  }
  // Rounding can leave a tiny negative value for (nearly) identical distributions.
  return Math.max(0, kl);
}
