/**
 * Rollouts of a token-level agent in a dialog env (TeacherStudent-v0 and any env with its
 * observation format), local or over the wire: the vector env runs N dialogs at once, the agent
 * samples one token per dialog per step, and finished dialogs come back as `Episode` records with
 * everything the RL algorithms and the evaluation need (the agent's tokens, behaviour and base
 * log-probabilities, the exact per-token KL, rewards, turn boundaries, the dialog's turns).
 *
 * - The base policy runs here, in its own KV-cached session (the agent computes KL to the same
 *   base model the env uses; over the wire the agent loads or fetches it). Another KL reference
 *   can take its place (`reference`, e.g. the conservative reference of agents/imitation).
 * - The vector env autoresets in `same-step` mode, so every env step is a real step: an episode
 *   that ends is replaced at once, and episodes still running when a rollout stops continue in the
 *   next one (their earlier tokens keep the behaviour log-probabilities they were sampled with,
 *   which is what PPO's importance ratio needs).
 * - Token mode: one action = one token (the observation is the transcript's token ids).
 *   Utterance mode: the agent writes a whole teacher utterance token by token (stopping at the
 *   student turn marker or a length cap) and sends it as text; the agent's own token view of the
 *   transcript is what it conditions on and what it is trained on.
 */
import type { VectorEnv, VectorStepResult, Info } from '../../env/core.ts';
import { Rng } from '../../core/rng.ts';
import { BadConfig } from '../../core/errors.ts';
import type { DialogTokenizer } from '../../env/students.ts';
import type { TransformerLM } from '../../models/lm.ts';
import { exactKl } from './kl.ts';
import { RewardStatsTracker } from './reward-stats.ts';

/** What the rollout needs of the KL reference's KV-cached session (an `LMSession` or a reference's session). */
export interface ReferenceSessionLike {
  nextLogProbs(rows?: readonly number[]): Float32Array[];
  extend(row: number, tokens: readonly number[]): void;
  resetRow(row: number, prefix: number[]): void;
  dispose(): void;
}

/**
 * The policy the agent's KL is measured against: the base model by default, or any reference with
 * the same vocabulary (e.g. the conservative reference of agents/imitation, whose distributions
 * have one more entry, HELP, that the agent never takes).
 */
export interface KlReference {
  readonly name: string;
  readonly vocabSize: number;
  /** Entries per distribution: V, or V + 1 with HELP. */
  readonly outputSize: number;
  startSession(prefixes: number[][]): ReferenceSessionLike;
}

/** One exchange of a dialog as the agent saw it. */
export interface Exchange {
  teacher: string;
  student: string | null;
  reward: number;
  /** Agent tokens in the teacher's turn, the turn marker excluded. */
  teacherTokens: number;
  /** Tokens of the student's reply, markers excluded. */
  studentTokens: number;
  /** The reply was cut by the end of the episode (unrewarded). */
  partial?: boolean;
  /** The env's gold reward of the reply (`info.goldReward`, kwargs.goldReward): measured, never optimised. */
  gold?: number;
}

/** A finished (or running) dialog from the agent's side. Per-action arrays are aligned. */
export interface Episode<A = unknown> {
  /** Running number of the episode in this collector. */
  id: number;
  /** Sub-env that ran it. */
  env: number;
  /** The agent's view of the transcript, prompt included. */
  tokens: number[];
  promptLength: number;
  /** Index in `tokens` of each action. */
  pos: number[];
  actions: number[];
  /** log π_behaviour(a|s) when sampled. */
  logp: number[];
  /** log p_base(a|s). */
  baseLogp: number[];
  /** Exact KL(π_behaviour(·|s) ‖ p_base(·|s)). */
  kl: number[];
  /** Env reward received after each action. */
  rewards: number[];
  /** The action ended a teacher turn (a turn boundary for γ). */
  turnEnds: boolean[];
  /** Fraction of the env's token budget left when each action was chosen. */
  timeLeft: number[];
  /** Per-action data the policy attached (e.g. the KL budget left). */
  aux: A[];
  /** Per-episode scalars the policy keeps (e.g. its KL budget). */
  state: Record<string, number>;
  exchanges: Exchange[];
  terminated: boolean;
  truncated: boolean;
  endedBy: string | null;
  /** Sum of env rewards. */
  return: number;
  /** Update count of the policy when the episode started. */
  startedAt: number;
}

