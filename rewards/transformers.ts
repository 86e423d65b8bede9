/**
 * The `transformers` sentiment scorer: any text-classification model in the transformers.js
 * layout (config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx or
 * onnx/model_quantized.onnx), loaded with `@xenova/transformers` from a local folder — e.g. the
 * DistilBERT SST-2 model used by Cohen et al. (2024). Downloads stay off unless `allowRemote`.
 *
 * Two maps from the model's label probabilities (softmax) to the signed score s (reward (s+1)/2):
 *   - `top-label` (the default): Cohen et al.'s klreg.py — s = +p_top when the most probable label
 *     is the positive one, −p_top when it is the negative one (0 when it is neither, e.g. neutral).
 *     For a two-label model the reward is then (1 + P(pos))/2 ≥ 0.75 or P(pos)/2 ≤ 0.25: it jumps
 *     at P(pos) = 0.5 and never lies in between. A tie goes to the first label in the model's
 *     order, as the argmax of their pipeline does.
 *   - `p-positive`: s = P(positive) − P(negative), i.e. reward P(pos) for a two-label model.
 * The positive and negative labels are found by name (POSITIVE/NEGATIVE, pos/neg, LABEL_1/LABEL_0
 * for a two-label model) or given in the spec.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { ColloquyError } from '../core/errors.ts';
import { sanitizeText } from './text.ts';
import { fromSigned, type SentimentScore, type SentimentScorer } from './types.ts';

export interface TransformersScorerOptions {
  /** A local model folder, or (with `allowRemote`) a Hugging Face model id. */
  model: string;
  /** Allow downloading from the hub (off by default: nothing leaves the machine). */
  allowRemote?: boolean;
  /** Use onnx/model_quantized.onnx; default: whichever of the two files the folder has (full precision first). */
  quantized?: boolean;
  /** Label name of the positive class (default: found by name). */
  positiveLabel?: string;
  /** Label name of the negative class (default: found by name). */
  negativeLabel?: string;
  /** Label probabilities → signed score: `top-label` (Cohen et al.: ±p of the top label; default) or `p-positive` (P(pos) − P(neg)). */
  map?: SentimentMap;
  /** Texts per model call. */
  batchSize?: number;
  /** Longest text in characters passed to the tokenizer (the tokenizer also truncates to the model's length). */
  maxChars?: number;
}

export const SENTIMENT_MAPS = ['top-label', 'p-positive'] as const;
export type SentimentMap = (typeof SENTIMENT_MAPS)[number];

interface LabelScore { label: string; score: number }
type Classifier = (texts: string[], opts: { topk: number }) => Promise<LabelScore[][] | LabelScore[]>;

export class TransformersScorer implements SentimentScorer {
  readonly name = 'transformers';
  private constructor(
    private readonly pipe: Classifier & { dispose?: () => Promise<void> },
    private readonly labels: string[],
    private readonly positive: string,
    private readonly negative: string | undefined,
    private readonly batchSize: number,
    private readonly maxChars: number,
    readonly map: SentimentMap,
  ) {}

