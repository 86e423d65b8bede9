/**
 * The shared reward types. A sentiment scorer maps a batch of texts to scores in [0, 1] plus the
 * raw signed score in [-1, 1]; composite rewards read a `RewardContext`.
 */

/** One text's sentiment. */
export interface SentimentScore {
  /** In [0, 1]; 0.5 is neutral. For every scorer here `score = (signed + 1) / 2`. */
  score: number;
  /** In [-1, 1]: VADER's compound score, or 2p − 1 for a classifier's probability p of "positive". */
  signed: number;
}

/** Text batch in, one score per text out (same order). Never NaN, never throws on odd text. */
export interface SentimentScorer {
  readonly name: string;
  score(texts: string[]): Promise<SentimentScore[]>;
  /** Free model memory (tensors, ONNX sessions). Optional; safe to call twice. */
  dispose?(): Promise<void> | void;
}

/** A turn of a dialog as rewards see it. */
export interface Turn { role: 'teacher' | 'student'; text: string }

/** What a composite reward reads about one exchange (agent utterance, then the user's reply). */
export interface RewardContext {
  /** The student's (user's) reply that is being rewarded. */
  reply: string;
  /** The teacher's (agent's) last utterance, the one the reply answers. */
  agentUtterance: string;
  /** The dialog before this exchange (oldest first). */
  history: Turn[];
  /** 0-based index of this exchange in the episode (number of earlier agent turns). */
  turnIndex: number;
}

/** A composite reward's result: the weighted total and every (unweighted, after z-scoring) term. */
export interface RewardResult {
  total: number;
  components: Record<string, number>;
}

/** The mapping of Cohen et al. (2024): reward = (s + 1) / 2 for a signed score s in [-1, 1]. */
export function cohenReward(signed: number): number {
  const s = Number.isFinite(signed) ? Math.max(-1, Math.min(1, signed)) : 0;
  return (s + 1) / 2;
}

/** Clamp to [-1, 1] and replace NaN/±Infinity by 0, then build a `SentimentScore`. */
export function fromSigned(signed: number): SentimentScore {
  const s = Number.isFinite(signed) ? Math.max(-1, Math.min(1, signed)) : 0;
  return { score: (s + 1) / 2, signed: s };
}