export interface RowContext<A = unknown> {
  episode: Episode<A>;
  /** Fraction of the token budget left (from the observation). */
  timeLeft: number;
  /** Tokens left before the env's token limit. */
  tokensLeft: number;
}

/** What a rollout needs from an agent. Rows are sub-env indexes. */
export interface RolloutPolicy<A = unknown> {
  /** Start of a rollout (the policy's weights may have changed): every row's current transcript. */
  begin(transcripts: readonly number[][]): void;
  /** Row `row` starts a new episode with these tokens. */
  resetRow(row: number, tokens: readonly number[], episode: Episode<A>): void;
  /** Tokens were appended to row `row` (the agent's action, the student's reply…). */
  extendRow(row: number, tokens: readonly number[]): void;
  /** The behaviour policy's next-token log-probabilities for `rows` (base: the base policy's). */
  next(rows: readonly number[], base: readonly Float32Array[], ctx: readonly RowContext<A>[]): { logp: ArrayLike<number>[]; aux?: A[] };
  /** The tokens sampled for `rows`, with the exact KL of the distribution each came from. */
  sampled?(rows: readonly number[], actions: readonly number[], kl: readonly number[], ctx: readonly RowContext<A>[]): void;
  /** End of a rollout (free caches). */
  end(): void;
}

export interface TokenObs { tokens: number[]; length: number[]; timeLeft: number[] }
export interface TextObs { text: string; timeLeft: number[] }

/** A bare language model as a KL reference. */
export function asReference(r: KlReference | TransformerLM): KlReference {
  if ('outputSize' in r) return r;
  return { name: 'model', vocabSize: r.config.vocabSize, outputSize: r.config.vocabSize, startSession: prefixes => r.startSession(prefixes) };
}

export interface CollectorOptions {
  seed: number;
  /** KL reference (default: the base model). */
  reference?: KlReference;
  actionMode: 'token' | 'utterance';
  /** Utterance mode: most tokens per teacher utterance. */
  maxUtteranceTokens?: number;
}

export interface RolloutStats {
  agentSteps: number;
  /** Actions of the returned episodes that were sampled in earlier rollouts (by an older policy). */
  offPolicySteps: number;
  envSteps: number;
  seconds: number;
  envSeconds: number;
  agentSeconds: number;
}

export interface CollectResult<A> { episodes: Episode<A>[]; stats: RolloutStats }

/** Draw an index from log-probabilities. */
let sampleScratch = new Float64Array(0);

export function sampleLogp(logp: ArrayLike<number>, rng: Rng): number {
  const V = logp.length;
  let m = -Infinity;
  for (let j = 0; j < V; j++) if (logp[j]! > m) m = logp[j]!;
  // One scratch array for every draw (a fresh one per token was most of a rollout's garbage).
  if (sampleScratch.length < V) sampleScratch = new Float64Array(V);
  const w = sampleScratch.subarray(0, V);
  for (let j = 0; j < V; j++) w[j] = Math.exp(logp[j]! - m);
  return rng.categorical(w);
}

export class RolloutCollector<A = unknown> {
  readonly numEnvs: number;
  private readonly rng: Rng;
  private base: ReferenceSessionLike | null = null;
  private open: Episode<A>[] = [];
  private timeLeft: number[] = [];
  private tokensLeft: number[] = [];
  private texts: string[] = [];
  private nextId = 0;
  /** Policy version, stamped on episodes as they start. */
  version = 0;
  /** The statistics of the env's z-scored reward terms, rebuilt from the infos (reward-stats.ts). */
  readonly rewardStats = new RewardStatsTracker();

  constructor(
    readonly envs: VectorEnv<unknown, unknown>,
    readonly baseModel: TransformerLM,
    readonly tokenizer: DialogTokenizer,
    readonly opts: CollectorOptions,
  ) {
    if (envs.autoresetMode !== 'same-step') throw new BadConfig(`the rollout needs a vector env with autoresetMode 'same-step', got '${envs.autoresetMode}'`);
    if (tokenizer.vocabSize !== baseModel.config.vocabSize) throw new BadConfig(`the base model's vocabulary (${baseModel.config.vocabSize}) differs from the env's tokenizer (${tokenizer.vocabSize})`);
    if (opts.reference && opts.reference.vocabSize !== tokenizer.vocabSize) throw new BadConfig(`the KL reference's vocabulary (${opts.reference.vocabSize}) differs from the env's tokenizer (${tokenizer.vocabSize})`);
    this.numEnvs = envs.numEnvs;
    this.rng = new Rng(opts.seed ^ 0x5bd1e995);
  }

