/**
 * The summary of an evaluation: every metric with a 95% percentile-bootstrap interval over dialogs
 * (per-token quantities as ratios of sums, resampled by dialog), and the per-dialog rows as CSV.
 *
 * Shares of turns come in two measures (turns.ts): `empty` (no word before the marker; Cohen et
 * al.'s "empty response") and `short` (≤ N content tokens). Each has a per-dialog mean — over the
 * dialogs with at least one completed teacher turn; for the others the share is undefined — and a
 * pooled share (all turns of all dialogs) beside it.
 */
import { bootstrapMean, bootstrapOverSeeds, bootstrapRatio, distinctOfTexts, type BootstrapOptions, type Interval } from './stats.ts';
import type { DialogRow } from './evaluate.ts';

export interface EvalSummary {
  agent: string;
  kind: string;
  episodes: number;
  /** Mean episode return. */
  reward: Interval;
  /** Mean episode gold reward (kwargs.goldReward), over dialogs that report one. */
  goldReward: Interval;
  /** KL per agent token (Σ KL / Σ tokens) and per episode (mean of Σ KL), by reference. */
  klPerToken: Record<string, Interval>;
  klPerEpisode: Record<string, Interval>;
  /** exp(Σ NLL / Σ tokens) of the agent's tokens under each reference (perplexity under D, …). */
  perplexity: Record<string, Interval>;
  /** `empty` turns (no word before the marker): mean over dialogs with a completed teacher turn of each dialog's share (n: those dialogs). */
  emptyTurnShare: Interval;
  /** All dialogs pooled: empty turns / turns. */
  emptyTurnSharePooled: Interval;
  /** `short` turns (≤ shortTurnTokens content tokens): per-dialog mean as above, and pooled. */
  shortTurnShare: Interval;
  shortTurnSharePooled: Interval;
  /** The N of `short`. */
  shortTurnTokens: number;
  /** KL per empty completed turn, per other completed turn, and the share of all KL spent on empty turns, by reference. */
  klPerEmptyTurn: Record<string, Interval>;
  klPerOtherTurn: Record<string, Interval>;
  klShareOnEmptyTurns: Record<string, Interval>;
  /** Repeated n-gram rate of the teacher's turns (repeats / occurrences, pooled; turns.ts), by n ("1", "2", …). */
  repeatedNgramRate: Record<string, Interval>;
  /** Mean per dialog of the different n-grams that appear at least twice, by n. */
  repeatedNgramsPerDialog: Record<string, Interval>;
  /** Help requests per decision of the agent, per dialog, and the share of tokens the helper wrote. */
  helpRate: Interval;
  helpRequestsPerDialog: Interval;
  helpedTokenShare: Interval;
  /** Mean tokens per completed teacher turn / per student reply (pooled). */
  teacherTurnTokens: Interval;
  studentTurnTokens: Interval;
  teacherTurnsPerDialog: Interval;
  exchanges: Interval;
  agentTokens: Interval;
  /** Distinct-1/2 over all teacher turns of all dialogs, and the mean of the per-dialog values. */
  distinct1: number;
  distinct2: number;
  distinct1PerDialog: Interval;
  distinct2PerDialog: Interval;
  /** Mean signed sentiment of the student's replies (mean over dialogs that had a reply). */
  studentSentiment: Interval;
  /** How episodes ended: counts by `endedBy`. */
  endings: Record<string, number>;
}

