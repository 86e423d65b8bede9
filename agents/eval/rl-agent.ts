/**
 * RL agents (agents/rl: ppo-kl, kl-budget) as evaluation agents.
 *
 * An RL policy implements the rollout interface (`RolloutPolicy`: begin / resetRow / extendRow /
 * next / sampled / end). `RolloutPolicyAgent` drives it exactly as the training rollout does — the
 * base (KL reference) distributions it reads come from the shared session pool, and a per-row
 * `Episode` record carries the state a policy keeps per dialog (e.g. the KL budget left) — so that
 * the evaluated distribution is the one the agent acts with (for kl-budget: the solved mixture of
 * proposal and base, not the language model alone).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Rng } from '../../core/rng.ts';
import { BadConfig } from '../../core/errors.ts';
import type { TransformerLM } from '../../models/lm.ts';
import { ConservativeReference, ModelReference, klToReference, type ReferencePolicy } from '../imitation/reference.ts';
import { loadEnsemble } from '../imitation/imitators.ts';
import { loadCheckpoint } from '../../models/checkpoint.ts';
import { POLICY_FORMAT, readPolicyFile, type PolicyFile, type ReferenceSpec } from '../rl/policy-file.ts';
import { sampleLogp, type Episode, type RolloutPolicy, type RowContext } from '../rl/rollout.ts';
import type { AgentDecision, EvalAgent, SessionPool } from './agents.ts';

function newEpisode<A>(env: number, tokens: number[]): Episode<A> {
  return {
    id: 0, env, tokens, promptLength: tokens.length, pos: [], actions: [], logp: [], baseLogp: [], kl: [],
    rewards: [], turnEnds: [], timeLeft: [], aux: [], state: {}, exchanges: [], terminated: false, truncated: false,
    endedBy: null, return: 0, startedAt: 0,
  };
}

/** Draw an index from log-probabilities with the dialog's own stream. */
export class RolloutPolicyAgent<A = unknown> implements EvalAgent {
  readonly kind: string;
  private started = false;
  private readonly fresh = new Set<number>();
  private readonly known: number[][] = [];
  private readonly episodes: Episode<A>[] = [];

  /**
   * @param base the KL reference the policy was trained against (it reads its distributions).
   * @param maxTokens the env's token budget (for the time-left inputs).
   */
  constructor(readonly policy: RolloutPolicy<A>, readonly base: ReferencePolicy | TransformerLM, readonly name: string, readonly maxTokens: number, kind = 'rl', private readonly release: () => void = () => {}) {
    this.kind = kind;
  }

  begin(row: number): void { this.fresh.add(row); }

  async act(rows: readonly number[], contexts: readonly number[][], rngs: readonly Rng[], pool: SessionPool): Promise<AgentDecision[]> {
    if (!this.started) {
      if (rows.length !== pool.numRows) throw new Error('RolloutPolicyAgent: the first step must cover every row');
      this.policy.begin(contexts.map(c => c.slice()));
      this.started = true;
    }
    rows.forEach((r, q) => {
      const ctx = contexts[q]!;
      if (this.fresh.has(r) || !this.known[r]) {
        this.fresh.delete(r);
        const ep = newEpisode<A>(r, ctx.slice());
        this.episodes[r] = ep;
        this.known[r] = ctx.slice();
        this.policy.resetRow(r, ep.tokens, ep);
        return;
      }
      const added = ctx.slice(this.known[r]!.length);
      if (added.length) {
        this.episodes[r]!.tokens.push(...added);
        this.policy.extendRow(r, added);
        this.known[r] = ctx.slice();
      }
    });
    const base = pool.logProbs(this.base, rows, contexts);
    const rctx: RowContext<A>[] = rows.map((r, q) => {
      const n = contexts[q]!.length;
      return { episode: this.episodes[r]!, timeLeft: Math.fround(1 - Math.min(n, this.maxTokens) / this.maxTokens), tokensLeft: Math.max(0, this.maxTokens - n) };
    });
    const { logp, aux } = this.policy.next(rows, base, rctx);
    const actions: number[] = [], kls: number[] = [];
    const out: AgentDecision[] = rows.map((r, q) => {
      const lp = Float32Array.from(logp[q]!);
      const a = sampleLogp(lp, rngs[q]!);
      const kl = klToReference(lp, base[q]!);
      const ep = this.episodes[r]!;
      ep.pos.push(contexts[q]!.length); ep.actions.push(a); ep.logp.push(lp[a]!); ep.baseLogp.push(base[q]![a]!); ep.kl.push(kl);
      ep.timeLeft.push(rctx[q]!.timeLeft);
      if (aux) ep.aux.push(aux[q]!);
      actions.push(a); kls.push(kl);
      return { action: a, logProbs: lp };
    });
    this.policy.sampled?.(rows, actions, kls, rctx);
    return out;
  }

  /** End the policy's rollout and free its variables (two policies of one kind cannot coexist: their variable names collide). */
  dispose(): void {
    if (this.started) this.policy.end();
    (this.policy as { dispose?: () => void }).dispose?.();
    this.release();
  }
}

