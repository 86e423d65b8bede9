/**
 * Batch evaluation of one agent on a token-mode dialog env (TeacherStudent-v0), in process or
 * against a server: N dialogs with fixed seeds, one row of metrics per dialog.
 *
 * Seeds: dialog j runs on env seed `seed + j` and draws the agent's randomness from its own stream
 * (`mixSeed(seed, j)`), so a dialog is reproducible on its own. Dialogs are dealt to the vector
 * env's sub-envs statically (sub-env i runs dialogs i, i + n, i + 2n, …; `autoresetMode:
 * "disabled"` and explicit seeded resets), so the same (seed, episodes, numEnvs) gives the same
 * rows bit for bit. A sub-env that has run out of dialogs while others still run plays a discarded
 * filler dialog (a vector env steps every sub-env).
 *
 * Per dialog: episode return (γ = 1), exact KL of the agent's effective next-token distribution to
 * each reference summed over the agent's tokens (and the NLL of its tokens under each reference:
 * perplexity under D) and each token's KL (packed, `klTokens`), teacher turns with the two
 * measures of saying nothing (`empty`: no word before the marker; `short`: ≤ N content tokens; see
 * turns.ts; only completed turns) and each turn's KL, teacher / student turn lengths, help
 * requests, distinct-1/2 of the teacher's words, repeated n-grams of the teacher's turns as Cohen
 * et al. count them, mean signed sentiment (VADER) of the student's replies.
 */
import type { VectorEnv } from '../../env/core.ts';
import { Rng } from '../../core/rng.ts';
import type { DialogTokenizer } from '../../env/students.ts';
import type { SentimentScorer } from '../../rewards/types.ts';
import { VaderScorer } from '../../rewards/vader.ts';
import type { TransformerLM } from '../../models/lm.ts';
import { klToReference, type ReferencePolicy } from '../imitation/reference.ts';
import { SessionPool, type EvalAgent } from './agents.ts';
import { distinctOfTexts, mixSeed } from './stats.ts';
import { BadConfig } from '../../core/errors.ts';
import { DEFAULT_NGRAM_MAX, DEFAULT_SHORT_TURN_TOKENS, isEmptyTurn, isShortTurn, ngramRepetition, packF32, type NgramRepetition } from './turns.ts';

export interface EvalReference {
  /** Key in the rows (`base`, `demonstrator`, `conservative`). */
  name: string;
  ref: ReferencePolicy | TransformerLM;
}