export function summarize(rows: readonly DialogRow[], opts: BootstrapOptions = {}): EvalSummary {
  if (!rows.length) throw new RangeError('summarize: no rows');
  const b = { resamples: 2000, seed: 0, ...opts };
  const col = (f: (r: DialogRow) => number) => rows.map(f);
  const refs = Object.keys(rows[0]!.kl);
  const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
  const expI = (i: Interval): Interval => ({ mean: Math.exp(i.mean), lo: Math.exp(i.lo), hi: Math.exp(i.hi), n: i.n });
  const flat = (f: (r: DialogRow) => number[]) => rows.map(r => { const xs = f(r); return { s: sum(xs), n: xs.length }; });
  const tt = flat(r => r.teacherTurnTokens), st = flat(r => r.studentTurnTokens);
  const allTexts = rows.flatMap(r => r.teacherTexts);
  const d = distinctOfTexts(allTexts);
  const endings: Record<string, number> = {};
  for (const r of rows) endings[r.endedBy] = (endings[r.endedBy] ?? 0) + 1;
  const shortN = rows[0]!.shortTurnTokens;
  if (rows.some(r => r.shortTurnTokens !== shortN)) throw new RangeError('summarize: rows counted with different shortTurnTokens');
  const turnKl = (k: string, empty: boolean) => rows.map(r => {
    const kls = r.turnKl?.[k] ?? [];
    let s = 0, n = 0;
    kls.forEach((x, i) => { if (r.turnEmpty[i] === empty) { s += x; n++; } });
    return { s, n };
  });
  const klTurnRatios = (empty: boolean) => Object.fromEntries(refs.map(k => {
    const t = turnKl(k, empty);
    return [k, bootstrapRatio(t.map(x => x.s), t.map(x => x.n), b)];
  }));
  const ns = (rows[0]!.repetition ?? []).map(x => x.n);
  const rep = (n: number, f: (x: { occurrences: number; repeats: number; repeatedDistinct: number }) => number) =>
    rows.map(r => { const x = r.repetition?.find(y => y.n === n); return x ? f(x) : NaN; });
  return {
    agent: rows[0]!.agent,
    kind: rows[0]!.kind,
    episodes: rows.length,
    reward: bootstrapMean(col(r => r.reward), b),
    goldReward: bootstrapMean(col(r => r.goldReward ?? NaN).filter(Number.isFinite), b),
    klPerToken: Object.fromEntries(refs.map(k => [k, bootstrapRatio(col(r => r.kl[k]!), col(r => r.scoredTokens), b)])),
    klPerEpisode: Object.fromEntries(refs.map(k => [k, bootstrapMean(col(r => r.kl[k]!), b)])),
    perplexity: Object.fromEntries(refs.map(k => [k, expI(bootstrapRatio(col(r => r.nll[k]!), col(r => r.agentTokens), b))])),
    emptyTurnShare: bootstrapMean(col(r => r.emptyShare), b),
    emptyTurnSharePooled: bootstrapRatio(col(r => r.emptyTurns), col(r => r.teacherTurns), b),
    shortTurnShare: bootstrapMean(col(r => r.shortShare), b),
    shortTurnSharePooled: bootstrapRatio(col(r => r.shortTurns), col(r => r.teacherTurns), b),
    shortTurnTokens: shortN,
    klPerEmptyTurn: klTurnRatios(true),
    klPerOtherTurn: klTurnRatios(false),
    klShareOnEmptyTurns: Object.fromEntries(refs.map(k => [k, bootstrapRatio(turnKl(k, true).map(x => x.s), col(r => r.kl[k]!), b)])),
    repeatedNgramRate: Object.fromEntries(ns.map(n => [String(n), bootstrapRatio(rep(n, x => x.repeats), rep(n, x => x.occurrences), b)])),
    repeatedNgramsPerDialog: Object.fromEntries(ns.map(n => [String(n), bootstrapMean(rep(n, x => x.repeatedDistinct), b)])),
    helpRate: bootstrapRatio(col(r => r.helpRequests), col(r => r.decisions), b),
    helpRequestsPerDialog: bootstrapMean(col(r => r.helpRequests), b),
    helpedTokenShare: bootstrapRatio(col(r => r.helpedTokens), col(r => r.agentTokens), b),
    teacherTurnTokens: bootstrapRatio(tt.map(x => x.s), tt.map(x => x.n), b),
    studentTurnTokens: bootstrapRatio(st.map(x => x.s), st.map(x => x.n), b),
    teacherTurnsPerDialog: bootstrapMean(col(r => r.teacherTurns), b),
    exchanges: bootstrapMean(col(r => r.exchanges), b),
    agentTokens: bootstrapMean(col(r => r.agentTokens), b),
    distinct1: d.distinct1,
    distinct2: d.distinct2,
    distinct1PerDialog: bootstrapMean(col(r => r.distinct1), b),
    distinct2PerDialog: bootstrapMean(col(r => r.distinct2), b),
    studentSentiment: bootstrapMean(col(r => r.sentiment), b),
    endings,
  };
}

/** The headline metrics of one setting over its training seeds (intervals: seeds, then dialogs; `bootstrapOverSeeds`). */
export interface SeedsSummary {
  seeds: number;
  reward: Interval;
  /** Episode gold reward (kwargs.goldReward) over the dialogs that report one. */
  goldReward: Interval;
  klPerEpisode: Record<string, Interval>;
  klPerToken: Record<string, Interval>;
  /** Per-dialog means over the dialogs with a completed teacher turn, averaged over seeds. */
  emptyTurnShare: Interval;
  shortTurnShare: Interval;
  repeatedNgramRate: Record<string, Interval>;
}

