/**
 * Agents as the batch evaluation runs them, and the shared pool of KV-cached model sessions.
 *
 * An `EvalAgent` acts on token-mode dialog envs (TeacherStudent-v0): for each live row it gets the
 * transcript so far (token ids: the observation's `tokens[0:length]`) and returns its action with
 * the full distribution it sampled it from (log-probabilities over the V ordinary tokens), so that
 * KL to any reference is exact. Agents draw their randomness from the per-dialog `Rng` they are
 * given, so a dialog's actions do not depend on which other dialogs share its batch.
 *
 * `SessionPool` keeps one KV-cached session per model (one row per env), brought up to date with
 * each row's transcript on demand, and caches each step's distributions: the agent, the KL
 * references and the demonstrator helper all read the same model once per step.
 */
import type { TransformerLM } from '../../models/lm.ts';
import type { Rng } from '../../core/rng.ts';
import { sampleToken } from '../../models/sampler.ts';
import { ConservativeReference, ModelReference, type ReferencePolicy, type ReferenceSession } from '../imitation/reference.ts';

/** One action of an agent in one row. */
export interface AgentDecision {
  action: number;
  /** The agent's effective distribution of this action (log-probabilities over the V ordinary tokens). */
  logProbs: Float32Array;
  /** The agent asked for help at this step (the conservative baseline). */
  helpRequest?: boolean;
  /** The token was written by the helper (the demonstrator), not by the agent. */
  helped?: boolean;
  /** The help mass θ(s) at this step, when the agent has one. */
  theta?: number;
}

export interface EvalAgent {
  /** Short name for rows and reports (`imitator`, `ppo-kl[cons, β=0.1, seed 1]`, …). */
  readonly name: string;
  /** What it is: `model`, `conservative`, `rl`, … */
  readonly kind: string;
  /** A new dialog starts on `row` (forget per-dialog state such as "helping this turn"). */
  begin(row: number): void;
  /** One action for each of `rows`, given each row's transcript and per-dialog random stream. */
  act(rows: readonly number[], contexts: readonly number[][], rngs: readonly Rng[], pool: SessionPool): Promise<AgentDecision[]>;
  /** Free what the agent owns (not the pool's sessions). */
  dispose?(): void;
}

type PoolKey = object;

interface PoolEntry { session: ReferenceSession; step: Map<number, { ctx: number[]; lp: Float32Array }> }

/** One session per model or reference, synced to each row's transcript on demand. */
export class SessionPool {
  private readonly entries = new Map<PoolKey, PoolEntry>();

  constructor(readonly numRows: number) {}

  private static key(ref: ReferencePolicy | TransformerLM): { key: PoolKey; ref: ReferencePolicy } {
    if (ref instanceof ModelReference) return { key: ref.model, ref };
    if ('startSession' in ref && 'helpAction' in ref) return { key: ref, ref: ref as ReferencePolicy };
    return { key: ref, ref: new ModelReference(ref as TransformerLM) };
  }

  /**
   * Next-token log-probabilities of `model` after each row's context (length V, or V + 1 for a
   * reference with HELP). Do not modify the arrays.
   */
  logProbs(model: ReferencePolicy | TransformerLM, rows: readonly number[], contexts: readonly number[][]): Float32Array[] {
    if (model instanceof ConservativeReference) {
      // From the members' shared sessions (the conservative agent and the single imitator read them too).
      const per = model.members.map(k => this.logProbs(model.models[k]!, rows, contexts));
      return rows.map((_, q) => model.combine(per.map(p => p[q]!)));
    }
    const { key, ref } = SessionPool.key(model);
    let e = this.entries.get(key);
    if (!e) {
      e = { session: ref.startSession(Array.from({ length: this.numRows }, () => [])), step: new Map() };
      this.entries.set(key, e);
    }
    const entry = e;
    const need: number[] = [];
    rows.forEach((r, q) => {
      const ctx = contexts[q]!;
      const c = entry.step.get(r);
      if (c && c.ctx.length === ctx.length && isPrefix(c.ctx, ctx)) return;
      const have = entry.session.tokens(r);
      if (isPrefix(have, ctx)) {
        if (ctx.length > have.length) entry.session.extend(r, ctx.slice(have.length));
      } else {
        entry.session.resetRow(r, ctx.slice());
      }
      need.push(q);
    });
    if (need.length) {
      const lps = entry.session.nextLogProbs(need.map(q => rows[q]!));
      need.forEach((q, k) => entry.step.set(rows[q]!, { ctx: contexts[q]!.slice(), lp: lps[k]! }));
    }
    return rows.map(r => entry.step.get(r)!.lp);
  }

  /** Forget a row's cached state (a new dialog starts there). */
  resetRow(row: number): void {
    for (const e of this.entries.values()) { e.step.delete(row); e.session.resetRow(row, []); }
  }

  dispose(): void {
    for (const e of this.entries.values()) e.session.dispose();
    this.entries.clear();
  }
}

function isPrefix(a: readonly number[], b: readonly number[]): boolean {
  if (a.length > b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** log-softmax(logp / T) in float32 (T = 1 returns the input). */
export function temper(logProbs: Float32Array, temperature: number): Float32Array {
  if (temperature === 1) return logProbs;
  if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
  const V = logProbs.length;
  let max = -Infinity;
  for (let j = 0; j < V; j++) max = Math.max(max, logProbs[j]! / temperature);
  let z = 0;
  for (let j = 0; j < V; j++) z += Math.exp(logProbs[j]! / temperature - max);
  const lz = max + Math.log(z);
  const out = new Float32Array(V);
  for (let j = 0; j < V; j++) out[j] = logProbs[j]! / temperature - lz;
  return out;
}

/** An agent that samples its tokens from one language model (the base, an imitator, D, a checkpoint). */
export class ModelAgent implements EvalAgent {
  readonly kind: string;
  constructor(readonly model: TransformerLM, readonly name: string, opts: { temperature?: number; kind?: string } = {}) {
    this.temperature = opts.temperature ?? 1;
    this.kind = opts.kind ?? 'model';
  }
  readonly temperature: number;

  begin(): void {}

  async act(rows: readonly number[], contexts: readonly number[][], rngs: readonly Rng[], pool: SessionPool): Promise<AgentDecision[]> {
    const lps = pool.logProbs(this.model, rows, contexts);
    return lps.map((lp, q) => {
      const pi = temper(lp, this.temperature);
      return { action: sampleToken(pi, { temperature: 1, rng: rngs[q]! }), logProbs: pi };
    });
  }
}
