/**
 * The conservative imitation baseline ("don't do anything I mightn't do"): an agent that acts with
 * the lower probabilities ℓ of an imitator ensemble and asks for help with the remaining mass θ.
 *
 * At each of its steps, in a state s where nobody is helping:
 *   - it draws from the V + 1 actions: an ordinary token a with probability ℓ(a|s), HELP with θ(s);
 *   - on HELP (a help request, counted and reported through `onHelp`) the helper writes the token
 *     (`helpMode: "token"`), or the token and the rest of the teacher turn (`helpMode: "turn"`).
 * The helper is the demonstrator D in evaluation and experiments (its distribution is known, so
 * the agent's effective distribution is exact: π(a|s) = ℓ(a|s) + θ(s)·D(a|s) where the agent
 * decides, and D(a|s) while D writes the rest of a turn). In live chat it can be a person: any
 * `HelpProvider`.
 */
import type { Rng } from '../../core/rng.ts';
import type { TransformerLM } from '../../models/lm.ts';
import { sampleToken } from '../../models/sampler.ts';
import type { AgentDecision, EvalAgent, SessionPool } from '../eval/agents.ts';
import { lowerProbabilities, mixWithHelper } from './ensemble.ts';

export type HelpMode = 'token' | 'turn';

/** Who answers a help request. */
export interface HelpProvider {
  readonly name: string;
  /**
   * The helper's next token for each row, with its distribution when it has one (a model), or
   * null (a person: the effective distribution is then unknown and reported as the agent's own).
   */
  next(rows: readonly number[], contexts: readonly number[][], rngs: readonly Rng[], pool: SessionPool): Promise<{ token: number; logProbs: Float32Array | null }[]>;
}

/** A language model as the helper (the demonstrator D). */
export class ModelHelper implements HelpProvider {
  constructor(readonly model: TransformerLM, readonly name = 'demonstrator') {}
  async next(rows: readonly number[], contexts: readonly number[][], rngs: readonly Rng[], pool: SessionPool): Promise<{ token: number; logProbs: Float32Array }[]> {
    return pool.logProbs(this.model, rows, contexts).map((lp, q) => ({ token: sampleToken(lp, { temperature: 1, rng: rngs[q]! }), logProbs: lp }));
  }
}

export interface HelpEvent {
  row: number;
  /** Position in the transcript (number of tokens before the requested token). */
  position: number;
  theta: number;
  mode: HelpMode;
}

export interface ConservativeAgentOptions {
  /** The K imitators (ν_k). */
  models: readonly TransformerLM[];
  /** Plausible set M (indices into `models`); default all. */
  members?: readonly number[];
  helper: HelpProvider;
  helpMode?: HelpMode;
  /** Tokens that end the agent's turn (the `\n\nStudent:` marker, `<|endoftext|>`): turn help stops there. */
  turnEnd: readonly number[];
  name?: string;
  /** Called on every help request. */
  onHelp?: (e: HelpEvent) => void;
}

export class ConservativeAgent implements EvalAgent {
  readonly kind = 'conservative';
  readonly name: string;
  readonly helpMode: HelpMode;
  private readonly members: readonly number[];
  private readonly turnEnd: Set<number>;
  /** Rows where the helper is writing the rest of the turn. */
  private readonly helping = new Set<number>();
  /** Totals over the agent's life (eval rows carry per-dialog counts). */
  helpRequests = 0;
  decisions = 0;

  constructor(readonly opts: ConservativeAgentOptions) {
    if (!opts.models.length) throw new RangeError('ConservativeAgent: no models');
    this.members = opts.members ? [...opts.members] : opts.models.map((_, k) => k);
    this.helpMode = opts.helpMode ?? 'turn';
    this.turnEnd = new Set(opts.turnEnd);
    this.name = opts.name ?? `conservative(K=${opts.models.length}, |M|=${this.members.length}, help=${this.helpMode})`;
  }

  begin(row: number): void { this.helping.delete(row); }

