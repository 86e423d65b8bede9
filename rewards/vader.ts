/**
 * The `vader` sentiment scorer: VADER (Hutto & Gilbert 2014), a rule-based model over a
 * human-rated lexicon of ~7,500 tokens with rules for negation, boosters, capitals, "but" and
 * punctuation. Uses the `vader-sentiment` package, which embeds the full published lexicon. The
 * signed score is VADER's compound score in [-1, 1].
 */
import vader from 'vader-sentiment';
import { sanitizeText } from './text.ts';
import { fromSigned, type SentimentScore, type SentimentScorer } from './types.ts';

/** VADER's four scores for one text (after sanitising: bad surrogates replaced, long texts cut). */
export function vaderPolarity(text: string): { neg: number; neu: number; pos: number; compound: number } {
  const s = sanitizeText(text);
  if (s.trim() === '') return { neg: 0, neu: 0, pos: 0, compound: 0 };
  const r = vader.SentimentIntensityAnalyzer.polarity_scores(s);
  const fix = (x: number) => (Number.isFinite(x) ? x : 0);
  return { neg: fix(r.neg), neu: fix(r.neu), pos: fix(r.pos), compound: fix(r.compound) };
}

/** VADER's compound score in [-1, 1]. */
export function vaderCompound(text: string): number {
  return vaderPolarity(text).compound;
}

export class VaderScorer implements SentimentScorer {
  readonly name = 'vader';
  async score(texts: string[]): Promise<SentimentScore[]> {
    return texts.map(t => fromSigned(vaderCompound(t)));
  }
}
