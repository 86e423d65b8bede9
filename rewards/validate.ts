/**
 * Validation of sentiment scorers against people: DailyDialog (Li et al. 2017) annotates every
 * utterance with an emotion. The replies (every utterance after a dialog's first) labelled
 * happiness (4) are positives; those labelled anger (1), disgust (2) or sadness (5) negatives.
 * A scorer is good as an implicit reward when its score separates the two: ROC AUC.
 */
import path from 'node:path';
import { PROJECT_ROOT } from '../core/paths.ts';
import { accuracy, rocAuc } from './metrics.ts';
import type { SentimentScorer } from './types.ts';
import { loadDailyDialog, type EmotionUtterance } from './emotions.ts';

export const DD_HAPPINESS = 4;
export const DD_NEGATIVE: ReadonlySet<number> = new Set([1, 2, 5]);

/** The data directory: flag, then $COLLOQUY_DATA_DIR, then ../shared/data beside the project. */
export function dataDir(flag?: string): string {
  if (flag) return path.resolve(flag);
  if (process.env.COLLOQUY_DATA_DIR) return path.resolve(process.env.COLLOQUY_DATA_DIR);
  return path.resolve(PROJECT_ROOT, '..', 'shared', 'data');
}

export type EmotionReply = EmotionUtterance;

/** Replies (utterances after the first of each dialog) of a DailyDialog split with their emotion labels. */
export function loadDailyDialogReplies(dir: string, split = 'validation'): EmotionReply[] {
  return loadDailyDialog(dir, split, 1);
}

export interface ValidationResult { scorer: string; positives: number; negatives: number; auc: number; accuracy: number; meanPositive: number; meanNegative: number; seconds: number }

/** Score the happiness vs anger/disgust/sadness replies and report AUC (and accuracy at 0.5). */
export async function validateOnEmotions(scorer: SentimentScorer, replies: EmotionReply[]): Promise<ValidationResult> {
  const sel = replies.filter(r => r.emotion === DD_HAPPINESS || DD_NEGATIVE.has(r.emotion));
  const t0 = performance.now();
  const scores = (await scorer.score(sel.map(r => r.text))).map(s => s.score);
  const seconds = (performance.now() - t0) / 1000;
  const labels = sel.map(r => (r.emotion === DD_HAPPINESS ? 1 : 0));
  const mean = (want: number) => {
    let s = 0, n = 0;
    labels.forEach((l, i) => { if (l === want) { s += scores[i]!; n++; } });
    return n ? s / n : NaN;
  };
  const positives = labels.filter(l => l === 1).length;
  return {
    scorer: scorer.name, positives, negatives: labels.length - positives, auc: rocAuc(scores, labels),
    accuracy: accuracy(scores, labels), meanPositive: mean(1), meanNegative: mean(0), seconds,
  };
}