  async act(rows: readonly number[], contexts: readonly number[][], rngs: readonly Rng[], pool: SessionPool): Promise<AgentDecision[]> {
    const out: AgentDecision[] = new Array(rows.length);
    const deciding: number[] = [];
    rows.forEach((r, q) => { if (!this.helping.has(r)) deciding.push(q); });
    // Members' distributions for the rows where the agent decides.
    const dRows = deciding.map(q => rows[q]!), dCtx = deciding.map(q => contexts[q]!);
    const per = this.members.map(k => pool.logProbs(this.opts.models[k]!, dRows, dCtx));
    const needHelp: number[] = rows.map((_, q) => q).filter(q => this.helping.has(rows[q]!));
    const lower = deciding.map((_, i) => lowerProbabilities(per.map(p => p[i]!)));
    const asked = new Set<number>();
    deciding.forEach((q, i) => {
      const { ell, theta } = lower[i]!;
      this.decisions++;
      // Draw from [ℓ(0..V−1), θ]: one uniform against the cumulative masses.
      const w = new Float64Array(ell.length + 1);
      w.set(ell); w[ell.length] = theta;
      const a = rngs[q]!.categorical(w);
      if (a === ell.length) {
        asked.add(q);
        needHelp.push(q);
        this.helpRequests++;
        this.opts.onHelp?.({ row: rows[q]!, position: contexts[q]!.length, theta, mode: this.helpMode });
      } else {
        out[q] = { action: a, logProbs: normalised(ell), theta, helpRequest: false, helped: false };
      }
    });
    if (needHelp.length) {
      needHelp.sort((a, b) => a - b);
      const help = await this.opts.helper.next(needHelp.map(q => rows[q]!), needHelp.map(q => contexts[q]!), needHelp.map(q => rngs[q]!), pool);
      needHelp.forEach((q, k) => {
        const h = help[k]!;
        const r = rows[q]!;
        if (asked.has(q)) {
          const i = deciding.indexOf(q);
          out[q] = { action: h.token, logProbs: h.logProbs ? mixWithHelper(lower[i]!, h.logProbs) : UNKNOWN, theta: lower[i]!.theta, helpRequest: true, helped: true };
          if (this.helpMode === 'turn') this.helping.add(r);
        } else {
          out[q] = { action: h.token, logProbs: h.logProbs ?? UNKNOWN, helpRequest: false, helped: true };
        }
        if (this.turnEnd.has(h.token)) this.helping.delete(r);
      });
    }
    // Where the agent wrote its own token, the token's distribution is still ℓ + θ·helper (the
    // helper's token is what a help request would have produced): fill it in when the helper has
    // a distribution (with a person as helper it is unknown; ℓ renormalised is reported).
    const own = deciding.filter(q => !asked.has(q));
    if (own.length && own.some(q => lower[deciding.indexOf(q)]!.theta > 0)) {
      const hl = await this.helperLogProbs(own.map(q => rows[q]!), own.map(q => contexts[q]!), pool);
      own.forEach((q, k) => { if (hl[k]) out[q]!.logProbs = mixWithHelper(lower[deciding.indexOf(q)]!, hl[k]!); });
    }
    return out;
  }

  /** The helper's distributions without sampling (only a model helper has them). */
  private async helperLogProbs(rows: number[], contexts: number[][], pool: SessionPool): Promise<(Float32Array | null)[]> {
    const h = this.opts.helper;
    if (h instanceof ModelHelper) return pool.logProbs(h.model, rows, contexts);
    return rows.map(() => null);
  }
}

/** An empty distribution: "unknown" (a person helped); evaluation reports NaN KL for it. */
const UNKNOWN = new Float32Array(0);

/** log(ℓ / Σℓ) as float32. */
function normalised(ell: Float64Array): Float32Array {
  const s = ell.reduce((a, b) => a + b, 0);
  const out = new Float32Array(ell.length);
  for (let j = 0; j < ell.length; j++) out[j] = Math.log(Math.max(ell[j]! / s, 1e-38));
  return out;
}