  /** Episodes currently running (for checkpoints: they are lost on resume, which is fine). */
  get running(): readonly Episode<A>[] { return this.open; }

  private newEpisode(env: number, tokens: number[]): Episode<A> {
    return {
      id: this.nextId++, env, tokens, promptLength: tokens.length, pos: [], actions: [], logp: [], baseLogp: [], kl: [],
      rewards: [], turnEnds: [], timeLeft: [], aux: [], state: {}, exchanges: [], terminated: false, truncated: false,
      endedBy: null, return: 0, startedAt: this.version,
    };
  }

  private obsTokens(obs: unknown): number[] {
    if (this.opts.actionMode === 'utterance') {
      const o = obs as TextObs;
      if (typeof o?.text !== 'string') throw new BadConfig('utterance mode needs observations with a `text` field');
      return this.tokenizer.encode(o.text);
    }
    const o = obs as TokenObs;
    if (!Array.isArray(o?.tokens) || !Array.isArray(o.length)) throw new BadConfig('token mode needs observations {tokens, length, timeLeft} (TeacherStudent-v0 format)');
    return o.tokens.slice(0, o.length[0]!);
  }

  private setClock(row: number, obs: unknown, info: Info): void {
    const tl = (obs as { timeLeft?: number[] }).timeLeft?.[0];
    this.timeLeft[row] = typeof tl === 'number' ? tl : 1;
    const left = info.tokensLeft;
    this.tokensLeft[row] = typeof left === 'number' ? left : Number.POSITIVE_INFINITY;
  }

  private async start(policy: RolloutPolicy<A>): Promise<void> {
    const r = await this.envs.reset({ seed: this.opts.seed });
    this.open = r.observations.map((obs, i) => {
      const ep = this.newEpisode(i, this.obsTokens(obs));
      this.setClock(i, obs, r.infos[i] ?? {});
      return ep;
    });
    const prefixes = this.open.map(e => [...e.tokens]);
    this.base = this.opts.reference ? this.opts.reference.startSession(prefixes) : this.baseModel.startSession(prefixes);
    policy.begin(this.open.map(e => e.tokens));
    this.open.forEach((ep, i) => policy.resetRow(i, ep.tokens, ep));
  }

  /**
   * Step the envs until at least `minEpisodes` episodes have finished (all finished ones are
   * returned), or, with `perEnv`, until every sub-env has finished that many (then exactly
   * `perEnv` per sub-env are returned, the first ones: an unbiased sample for evaluation).
   */
  async collect(policy: RolloutPolicy<A>, opts: { minEpisodes?: number; perEnv?: number; onStep?: (done: number) => void }): Promise<CollectResult<A>> {
    const t0 = performance.now();
    const stats: RolloutStats = { agentSteps: 0, offPolicySteps: 0, envSteps: 0, seconds: 0, envSeconds: 0, agentSeconds: 0 };
    if (!this.base) await this.start(policy);
    else policy.begin(this.open.map(e => e.tokens));
    const carried = new Map(this.open.map(e => [e, e.actions.length]));
    const done: Episode<A>[] = [];
    const perEnvDone = new Array<number>(this.numEnvs).fill(0);
    const finished = () => opts.perEnv !== undefined ? perEnvDone.every(n => n >= opts.perEnv!) : done.length >= (opts.minEpisodes ?? 1);
    try {
      while (!finished()) {
        const ended = this.opts.actionMode === 'token' ? await this.tokenStep(policy, stats) : await this.utteranceStep(policy, stats);
        for (const ep of ended) {
          if (opts.perEnv !== undefined && perEnvDone[ep.env]! >= opts.perEnv) continue;
          perEnvDone[ep.env]!++;
          done.push(ep);
          stats.offPolicySteps += carried.get(ep) ?? 0;
        }
        opts.onStep?.(done.length);
      }
    } finally {
      policy.end();
    }
    stats.seconds = (performance.now() - t0) / 1000;
    return { episodes: done, stats };
  }