export interface DialogRow {
  agent: string;
  kind: string;
  dialog: number;
  envSeed: number;
  /** Episode return (sum of rewards, γ = 1). */
  reward: number;
  /** Sum of the env's gold reward (`info.goldReward`, kwargs.goldReward: scored, never rewarded); NaN when the env reports none. */
  goldReward: number;
  /** Completed exchanges (teacher turn + student reply). */
  exchanges: number;
  terminated: boolean;
  truncated: boolean;
  /** `student`, `teacher` (termination), or the env's `truncatedBy`. */
  endedBy: string;
  /** Tokens the agent's side wrote (its own and the helper's). */
  agentTokens: number;
  /** Of those, written by the helper. */
  helpedTokens: number;
  /** Steps where the agent itself decided (not while the helper writes a turn). */
  decisions: number;
  helpRequests: number;
  /** Completed teacher turns; of those, `empty` ones (no word before the marker) and `short` ones (≤ `shortTurnTokens` content tokens). */
  teacherTurns: number;
  emptyTurns: number;
  shortTurns: number;
  /** The N of `short` this row was counted with. */
  shortTurnTokens: number;
  /** emptyTurns / teacherTurns, shortTurns / teacherTurns: NaN (undefined, not 0) when no turn was completed. */
  emptyShare: number;
  shortShare: number;
  /** Content tokens of each completed teacher turn (the marker not counted). */
  teacherTurnTokens: number[];
  /** Per completed teacher turn: whether it was empty, and its KL (its tokens and its marker) by reference name. */
  turnEmpty: boolean[];
  turnKl: Record<string, number[]>;
  /** KL of each agent token (in the order of the agent's tokens), by reference name, packed (turns.ts `unpackF32`). */
  klTokens: Record<string, string>;
  /** Repeated n-grams of the teacher's turns, n = 1…ngramMax (turns.ts). */
  repetition: NgramRepetition[];
  studentTurnTokens: number[];
  /** The env's reward at each student reply (the step the reply came in), in order: a logged dialog's per-turn rewards. */
  replyRewards: number[];
  /** Σ over the agent's tokens of KL(π(·|s) ‖ ref(·|s)), by reference name (NaN when unknown). */
  kl: Record<string, number>;
  /** Σ over the agent's tokens of −log ref(a|s), by reference name. */
  nll: Record<string, number>;
  /** Tokens counted in `kl`/`nll` (all agent tokens whose distribution is known). */
  scoredTokens: number;
  /** Mean signed sentiment of the student's replies (NaN when there were none). */
  sentiment: number;
  distinct1: number;
  distinct2: number;
  teacherTexts: string[];
  studentTexts: string[];
  /** The env's prompt: the dialog's text before the teacher's first token (what a judge reads first). */
  prompt: string;
  /** The whole transcript (prompt included) when asked for, with its token ids and the positions of the agent's tokens. */
  transcript?: string;
  tokens?: number[];
  agentPositions?: number[];
  /** Positions of tokens the helper wrote (with `transcripts`). */
  helpedPositions?: number[];
}

export interface EvaluateOptions {
  /** A token-mode vector env with `autoresetMode: "disabled"` (local `makeVec` or `connectVectorEnv`). */
  env: VectorEnv;
  agent: EvalAgent;
  episodes: number;
  seed: number;
  tokenizer: DialogTokenizer;
  references?: EvalReference[];
  /** Sentiment of the student's replies (default VADER). */
  sentiment?: SentimentScorer;
  /** Keep each dialog's transcript text in its row. */
  transcripts?: boolean;
  /** Shared session pool (default: a fresh one, disposed at the end). */
  pool?: SessionPool;
  onDialog?: (row: DialogRow) => void;
  onHelp?: (e: { dialog: number; position: number; theta: number }) => void;
  /** N of the `short` measure (default 4). */
  shortTurnTokens?: number;
  /** Largest n of the repetition counts (default 4). */
  ngramMax?: number;
  /** Progress lines (every ~10% of dialogs). */
  log?: (line: string) => void;
}

interface RowState {
  dialog: number;
  /** A filler dialog (beyond `episodes`): played, not recorded. */
  filler: boolean;
  k: number;
  rng: Rng;
  ctx: number[];
  curTurn: number[];
  /** KL of the current turn's tokens so far, by reference index. */
  curKl: number[];
  /** KL of every agent token, by reference index. */
  tokKl: number[][];
  positions: number[];
  helpedPositions: number[];
  acc: DialogRow;
}

interface TokenObs { tokens: number[]; length: number[] }

function contextOf(obs: unknown): number[] {
  const o = obs as TokenObs;
  if (!o || !Array.isArray(o.tokens) || !Array.isArray(o.length)) throw new TypeError('evaluate: the env must be in token mode (observation {tokens, length, timeLeft})');
  return o.tokens.slice(0, o.length[0]);
}

