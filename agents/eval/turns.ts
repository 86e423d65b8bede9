/**
 * What the evaluation measures about a teacher turn, defined once.
 *
 * Two measures of "saying nothing" (Cohen et al. 2024):
 *   - `empty`: the turn has no word character (letter or digit of any script) before the marker
 *     that ends it. Cohen et al.'s gen_text.py counts a response as empty when the agent wrote at
 *     most 4 tokens *including* its own `\n\nStudent:` marker, which is several tokens of their
 *     tokenizer: a response with (essentially) no words. Here the marker is one token and is never
 *     part of the turn's text, so the word test is the faithful translation.
 *   - `short`: at most N content tokens (the marker not counted; N configurable, default 4). This
 *     is the measure the README's earlier tables called "empty": " Yes." and " OK?" are short, not
 *     empty.
 *
 * Repetition as Cohen et al. count it (gen_text.py, `find_n_grams`): over the words of the
 * teacher's speech (case-sensitive, each word starting with an ASCII letter, punctuation dropped),
 * every n-gram lying inside the teacher's speech is numbered by its appearance (1st, 2nd, …) among
 * the earlier n-grams of the same dialog; an occurrence numbered ≥ 2 is a repeat. Per dialog this
 * gives the repeated share (repeats / occurrences) and the number of different n-grams that appear
 * at least twice (their bar chart's "appear at least 2 times"). Here an n-gram lies inside one
 * teacher turn of the agent (the prompt's teacher words and the marker are not the agent's).
 *
 * Per-token values (KL of each agent token) travel in rows compactly as base64 of little-endian
 * float32 (`packF32` / `unpackF32`).
 */

import { BadConfig } from '../../core/errors.ts';

/** Default N of the `short` measure: a turn of at most this many content tokens is short. */
export const DEFAULT_SHORT_TURN_TOKENS = 4;

/** Default largest n of the repetition counts (n = 1…this). */
export const DEFAULT_NGRAM_MAX = 4;

/** `empty`: no letter or digit in the turn's text (the closing marker is not part of it). */
export function isEmptyTurn(text: string): boolean {
  return !/[\p{L}\p{N}]/u.test(text);
}

/** `short`: at most `maxTokens` content tokens. */
export function isShortTurn(contentTokens: number, maxTokens = DEFAULT_SHORT_TURN_TOKENS): boolean {
  return contentTokens <= maxTokens;
}

/** The words gen_text.py counts: maximal runs starting with an ASCII letter, not inside a word (so "don't" gives "don"). */
export function ngramWords(text: string): string[] {
  return text.match(/(?<![A-Za-z0-9'\u2019])[A-Za-z][A-Za-z0-9]*/g) ?? [];
}

/** Repetition of n-grams of one size in a dialog's teacher turns. */
export interface NgramRepetition {
  n: number;
  /** n-gram occurrences inside teacher turns. */
  occurrences: number;
  /** Of those, the 2nd or later appearance of the same n-gram in the dialog. */
  repeats: number;
  /** Different n-grams that appear at least twice. */
  repeatedDistinct: number;
}

/** Repetition counts for n = 1…maxN over the teacher turns of one dialog (oldest first). */
export function ngramRepetition(turns: readonly string[], maxN = DEFAULT_NGRAM_MAX): NgramRepetition[] {
  if (!Number.isInteger(maxN) || maxN < 1) throw new BadConfig(`ngramRepetition: maxN must be a positive integer, got ${maxN}`);
  const words = turns.map(ngramWords);
  const out: NgramRepetition[] = [];
  for (let n = 1; n <= maxN; n++) {
    const seen = new Map<string, number>();
    let occurrences = 0, repeats = 0;
    for (const w of words) {
      for (let i = 0; i + n <= w.length; i++) {
        const key = w.slice(i, i + n).join(' ');
        const k = (seen.get(key) ?? 0) + 1;
        seen.set(key, k);
        occurrences++;
        if (k >= 2) repeats++;
      }
    }
    let repeatedDistinct = 0;
    for (const k of seen.values()) if (k >= 2) repeatedDistinct++;
    out.push({ n, occurrences, repeats, repeatedDistinct });
  }
  return out;
}

/** Numbers as base64 of little-endian float32 (about 5.3 characters per value; NaN survives). */
export function packF32(xs: readonly number[]): string {
  const buf = Buffer.alloc(xs.length * 4);
  xs.forEach((x, i) => buf.writeFloatLE(x, i * 4));
  return buf.toString('base64');
}

export function unpackF32(s: string): number[] {
  const buf = Buffer.from(s, 'base64');
  if (buf.length % 4 !== 0) throw new BadConfig(`unpackF32: ${buf.length} bytes is not a whole number of float32 values`);
  const out: number[] = new Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}
