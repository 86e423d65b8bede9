/**
 * Plain-array helpers the trainers share.
 */
import type { Rng } from './rng.ts';

/** Shuffle `xs` in place (Fisher–Yates from the top, j = rng.int(i + 1)) and return it. */
export function shuffle<T>(xs: T[], rng: Rng): T[] {
  for (let i = xs.length - 1; i > 0; i--) { const j = rng.int(i + 1); [xs[i], xs[j]] = [xs[j]!, xs[i]!]; }
  return xs;
}

/** The arithmetic mean; NaN for an empty list. */
export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}