export async function evaluate(opts: EvaluateOptions): Promise<DialogRow[]> {
  const { env, agent, episodes, seed, tokenizer } = opts;
  if (env.autoresetMode !== 'disabled') throw new RangeError(`evaluate: the env must have autoresetMode "disabled", got "${env.autoresetMode}"`);
  if (!Number.isInteger(episodes) || episodes < 1) throw new RangeError(`evaluate: episodes must be a positive integer, got ${episodes}`);
  const shortMax = opts.shortTurnTokens ?? DEFAULT_SHORT_TURN_TOKENS;
  if (!Number.isInteger(shortMax) || shortMax < 0) throw new BadConfig(`evaluate: shortTurnTokens must be a non-negative integer, got ${shortMax}`);
  const ngramMax = opts.ngramMax ?? DEFAULT_NGRAM_MAX;
  const n = env.numEnvs;
  const refs = opts.references ?? [];
  const scorer = opts.sentiment ?? new VaderScorer();
  const pool = opts.pool ?? new SessionPool(n);
  if (pool.numRows !== n) throw new RangeError(`evaluate: the session pool has ${pool.numRows} rows, the env ${n}`);
  const sp = tokenizer.special;
  const turnEnd = new Set([sp.student, sp.endOfText]);
  const rows: DialogRow[] = [];
  const log = opts.log;
  let nextReport = Math.max(1, Math.ceil(episodes / 10));

  const fresh = (i: number, k: number, ctx: number[]): RowState => {
    const dialog = i + k * n;
    agent.begin(i);
    return {
      dialog, filler: dialog >= episodes, k, rng: new Rng(mixSeed(seed, dialog, 0x5eed)), ctx, curTurn: [], positions: [], helpedPositions: [],
      curKl: refs.map(() => 0), tokKl: refs.map(() => []),
      acc: {
        agent: agent.name, kind: agent.kind, dialog, envSeed: seed + dialog, reward: 0, goldReward: NaN, exchanges: 0, terminated: false, truncated: false, endedBy: '',
        agentTokens: 0, helpedTokens: 0, decisions: 0, helpRequests: 0, teacherTurns: 0, emptyTurns: 0, shortTurns: 0, shortTurnTokens: shortMax,
        emptyShare: NaN, shortShare: NaN,
        teacherTurnTokens: [], turnEmpty: [], turnKl: Object.fromEntries(refs.map(r => [r.name, []])), klTokens: {}, repetition: [], studentTurnTokens: [], replyRewards: [],
        kl: Object.fromEntries(refs.map(r => [r.name, 0])), nll: Object.fromEntries(refs.map(r => [r.name, 0])), scoredTokens: 0,
        sentiment: NaN, distinct1: 0, distinct2: 0, teacherTexts: [], studentTexts: [], prompt: tokenizer.decode(ctx),
      },
    };
  };

  const first = await env.reset({ seed });
  const state: RowState[] = first.observations.map((o, i) => fresh(i, 0, contextOf(o)));
  let done = 0;

  const finish = async (s: RowState, info: Record<string, unknown>, terminated: boolean, truncated: boolean): Promise<void> => {
    const a = s.acc;
    if (s.curTurn.length) a.teacherTexts.push(tokenizer.decode(s.curTurn));
    a.terminated = terminated; a.truncated = truncated;
    a.endedBy = terminated ? String(info.endedBy ?? 'terminated') : String(info.truncatedBy ?? 'truncated');
    // A dialog without a completed teacher turn has no share of empty turns (NaN, left out of means).
    a.emptyShare = a.teacherTurns ? a.emptyTurns / a.teacherTurns : NaN;
    a.shortShare = a.teacherTurns ? a.shortTurns / a.teacherTurns : NaN;
    refs.forEach((r, k) => { a.klTokens[r.name] = packF32(s.tokKl[k]!); });
    a.repetition = ngramRepetition(a.teacherTexts, ngramMax);
    if (a.studentTexts.length) {
      const sc = await scorer.score(a.studentTexts);
      a.sentiment = sc.reduce((x, y) => x + y.signed, 0) / sc.length;
    }
    const d = distinctOfTexts(a.teacherTexts);
    a.distinct1 = d.distinct1; a.distinct2 = d.distinct2;
    if (opts.transcripts) {
      a.transcript = tokenizer.decode(s.ctx);
      a.tokens = s.ctx.slice();
      a.agentPositions = s.positions;
      a.helpedPositions = s.helpedPositions;
    }
    rows.push(a);
    done++;
    opts.onDialog?.(a);
    if (log && (done >= nextReport || done === episodes)) {
      nextReport += Math.max(1, Math.ceil(episodes / 10));
      log(`eval ${agent.name}: ${done}/${episodes} dialogs`);
    }
  };

  try {
    while (done < episodes) {
      const all = state.map((_, i) => i);
      const contexts = state.map(s => s.ctx);
      const rngs = state.map(s => s.rng);
      const decisions = await agent.act(all, contexts, rngs, pool);
      const real = all.filter(i => !state[i]!.filler);
      const refLps = refs.map(r => pool.logProbs(r.ref, real, real.map(i => contexts[i]!)));
      real.forEach((i, q) => {
        const s = state[i]!, dcs = decisions[i]!, a = s.acc;
        a.agentTokens++;
        s.positions.push(s.ctx.length);
        if (dcs.helped) { a.helpedTokens++; s.helpedPositions.push(s.ctx.length); }
        if (dcs.helpRequest) { a.helpRequests++; opts.onHelp?.({ dialog: s.dialog, position: s.ctx.length, theta: dcs.theta ?? NaN }); }
        if (!dcs.helped || dcs.helpRequest) a.decisions++;
        const known = dcs.logProbs.length > 0;
        if (known) a.scoredTokens++;
        refs.forEach((r, k) => {
          const lp = refLps[k]![q]!;
          const kl = known ? klToReference(dcs.logProbs, lp) : NaN;
          a.kl[r.name]! += kl;
          s.curKl[k]! += kl;
          s.tokKl[k]!.push(kl);
          a.nll[r.name]! += -lp[dcs.action]!;
        });
      });
      const res = await env.step(decisions.map(d => d.action));
      const resets = new Map<number, number[]>();
      for (const i of all) {
        const s = state[i]!, a = s.acc, action = decisions[i]!.action;
        const before = s.ctx.length;
        s.ctx = contextOf(res.observations[i]);
        a.reward += res.rewards[i]!;
        const info = res.infos[i] ?? {};
        if (typeof info.goldReward === 'number') a.goldReward = (Number.isNaN(a.goldReward) ? 0 : a.goldReward) + info.goldReward;
        if (turnEnd.has(action)) {
          const text = tokenizer.decode(s.curTurn);
          const empty = isEmptyTurn(text);
          a.teacherTurns++;
          a.teacherTurnTokens.push(s.curTurn.length);
          if (empty) a.emptyTurns++;
          if (isShortTurn(s.curTurn.length, shortMax)) a.shortTurns++;
          a.turnEmpty.push(empty);
          refs.forEach((r, k) => { a.turnKl[r.name]!.push(s.curKl[k]!); s.curKl[k] = 0; });
          a.teacherTexts.push(text);
          s.curTurn = [];
        } else {
          s.curTurn.push(action);
        }
        if (typeof info.studentReply === 'string') {
          a.exchanges++;
          a.studentTexts.push(info.studentReply);
          a.replyRewards.push(res.rewards[i]!);
          const added = s.ctx.slice(before + 1);
          const last = added[added.length - 1];
          a.studentTurnTokens.push(last === sp.teacher || last === sp.endOfText ? added.length - 1 : added.length);
        }
        if (res.terminated[i] || res.truncated[i]) {
          if (!s.filler) await finish(s, info, res.terminated[i]!, res.truncated[i]!);
          const k = s.k + 1;
          let group = resets.get(k);
          if (!group) resets.set(k, group = []);
          group.push(i);
        }
      }
      if (done >= episodes) break;
      for (const [k, group] of resets) {
        const mask = all.map(i => group.includes(i));
        const r = await env.reset({ seed: seed + k * n, options: { resetMask: mask } });
        for (const i of group) {
          pool.resetRow(i);
          state[i] = fresh(i, k, contextOf(r.observations[i]));
        }
      }
    }
  } finally {
    if (!opts.pool) pool.dispose();
  }
  rows.sort((a, b) => a.dialog - b.dialog);
  return rows;
}