  private contexts(rows: readonly number[]): RowContext<A>[] {
    return rows.map(r => ({ episode: this.open[r]!, timeLeft: this.timeLeft[r]!, tokensLeft: this.tokensLeft[r]! }));
  }

  /** Sample one token for each of `rows` and record it (not yet appended to the transcript). */
  private act(policy: RolloutPolicy<A>, rows: number[], stats: RolloutStats): number[] {
    const t0 = performance.now();
    const base = this.base!.nextLogProbs(rows);
    const ctx = this.contexts(rows);
    const { logp, aux } = policy.next(rows, base, ctx);
    const actions: number[] = [], kls: number[] = [];
    rows.forEach((r, k) => {
      const lp = logp[k]!, bp = base[k]!;
      const a = sampleLogp(lp, this.rng);
      const ep = this.open[r]!;
      const kl = exactKl(lp, bp);
      ep.actions.push(a); ep.logp.push(lp[a]!); ep.baseLogp.push(bp[a]!); ep.kl.push(kl);
      ep.timeLeft.push(this.timeLeft[r]!);
      if (aux) ep.aux.push(aux[k]!);
      actions.push(a); kls.push(kl);
    });
    policy.sampled?.(rows, actions, kls, ctx);
    stats.agentSteps += rows.length;
    stats.agentSeconds += (performance.now() - t0) / 1000;
    return actions;
  }

  private append(policy: RolloutPolicy<A>, row: number, tokens: number[]): void {
    if (!tokens.length) return;
    this.open[row]!.tokens.push(...tokens);
    this.base!.extend(row, tokens);
    policy.extendRow(row, tokens);
  }

  /** Close the exchange an action ended (reward, reply, lengths) from the step's info. */
  private closeTurn(ep: Episode<A>, info: Info, reward: number, studentTokens: number): void {
    // Actions since the previous turn boundary; the marker that ended the turn does not count.
    let teacherTokens = 1;
    for (let t = ep.actions.length - 2; t >= 0 && !ep.turnEnds[t]; t--) teacherTokens++;
    const last = ep.actions[ep.actions.length - 1];
    if (last === this.tokenizer.special.student || last === this.tokenizer.special.endOfText) teacherTokens--;
    const complete = typeof info.studentReply === 'string';
    ep.exchanges.push({
      teacher: typeof info.teacherUtterance === 'string' ? info.teacherUtterance : '',
      student: complete ? info.studentReply as string : (typeof info.partialReply === 'string' ? info.partialReply : null),
      reward, teacherTokens: Math.max(0, teacherTokens), studentTokens,
      ...(complete ? {} : { partial: true }),
      ...(typeof info.goldReward === 'number' ? { gold: info.goldReward } : {}),
    });
  }

  private finish(ep: Episode<A>, terminated: boolean, truncated: boolean, info: Info): void {
    ep.terminated = terminated;
    ep.truncated = truncated;
    ep.endedBy = typeof info.endedBy === 'string' ? info.endedBy : typeof info.truncatedBy === 'string' ? info.truncatedBy : null;
    ep.return = ep.rewards.reduce((s, r) => s + r, 0);
  }

  /** Close row `i`'s episode on its last step and open the next one on the env's autoreset observation. */
  private endAndRestart(policy: RolloutPolicy<A>, i: number, ep: Episode<A>, res: VectorStepResult, info: Info): Episode<A> {
    this.finish(ep, res.terminated[i]!, res.truncated[i]!, info);
    const fresh = this.newEpisode(i, this.obsTokens(res.observations[i]));
    this.open[i] = fresh;
    this.setClock(i, res.observations[i], res.infos[i] ?? {});
    this.base!.resetRow(i, [...fresh.tokens]);
    policy.resetRow(i, fresh.tokens, fresh);
    return ep;
  }

