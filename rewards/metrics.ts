/**
 * Evaluation helpers for sentiment scorers: reading `label<TAB>sentence` files, accuracy at a
 * threshold, and ROC AUC (the probability that a random positive outscores a random negative,
 * ties counting one half).
 */
import { readFileSync } from 'node:fs';
import { ColloquyError } from '../core/errors.ts';

export interface LabeledText { label: 0 | 1; text: string }

/**
 * Read a `label<TAB>sentence` file (1 = positive). A first line whose label is not 0/1 is a
 * header and skipped; any other bad line is an error naming the line.
 */
export function readLabeledTsv(file: string, limit = Infinity): LabeledText[] {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (err) {
    throw new ColloquyError('NOT_FOUND', `cannot read ${file}: ${(err as Error).message}`);
  }
  const out: LabeledText[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length && out.length < limit; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const tab = line.indexOf('\t');
    const label = tab < 0 ? '' : line.slice(0, tab).trim();
    if (label !== '0' && label !== '1') {
      if (i === 0) continue;
      throw new ColloquyError('BAD_REQUEST', `${file}:${i + 1}: expected 'label<TAB>sentence' with label 0 or 1`);
    }
    out.push({ label: label === '1' ? 1 : 0, text: line.slice(tab + 1) });
  }
  return out;
}

/** Fraction of items where (score > threshold) equals label. */
export function accuracy(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold = 0.5): number {
  if (scores.length === 0) return NaN;
  let ok = 0;
  for (let i = 0; i < scores.length; i++) if ((scores[i]! > threshold ? 1 : 0) === (labels[i]! ? 1 : 0)) ok++;
  return ok / scores.length;
}

/** ROC AUC by ranks (Mann–Whitney U), ties averaged. NaN when one class is missing. */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1]!] === scores[idx[i]!]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]!] = r;
    i = j + 1;
  }
  let pos = 0, sumPos = 0;
  for (let i = 0; i < n; i++) if (labels[i]) { pos++; sumPos += ranks[i]!; }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (sumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}