/** Summarise one setting trained with several seeds: `rowsBySeed[s]` are the evaluation rows of seed s. */
export function summarizeOverSeeds(rowsBySeed: readonly (readonly DialogRow[])[], opts: BootstrapOptions = {}): SeedsSummary {
  const all = rowsBySeed.flat();
  if (!all.length) throw new RangeError('summarizeOverSeeds: no rows');
  const b = { resamples: 2000, seed: 0, ...opts };
  const refs = Object.keys(all[0]!.kl);
  const over = (num: (r: DialogRow) => number, den: (r: DialogRow) => number = () => 1) =>
    bootstrapOverSeeds(rowsBySeed.map(rows => ({ num: rows.map(num), den: rows.map(den) })), b);
  const rep = (n: number, f: (x: { repeats: number; occurrences: number }) => number) => (r: DialogRow) => {
    const x = r.repetition?.find(y => y.n === n);
    return x ? f(x) : NaN;
  };
  return {
    seeds: rowsBySeed.filter(r => r.length).length,
    reward: over(r => r.reward),
    goldReward: over(r => r.goldReward ?? NaN),
    klPerEpisode: Object.fromEntries(refs.map(k => [k, over(r => r.kl[k]!)])),
    klPerToken: Object.fromEntries(refs.map(k => [k, over(r => r.kl[k]!, r => r.scoredTokens)])),
    emptyTurnShare: over(r => r.emptyShare ?? NaN),
    shortTurnShare: over(r => r.shortShare ?? NaN),
    repeatedNgramRate: Object.fromEntries((all[0]!.repetition ?? []).map(x => [String(x.n), over(rep(x.n, y => y.repeats), rep(x.n, y => y.occurrences))])),
  };
}

/** Per-dialog rows as CSV (scalar columns; KL / NLL per reference as `kl_<name>`, `nll_<name>`). */
export function rowsToCsv(rows: readonly DialogRow[]): string {
  if (!rows.length) return '';
  const refs = Object.keys(rows[0]!.kl);
  const cols: [string, (r: DialogRow) => unknown][] = [
    ['agent', r => r.agent], ['kind', r => r.kind], ['dialog', r => r.dialog], ['env_seed', r => r.envSeed], ['reward', r => r.reward],
    ['exchanges', r => r.exchanges], ['ended_by', r => r.endedBy], ['agent_tokens', r => r.agentTokens], ['helped_tokens', r => r.helpedTokens],
    ['decisions', r => r.decisions], ['help_requests', r => r.helpRequests], ['teacher_turns', r => r.teacherTurns], ['empty_turns', r => r.emptyTurns],
    ['empty_share', r => r.emptyShare], ['short_turns', r => r.shortTurns], ['short_share', r => r.shortShare], ['short_turn_tokens', r => r.shortTurnTokens],
    ['mean_teacher_turn_tokens', r => mean(r.teacherTurnTokens)], ['mean_student_turn_tokens', r => mean(r.studentTurnTokens)],
    ...refs.flatMap(k => [[`kl_${k}`, (r: DialogRow) => r.kl[k]], [`nll_${k}`, (r: DialogRow) => r.nll[k]]] as [string, (r: DialogRow) => unknown][]),
    ['scored_tokens', r => r.scoredTokens], ['sentiment', r => r.sentiment], ['distinct1', r => r.distinct1], ['distinct2', r => r.distinct2],
    ...(rows[0]!.repetition ?? []).map(x => [`repeated_${x.n}gram_rate`, (r: DialogRow) => {
      const y = r.repetition?.find(z => z.n === x.n);
      return y && y.occurrences ? y.repeats / y.occurrences : NaN;
    }] as [string, (r: DialogRow) => unknown]),
  ];
  const esc = (v: unknown) => {
    const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : String(v ?? '');
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [cols.map(c => c[0]).join(','), ...rows.map(r => cols.map(c => esc(c[1](r))).join(','))].join('\n') + '\n';
}

function mean(xs: number[]): number { return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN; }

/** `0.512 [0.48, 0.55]` */
export function fmtInterval(i: Interval, digits = 3): string {
  if (!Number.isFinite(i.mean)) return '–';
  return `${i.mean.toFixed(digits)} [${i.lo.toFixed(digits)}, ${i.hi.toFixed(digits)}]`;
}
