/**
 * What people's pairwise judgements say (server/storage/judging.ts stores them; `/judge` collects
 * them): per question, the win rate of each agent against each other (a tie counts half to
 * each) with a 95% percentile-bootstrap interval that resamples *pairs of transcripts* (the
 * judgements of one pair by several people are not independent), the share of ties, and the
 * share of choices that went to the side shown on the left (side bias). With more than two agents,
 * a Bradley–Terry fit (Hunter's MM algorithm, ties as half a win each way) gives one strength per
 * agent (geometric mean 1), with bootstrap intervals over pairs too.
 *
 * Also: pairs for judging from two agents' evaluation rows (`colloquy eval --out DIR` writes
 * DIR/<agent>.jsonl), matched by the env seed of each dialog, i.e. the same prompt and the same
 * student randomness.
 */
import { Rng } from '../core/rng.ts';
import { bootstrapRatio, type Interval } from './eval/stats.ts';

export interface Judgement { pairId: string; agentA: string; agentB: string; question: string; choice: 'a' | 'b' | 'tie'; shownLeft: 'a' | 'b' }

export interface PairwiseResult {
  /** `agent` against `opponent`. */
  agent: string;
  opponent: string;
  /** Win rate of `agent` (ties half), with its interval over pairs. */
  winRate: Interval;
  wins: number;
  losses: number;
  ties: number;
  judgements: number;
  pairs: number;
}

export interface QuestionSummary {
  question: string;
  judgements: number;
  judges?: number;
  /** One entry per unordered agent pair (the agent named first is the one that sorts first). */
  pairwise: PairwiseResult[];
  ties: number;
  /** Share of non-tie choices that went to the side shown on the left (0.5: no side bias). */
  leftShare: Interval;
  /** With more than two agents: Bradley–Terry strengths (geometric mean 1), with intervals. */
  bradleyTerry?: { agent: string; strength: Interval }[];
}

export interface SummaryOptions { resamples?: number; seed?: number }

/** Per question, what the judgements say (see the module comment). */
export function summariseJudgements(js: readonly Judgement[], opts: SummaryOptions = {}): QuestionSummary[] {
  const questions = [...new Set(js.map(j => j.question))].sort();
  const bopts = { resamples: opts.resamples ?? 2000, seed: opts.seed ?? 0 };
  return questions.map(question => {
    const q = js.filter(j => j.question === question);
    const agents = [...new Set(q.flatMap(j => [j.agentA, j.agentB]))].sort();
    const pairwise: PairwiseResult[] = [];
    for (let i = 0; i < agents.length; i++) {
      for (let k = i + 1; k < agents.length; k++) {
        const x = agents[i]!, y = agents[k]!;
        const rel = q.filter(j => (j.agentA === x && j.agentB === y) || (j.agentA === y && j.agentB === x));
        if (!rel.length) continue;
        const byPair = new Map<string, { score: number; n: number }>();
        let wins = 0, losses = 0, ties = 0;
        for (const j of rel) {
          const winner = j.choice === 'tie' ? null : j.choice === 'a' ? j.agentA : j.agentB;
          const s = winner === null ? 0.5 : winner === x ? 1 : 0;
          if (winner === null) ties++; else if (winner === x) wins++; else losses++;
          const e = byPair.get(j.pairId) ?? { score: 0, n: 0 };
          e.score += s; e.n++;
          byPair.set(j.pairId, e);
        }
        const cells = [...byPair.values()];
        pairwise.push({
          agent: x, opponent: y, wins, losses, ties, judgements: rel.length, pairs: cells.length,
          winRate: bootstrapRatio(cells.map(c => c.score), cells.map(c => c.n), bopts),
        });
      }
    }
    // Side bias: per pair, choices that went to the left side among its non-tie choices.
    const side = new Map<string, { left: number; n: number }>();
    for (const j of q) {
      if (j.choice === 'tie') continue;
      const e = side.get(j.pairId) ?? { left: 0, n: 0 };
      e.left += j.choice === j.shownLeft ? 1 : 0; e.n++;
      side.set(j.pairId, e);
    }
    const sides = [...side.values()];
    const out: QuestionSummary = {
      question, judgements: q.length, pairwise, ties: q.filter(j => j.choice === 'tie').length,
      leftShare: bootstrapRatio(sides.map(s => s.left), sides.map(s => s.n), bopts),
    };
    if (agents.length > 2) out.bradleyTerry = bradleyTerryWithIntervals(q, agents, bopts);
    return out;
  });
}

