/**
 * Emotion-based sentiment in the manner of Jaques et al. (2019): instead of one positive/negative
 * score, a classifier predicts a distribution over emotions and the sentiment is a weighted sum of
 * them (they weighted DeepMoji's 64 emoji by hand; here the seven emotion labels of DailyDialog,
 * Li et al. 2017). The emotion transition is how that valence moves from the user's previous
 * message to the reply.
 *
 * Also the reader of DailyDialog's per-utterance emotion labels that training (train split) and
 * validation (test and validation splits) share.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ColloquyError } from '../core/errors.ts';

/** DailyDialog's emotion labels, in the order of their numbers (0 none … 6 surprise). */
export const DD_EMOTIONS = ['none', 'anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise'] as const;
export type EmotionName = (typeof DD_EMOTIONS)[number];

/**
 * Hand-set valence of each emotion in [-1, 1] (as Jaques et al. set one weight per emoji):
 * happiness +1; anger, disgust, sadness −1; fear −0.75; surprise +0.25 (in DailyDialog mostly
 * pleasant surprise: "Really? That's great!"); none 0.
 */
export const DEFAULT_EMOTION_WEIGHTS: Readonly<Record<EmotionName, number>> = {
  none: 0, anger: -1, disgust: -1, fear: -0.75, happiness: 1, sadness: -1, surprise: 0.25,
};

/** The weight vector (in `labels`' order) of a partial name → weight map over the defaults. Unknown names are BAD_CONFIG. */
export function emotionWeightVector(labels: readonly string[], weights: Readonly<Record<string, number>> = {}): Float32Array {
  for (const [k, v] of Object.entries(weights)) {
    if (!labels.includes(k)) throw new ColloquyError('BAD_CONFIG', `unknown emotion '${k}' (the model's emotions: ${labels.join(', ')})`);
    if (!Number.isFinite(v) || v < -1 || v > 1) throw new ColloquyError('BAD_CONFIG', `the weight of '${k}' must be a number in [-1, 1], got ${String(v)}`);
  }
  const dflt = DEFAULT_EMOTION_WEIGHTS as Record<string, number>;
  return Float32Array.from(labels, l => weights[l] ?? dflt[l] ?? 0);
}

/** Σ p(e)·w(e) of one distribution, clamped to [-1, 1] (0 for a NaN). */
export function emotionValence(probs: ArrayLike<number>, weights: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < weights.length; i++) s += (probs[i] ?? 0) * weights[i]!;
  return Number.isFinite(s) ? Math.max(-1, Math.min(1, s)) : 0;
}

/**
 * The emotion transition: the change of the user's emotion valence from the previous message to
 * the reply, in the [0, 1] units of `sentimentTransition` (half the change of the signed valence),
 * so in [-1, 1]; 0 without a previous message.
 */
export function emotionTransition(reply: ArrayLike<number>, previous: ArrayLike<number> | undefined, weights: ArrayLike<number>): number {
  if (!previous) return 0;
  return (emotionValence(reply, weights) - emotionValence(previous, weights)) / 2;
}

/** One DailyDialog utterance with its emotion label (0–6) and place. */
export interface EmotionUtterance { text: string; emotion: number; dialog: number; turn: number }

/**
 * The utterances of a DailyDialog split with their emotion labels (`dir` holds the split folders).
 * `fromTurn` 1 keeps replies only (every utterance after a dialog's first), 0 keeps all.
 */
export function loadDailyDialog(dir: string, split: string, fromTurn = 0): EmotionUtterance[] {
  const base = path.join(dir, split);
  const textFile = path.join(base, `dialogues_${split}.txt`);
  const emoFile = path.join(base, `dialogues_emotion_${split}.txt`);
  for (const f of [textFile, emoFile]) if (!existsSync(f)) throw new ColloquyError('NOT_FOUND', `missing DailyDialog file ${f}`);
  const dialogs = readFileSync(textFile, 'utf8').split(/\r?\n/).filter(l => l.trim() !== '');
  const emotions = readFileSync(emoFile, 'utf8').split(/\r?\n/).filter(l => l.trim() !== '');
  if (dialogs.length !== emotions.length) throw new ColloquyError('BAD_REQUEST', `${textFile} has ${dialogs.length} dialogs but ${emoFile} ${emotions.length} label lines`);
  const out: EmotionUtterance[] = [];
  dialogs.forEach((line, d) => {
    const utts = line.split('__eou__').map(s => s.trim());
    if (utts.length > 0 && utts[utts.length - 1] === '') utts.pop();
    const labels = emotions[d]!.trim().split(/\s+/).map(Number);
    // A few dialogs in the release have one label more or less than utterances: use the common prefix.
    const n = Math.min(utts.length, labels.length);
    for (let t = fromTurn; t < n; t++) {
      const e = labels[t]!;
      if (!(Number.isInteger(e) && e >= 0 && e < DD_EMOTIONS.length)) throw new ColloquyError('BAD_REQUEST', `${emoFile}:${d + 1}: emotion label '${String(e)}' is not in 0–6`);
      out.push({ text: utts[t]!, emotion: e, dialog: d, turn: t });
    }
  });
  return out;
}