  static async load(opts: TransformersScorerOptions): Promise<TransformersScorer> {
    const tf = await import('@xenova/transformers');
    const env = tf.env;
    let modelId = opts.model;
    const local = path.resolve(opts.model);
    const isLocal = existsSync(local) && statSync(local).isDirectory();
    if (!isLocal && !opts.allowRemote) {
      throw new ColloquyError('NOT_FOUND', `no transformers model folder at ${local} (downloads are off; set allowRemote to fetch '${opts.model}' from the hub)`);
    }
    let quantized = opts.quantized;
    if (isLocal) {
      for (const f of ['config.json', 'tokenizer.json']) {
        if (!existsSync(path.join(local, f))) throw new ColloquyError('NOT_FOUND', `model folder ${local} has no ${f}`);
      }
      const full = existsSync(path.join(local, 'onnx', 'model.onnx'));
      const quant = existsSync(path.join(local, 'onnx', 'model_quantized.onnx'));
      if (!full && !quant) throw new ColloquyError('NOT_FOUND', `model folder ${local} has no onnx/model.onnx or onnx/model_quantized.onnx`);
      quantized ??= !full;
      env.localModelPath = path.dirname(local) + path.sep;
      modelId = path.basename(local);
      env.allowLocalModels = true;
    }
    env.allowRemoteModels = opts.allowRemote === true;
    let pipe: Classifier & { model?: { config?: { id2label?: Record<string, string> } }; dispose?: () => Promise<void> };
    try {
      pipe = (await tf.pipeline('text-classification', modelId, { quantized: quantized ?? true })) as unknown as typeof pipe;
    } catch (err) {
      throw new ColloquyError('NOT_FOUND', `cannot load text-classification model '${opts.model}': ${(err as Error).message}`);
    }
    const id2label = pipe.model?.config?.id2label ?? {};
    const labels = Object.keys(id2label).sort((a, b) => Number(a) - Number(b)).map(k => id2label[k]!);
    const { positive, negative } = pickLabels(labels, opts.positiveLabel, opts.negativeLabel);
    const map = opts.map ?? 'top-label';
    if (!(SENTIMENT_MAPS as readonly string[]).includes(map)) throw new ColloquyError('BAD_CONFIG', `unknown sentiment map '${String(map)}' (${SENTIMENT_MAPS.join(', ')})`);
    return new TransformersScorer(pipe, labels, positive, negative, opts.batchSize ?? 32, opts.maxChars ?? 4000, map);
  }

  async score(texts: string[]): Promise<SentimentScore[]> {
    const out: SentimentScore[] = new Array(texts.length);
    for (let s = 0; s < texts.length; s += this.batchSize) {
      const chunk = texts.slice(s, s + this.batchSize).map(t => sanitizeText(t, this.maxChars));
      const res = await this.pipe(chunk, { topk: this.labels.length || 2 });
      // One text with topk > 1 comes back as a flat list; several as a list of lists.
      const rows: LabelScore[][] = chunk.length === 1 && res.length > 0 && !Array.isArray(res[0]) ? [res as LabelScore[]] : (res as LabelScore[][]);
      rows.forEach((row, j) => { out[s + j] = fromSigned(signedScore(row, this.labels, this.positive, this.negative, this.map)); });
    }
    return out;
  }

  async dispose(): Promise<void> { await this.pipe.dispose?.(); }
}

/** The signed score of one text from its label probabilities (see the file's comment for the two maps). */
export function signedScore(row: readonly LabelScore[], labels: readonly string[], positive: string, negative: string | undefined, map: SentimentMap): number {
  const p = (label: string | undefined) => (label === undefined ? 0 : row.find(r => r.label === label)?.score ?? 0);
  const pos = p(positive);
  const neg = negative !== undefined ? p(negative) : 1 - pos;
  if (map === 'p-positive') return pos - neg;
  // No negative label: "positive" against the rest.
  if (negative === undefined) return pos >= 0.5 ? pos : -(1 - pos);
  // Top label; ties to the label that comes first in the model's order.
  const order = labels.length ? labels : row.map(r => r.label);
  let top: string | undefined, best = -Infinity;
  for (const l of order) { const q = p(l); if (q > best) { best = q; top = l; } }
  return top === positive ? best : top === negative ? -best : 0;
}

/** Which labels mean positive and negative. */
export function pickLabels(labels: string[], positive?: string, negative?: string): { positive: string; negative: string | undefined } {
  const find = (re: RegExp) => labels.find(l => re.test(l));
  const pos = positive ?? find(/^(pos|positive)$/i) ?? find(/pos/i) ?? (labels.length === 2 ? labels[1] : undefined);
  const neg = negative ?? find(/^(neg|negative)$/i) ?? find(/neg/i) ?? (labels.length === 2 ? labels[0] : undefined);
  if (pos === undefined || !labels.includes(pos)) {
    throw new ColloquyError('BAD_CONFIG', `cannot tell the positive label among [${labels.join(', ')}]; set positiveLabel`);
  }
  if (neg !== undefined && !labels.includes(neg)) throw new ColloquyError('BAD_CONFIG', `negative label '${neg}' is not among [${labels.join(', ')}]`);
  return { positive: pos, negative: neg === pos ? undefined : neg };
}