/** Hunter's MM fit of Bradley–Terry strengths (ties half a win each way), normalised to geometric mean 1; NaN for an agent with no comparisons. */
export function bradleyTerry(js: readonly Judgement[], agents: readonly string[], iterations = 500): number[] {
  const idx = new Map(agents.map((a, i) => [a, i]));
  const n = agents.length;
  const wins = new Float64Array(n);
  const games = Array.from({ length: n }, () => new Float64Array(n));
  for (const j of js) {
    const a = idx.get(j.agentA)!, b = idx.get(j.agentB)!;
    games[a]![b]! += 1; games[b]![a]! += 1;
    if (j.choice === 'tie') { wins[a]! += 0.5; wins[b]! += 0.5; } else wins[j.choice === 'a' ? a : b]! += 1;
  }
  // A small prior (one tie against a virtual average opponent) keeps strengths finite for agents that never lose or never win.
  let p = new Float64Array(n).fill(1);
  for (let it = 0; it < iterations; it++) {
    const next = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let den = 1 / (p[i]! + 1);
      for (let k = 0; k < n; k++) if (k !== i && games[i]![k]! > 0) den += games[i]![k]! / (p[i]! + p[k]!);
      next[i] = (wins[i]! + 0.5) / den;
    }
    const g = Math.exp(next.reduce((s, x) => s + Math.log(x), 0) / n);
    for (let i = 0; i < n; i++) next[i]! /= g;
    p = next;
  }
  return agents.map((_, i) => (games[i]!.some(x => x > 0) ? p[i]! : NaN));
}

function bradleyTerryWithIntervals(q: readonly Judgement[], agents: readonly string[], o: { resamples: number; seed: number }): { agent: string; strength: Interval }[] {
  const point = bradleyTerry(q, agents);
  const byPair = new Map<string, Judgement[]>();
  for (const j of q) {
    const g = byPair.get(j.pairId);
    if (g) g.push(j); else byPair.set(j.pairId, [j]);
  }
  const groups = [...byPair.values()];
  const rng = new Rng(o.seed);
  const R = Math.min(o.resamples, 400);
  const draws = agents.map(() => [] as number[]);
  for (let r = 0; r < R; r++) {
    const sample: Judgement[] = [];
    for (let k = 0; k < groups.length; k++) sample.push(...groups[rng.int(groups.length)]!);
    bradleyTerry(sample, agents, 200).forEach((s, i) => { if (Number.isFinite(s)) draws[i]!.push(s); });
  }
  return agents.map((agent, i) => {
    const d = draws[i]!.sort((x, y) => x - y);
    const at = (f: number) => (d.length ? d[Math.min(d.length - 1, Math.max(0, Math.round(f * (d.length - 1))))]! : NaN);
    return { agent, strength: { mean: point[i]!, lo: at(0.025), hi: at(0.975), n: groups.length } };
  });
}

/** The fields of an evaluation row (agents/eval/evaluate.ts DialogRow) that a judged transcript needs. */
export interface RowForJudging { agent: string; envSeed: number; teacherTexts: string[]; studentTexts: string[]; prompt?: string }

/** The prompt a pair of rows shares (the same env seed): the first row's, absent when neither row has one (rows written before eval kept it). */
export function pairPrompt(a: RowForJudging, b: RowForJudging): string | undefined {
  return a.prompt ?? b.prompt;
}

/** A dialog as turns, teacher first (the teacher opens every turn; a cut-off last reply is dropped with its turn's reply absent). */
export function rowTurns(r: RowForJudging): { role: 'teacher' | 'student'; text: string }[] {
  const turns: { role: 'teacher' | 'student'; text: string }[] = [];
  r.teacherTexts.forEach((t, i) => {
    turns.push({ role: 'teacher', text: t });
    const s = r.studentTexts[i];
    if (s !== undefined) turns.push({ role: 'student', text: s });
  });
  return turns;
}

/** Pairs of dialogs with the same env seed from two agents' rows (at most `max`, in seed order); rows without turns are skipped. */
export function pairRowsBySeed<R extends RowForJudging>(a: readonly R[], b: readonly R[], max = Infinity): { seed: number; a: R; b: R }[] {
  const bySeed = new Map<number, R>();
  for (const r of b) if (r.teacherTexts.length) bySeed.set(r.envSeed, r);
  const out: { seed: number; a: R; b: R }[] = [];
  for (const r of [...a].sort((x, y) => x.envSeed - y.envSeed)) {
    const m = bySeed.get(r.envSeed);
    if (m && r.teacherTexts.length && out.length < max) out.push({ seed: r.envSeed, a: r, b: m });
  }
  return out;
}
