/**
 * Statistics of a batch evaluation: percentile-bootstrap confidence intervals over dialogs (for a
 * mean, and for a ratio of sums such as KL per token = Σ KL / Σ tokens), distinct-n, and the
 * empirical CDF. Pure functions; the bootstrap is seeded (`Rng`), so a summary is reproducible.
 */
import { Rng } from '../../core/rng.ts';
import { wordTokens } from '../../rewards/text.ts';

export interface Interval {
  /** The point estimate on all dialogs. */
  mean: number;
  /** Bounds of the percentile bootstrap interval (NaN when there are no data). */
  lo: number;
  hi: number;
  /** Number of dialogs it is computed over. */
  n: number;
}

export interface BootstrapOptions {
  /** Resamples (default 2000). */
  resamples?: number;
  /** Coverage (default 0.95). */
  level?: number;
  /** Seed of the resampling (default 0). */
  seed?: number;
}

function quantileSorted(xs: Float64Array, q: number): number {
  if (!xs.length) return NaN;
  const pos = (xs.length - 1) * q;
  const i = Math.floor(pos), f = pos - i;
  return i + 1 < xs.length ? xs[i]! * (1 - f) + xs[i + 1]! * f : xs[i]!;
}

/**
 * Percentile bootstrap CI of Σ num / Σ den over dialogs (resampling dialogs with replacement).
 * With den ≡ 1 this is the CI of the mean. Non-finite entries are dropped (with their pair).
 */
export function bootstrapRatio(num: readonly number[], den: readonly number[], opts: BootstrapOptions = {}): Interval {
  if (num.length !== den.length) throw new RangeError('bootstrapRatio: num and den differ in length');
  const keep: number[] = [];
  for (let i = 0; i < num.length; i++) if (Number.isFinite(num[i]!) && Number.isFinite(den[i]!)) keep.push(i);
  const n = keep.length;
  if (n === 0) return { mean: NaN, lo: NaN, hi: NaN, n: 0 };
  const a = keep.map(i => num[i]!), b = keep.map(i => den[i]!);
  const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
  const mean = sum(b) === 0 ? NaN : sum(a) / sum(b);
  if (n === 1) return { mean, lo: mean, hi: mean, n };
  return percentileBootstrap(mean, n, opts, rng => {
    let sa = 0, sb = 0;
    for (let k = 0; k < n; k++) { const i = rng.int(n); sa += a[i]!; sb += b[i]!; }
    return sb !== 0 ? sa / sb : null;
  });
}

/** The percentile interval of `draw` (one resampled statistic, null when undefined) around `mean`. */
function percentileBootstrap(mean: number, n: number, opts: BootstrapOptions, draw: (rng: Rng) => number | null): Interval {
  const R = opts.resamples ?? 2000, level = opts.level ?? 0.95;
  const rng = new Rng(opts.seed ?? 0);
  const stats = new Float64Array(R);
  let m = 0;
  for (let r = 0; r < R; r++) { const x = draw(rng); if (x !== null) stats[m++] = x; }
  const sorted = stats.subarray(0, m).sort();
  return { mean, lo: quantileSorted(sorted, (1 - level) / 2), hi: quantileSorted(sorted, 1 - (1 - level) / 2), n };
}

/** One seed's dialogs for `bootstrapOverSeeds`: per dialog a numerator and a denominator. */
export interface SeedGroup { num: readonly number[]; den: readonly number[] }

/**
 * Interval over training seeds: the statistic is the mean over seeds of each seed's Σ num / Σ den
 * (its dialogs pooled); each resample draws the seeds with replacement and then, within each
 * drawn seed, its dialogs with replacement (a two-stage bootstrap), so the interval carries both
 * the spread between seeds and the noise of a finite evaluation. `n` is the number of seeds.
 * Non-finite pairs are dropped; a seed with no data is left out.
 */