/** The run config an RL trainer wrote (`<run>/config.json`). */
export interface RlRunConfig { algo: 'ppo-kl' | 'kl-budget'; budget?: number; criticHidden?: number; trainLayers?: number | 'all'; targetHorizon?: number | null; budgetAccounting?: 'exact' | 'sampled'; meta?: { baseModel?: string; referenceName?: string }; [k: string]: unknown }

/**
 * What a checkpoint written before checkpoint/agent.json existed says about its policy, from the
 * run's config.json (the trainers' defaults for fields it lacks).
 */
function policyFromConfig(cfg: RlRunConfig, fallbackBase: string): PolicyFile {
  const refName = cfg.meta?.referenceName;
  // 'model' is what the trainers called a bare language model given as the reference (the base itself, in compare).
  const reference: ReferenceSpec = refName === undefined || refName === 'base' || refName === 'model' ? { kind: 'base', name: 'base' } : { kind: 'unrecorded', name: refName };
  const common = { format: POLICY_FORMAT, version: 1 as const, update: 0, baseModel: cfg.meta?.baseModel ?? fallbackBase, baseModelSha256: null, reference };
  if (cfg.algo === 'ppo-kl') return { ...common, algo: 'ppo-kl', trainLayers: cfg.trainLayers ?? 'all' };
  return { ...common, algo: 'kl-budget', criticHidden: cfg.criticHidden ?? 128, targetHorizon: cfg.targetHorizon === undefined ? 16 : cfg.targetHorizon, budgetAccounting: cfg.budgetAccounting ?? 'exact', budget: cfg.budget ?? 10 };
}

/** The policy description of a run folder: checkpoint/agent.json, else its config.json. */
export async function readRunPolicy(runDir: string, checkpoint = 'checkpoint'): Promise<PolicyFile> {
  const cfg = JSON.parse(await readFile(path.join(runDir, 'config.json'), 'utf8')) as RlRunConfig;
  if (cfg.algo !== 'ppo-kl' && cfg.algo !== 'kl-budget') throw new BadConfig(`${runDir}/config.json: unknown algo '${String(cfg.algo)}'`);
  return readPolicyFile(path.join(runDir, checkpoint)) ?? policyFromConfig(cfg, '');
}

/** Rebuild the KL reference a checkpoint records (see agents/rl/policy-file.ts). */
async function rebuildReference(spec: ReferenceSpec, base: TransformerLM, runDir: string): Promise<{ ref: ReferencePolicy | TransformerLM; dispose: () => void }> {
  switch (spec.kind) {
    case 'base': return { ref: base, dispose: () => {} };
    case 'model': {
      const m = (await loadCheckpoint(spec.dir)).model;
      return { ref: new ModelReference(m, spec.name), dispose: () => m.dispose() };
    }
    case 'conservative': {
      const ens = await loadEnsemble(spec.ensemble);
      const ref = new ConservativeReference(ens.models, spec.members, spec.name, { normalise: spec.normalise });
      return { ref, dispose: () => ens.dispose() };
    }
    case 'unrecorded':
      throw new BadConfig(`${runDir} was trained against the KL reference '${spec.name}', which its checkpoint does not describe: pass that reference explicitly`);
  }
}

/**
 * Load an RL run (its folder, with config.json and checkpoint/) as an evaluation agent that acts
 * as the policy acted in training: kl-budget with its target horizon, budget accounting and budget,
 * mixing its proposal with the KL reference it was trained against. `base` is the model it was
 * trained on (kl-budget reads its features from it); the reference is `opts.reference` when given,
 * else the one the checkpoint records (a conservative ensemble is loaded from its folder). ppo-kl's
 * actions do not depend on the reference, so a ppo-kl run whose reference is unrecorded loads
 * against its base.
 */
export async function loadRlAgent(runDir: string, base: TransformerLM, opts: { name: string; maxTokens: number; reference?: ReferencePolicy | TransformerLM; checkpoint?: string }): Promise<RolloutPolicyAgent> {
  // opts.checkpoint: the run's checkpoint folder (default checkpoint/, the latest; checkpoint-UPDATE/ with keepCheckpoints).
  const pf = await readRunPolicy(runDir, opts.checkpoint);
  const ck = path.join(runDir, opts.checkpoint ?? 'checkpoint');
  const spec: ReferenceSpec = pf.algo === 'ppo-kl' && pf.reference.kind === 'unrecorded' ? { kind: 'base', name: 'base' } : pf.reference;
  const reference = opts.reference ? { ref: opts.reference, dispose: () => {} } : await rebuildReference(spec, base, runDir);
  if (pf.algo === 'ppo-kl') {
    const { loadPpoKlPolicy } = await import('../rl/ppo-kl.ts');
    const policy = await loadPpoKlPolicy(ck, 0);
    return new RolloutPolicyAgent(policy as unknown as RolloutPolicy, reference.ref, opts.name, opts.maxTokens, 'ppo-kl', reference.dispose);
  }
  const { loadKlBudgetPolicy } = await import('../rl/kl-budget.ts');
  const policy = await loadKlBudgetPolicy(ck, base, pf);
  policy.budget = pf.budget;
  return new RolloutPolicyAgent(policy as unknown as RolloutPolicy, reference.ref, opts.name, opts.maxTokens, 'kl-budget', reference.dispose);
}