  private async tokenStep(policy: RolloutPolicy<A>, stats: RolloutStats): Promise<Episode<A>[]> {
    const rows = this.open.map((_, i) => i);
    const actions = this.act(policy, rows, stats);
    const t0 = performance.now();
    const res = await this.envs.step(actions);
    stats.envSeconds += (performance.now() - t0) / 1000;
    stats.envSteps++;
    const ended: Episode<A>[] = [];
    const sp = this.tokenizer.special;
    for (const i of rows) {
      const ep = this.open[i]!;
      const a = actions[i]!;
      const over = res.terminated[i]! || res.truncated[i]!;
      const info = (over ? res.infos[i]!.finalInfo : res.infos[i]) as Info ?? {};
      const obs = over ? res.infos[i]!.finalObservation : res.observations[i];
      this.rewardStats.push(i, info.rewardComponents);
      const pos = ep.tokens.length;
      const now = obs !== undefined ? this.obsTokens(obs) : [...ep.tokens, a];
      const added = now.slice(pos);
      if (added[0] !== a) throw new Error(`env ${i}: the transcript does not continue with the agent's token ${a} (got ${String(added[0])})`);
      ep.pos.push(pos);
      ep.rewards.push(res.rewards[i]!);
      const turnEnd = a === sp.student || a === sp.endOfText;
      ep.turnEnds.push(turnEnd);
      if (turnEnd) {
        const reply = added.slice(1);
        const studentTokens = reply.length - (reply[reply.length - 1] === sp.teacher || reply[reply.length - 1] === sp.endOfText ? 1 : 0);
        this.closeTurn(ep, info, res.rewards[i]!, Math.max(0, studentTokens));
      }
      if (over) {
        ep.tokens.push(...added);
        ended.push(this.endAndRestart(policy, i, ep, res, info));
      } else {
        this.append(policy, i, added);
        this.setClock(i, obs, info);
      }
    }
    return ended;
  }

  private async utteranceStep(policy: RolloutPolicy<A>, stats: RolloutStats): Promise<Episode<A>[]> {
    const sp = this.tokenizer.special;
    const cap = this.opts.maxUtteranceTokens ?? 64;
    const C = this.baseModel.config.contextLength;
    const gen: number[][] = this.open.map(() => []);
    const limit = this.open.map((ep, i) => Math.max(1, Math.min(cap, this.tokensLeft[i]!, C - ep.tokens.length)));
    let active = this.open.map((_, i) => i);
    while (active.length) {
      const actions = this.act(policy, active, stats);
      const still: number[] = [];
      active.forEach((r, k) => {
        const a = actions[k]!;
        const ep = this.open[r]!;
        ep.pos.push(ep.tokens.length);
        ep.rewards.push(0);
        ep.turnEnds.push(false);
        this.append(policy, r, [a]);
        gen[r]!.push(a);
        if (a !== sp.student && a !== sp.endOfText && gen[r]!.length < limit[r]!) still.push(r);
      });
      active = still;
    }
    const texts = gen.map(g => this.tokenizer.decode(g.filter(t => t !== sp.student && t !== sp.endOfText)));
    const t0 = performance.now();
    const res = await this.envs.step(texts);
    stats.envSeconds += (performance.now() - t0) / 1000;
    stats.envSteps++;
    const ended: Episode<A>[] = [];
    for (let i = 0; i < this.open.length; i++) {
      const ep = this.open[i]!;
      const over = res.terminated[i]! || res.truncated[i]!;
      const info = (over ? res.infos[i]!.finalInfo : res.infos[i]) as Info ?? {};
      this.rewardStats.push(i, info.rewardComponents);
      const last = ep.actions.length - 1;
      ep.rewards[last] = res.rewards[i]!;
      ep.turnEnds[last] = true;
      const g = gen[i]!;
      const lastTok = g[g.length - 1];
      // The env ends the utterance itself when the agent hit the length cap.
      const tail: number[] = lastTok === sp.student || lastTok === sp.endOfText ? [] : [sp.student];
      const reply = typeof info.studentReply === 'string' ? info.studentReply : null;
      const replyIds = reply !== null ? this.tokenizer.encode(reply) : [];
      if (reply !== null) this.closeTurn(ep, info, res.rewards[i]!, replyIds.length);
      if (over) {
        ep.tokens.push(...tail, ...replyIds);
        ended.push(this.endAndRestart(policy, i, ep, res, info));
      } else {
        this.append(policy, i, [...tail, ...replyIds, sp.teacher]);
        this.setClock(i, res.observations[i], info);
      }
    }
    return ended;
  }

  /** Close the base session and the env. */
  async close(): Promise<void> {
    this.base?.dispose();
    this.base = null;
    await this.envs.close();
  }
}