export function bootstrapOverSeeds(groups: readonly SeedGroup[], opts: BootstrapOptions = {}): Interval {
  const gs = groups.map(g => {
    if (g.num.length !== g.den.length) throw new RangeError('bootstrapOverSeeds: num and den differ in length');
    const a: number[] = [], b: number[] = [];
    g.num.forEach((x, i) => { const y = g.den[i]!; if (Number.isFinite(x) && Number.isFinite(y)) { a.push(x); b.push(y); } });
    return { a, b };
  }).filter(g => g.a.length > 0 && g.b.some(y => y !== 0));
  const S = gs.length;
  if (S === 0) return { mean: NaN, lo: NaN, hi: NaN, n: 0 };
  const ratio = (g: { a: number[]; b: number[] }) => g.a.reduce((s, x) => s + x, 0) / g.b.reduce((s, x) => s + x, 0);
  const mean = gs.reduce((s, g) => s + ratio(g), 0) / S;
  return percentileBootstrap(mean, S, opts, rng => {
    let total = 0, ok = 0;
    for (let k = 0; k < S; k++) {
      const g = gs[rng.int(S)]!;
      const n = g.a.length;
      let sa = 0, sb = 0;
      for (let j = 0; j < n; j++) { const i = rng.int(n); sa += g.a[i]!; sb += g.b[i]!; }
      if (sb !== 0) { total += sa / sb; ok++; }
    }
    return ok ? total / ok : null;
  });
}

/** Percentile bootstrap CI of the mean. */
export function bootstrapMean(xs: readonly number[], opts: BootstrapOptions = {}): Interval {
  return bootstrapRatio(xs, xs.map(() => 1), opts);
}

/** Distinct-n (Li et al. 2016): distinct n-grams / all n-grams over the given token lists (0 when none). */
export function distinctN(sequences: readonly (readonly string[])[], n: number): number {
  const seen = new Set<string>();
  let total = 0;
  for (const s of sequences) {
    for (let i = 0; i + n <= s.length; i++) { seen.add(s.slice(i, i + n).join('\u0000')); total++; }
  }
  return total ? seen.size / total : 0;
}

/** Distinct-1 and distinct-2 of texts, over lower-cased words (`wordTokens`), each text on its own. */
export function distinctOfTexts(texts: readonly string[]): { distinct1: number; distinct2: number; words: number } {
  const seqs = texts.map(t => wordTokens(t));
  return { distinct1: distinctN(seqs, 1), distinct2: distinctN(seqs, 2), words: seqs.reduce((a, s) => a + s.length, 0) };
}

/** Points of the empirical CDF: each distinct value with the fraction of data ≤ it. */
export function ecdf(xs: readonly number[]): { x: number; p: number }[] {
  const s = xs.filter(Number.isFinite).slice().sort((a, b) => a - b);
  const out: { x: number; p: number }[] = [];
  s.forEach((x, i) => {
    if (i + 1 < s.length && s[i + 1] === x) return;
    out.push({ x, p: (i + 1) / s.length });
  });
  return out;
}

/** `ecdf` of shares in [0, 1], padded to start at (0, 0) and end at (1, 1) so every step function spans [0, 1] (empty: no points). */
export function ecdfOnUnit(xs: readonly number[]): { x: number; p: number }[] {
  const pts = ecdf(xs);
  if (!pts.length) return [];
  return [...(pts[0]!.x > 0 ? [{ x: 0, p: 0 }] : []), ...pts, ...(pts[pts.length - 1]!.x < 1 ? [{ x: 1, p: 1 }] : [])];
}

/** A 32-bit seed mixed from several integers (for per-dialog random streams). */
export function mixSeed(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h ^= x >>> 0; h = Math.imul(h, 0x01000193);
    h ^= h >>> 15; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13;
  }
  return h >>> 0;
}

/** A paper claim's verdict from two intervals (a above b: reproduced). */
export type Verdict = 'reproduced' | 'contradicted' | 'undecided';

/** Larger-than verdict of two intervals (a claimed above b). */
export function compareIntervals(a: Interval, b: Interval | number): Verdict {
  const bLo = typeof b === 'number' ? b : b.lo, bHi = typeof b === 'number' ? b : b.hi;
  if (!(Number.isFinite(a.lo) && Number.isFinite(bHi))) return 'undecided';
  if (a.lo > bHi) return 'reproduced';
  if (a.hi < bLo) return 'contradicted';
  return 'undecided';
}
