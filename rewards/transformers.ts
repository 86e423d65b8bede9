/**
 * The `transformers` sentiment scorer: any text-classification model in the transformers.js
 * layout (config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx or
 * onnx/model_quantized.onnx), loaded with `@xenova/transformers` from a local folder — e.g. the
 * DistilBERT SST-2 model used by Cohen et al. (2024). Downloads stay off unless `allowRemote`.
 *
 * signed = P(positive) − P(negative) over the model's labels (softmax), where the positive and
 * negative labels are found by name (POSITIVE/NEGATIVE, pos/neg, LABEL_1/LABEL_0 for a two-label
 * model) or given in the spec. Neutral labels count for neither.
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
  /** Texts per model call. */
  batchSize?: number;
  /** Longest text in characters passed to the tokenizer (the tokenizer also truncates to the model's length). */
  maxChars?: number;
}

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
    return new TransformersScorer(pipe, labels, positive, negative, opts.batchSize ?? 32, opts.maxChars ?? 4000);
  }

  async score(texts: string[]): Promise<SentimentScore[]> {
    const out: SentimentScore[] = new Array(texts.length);
    for (let s = 0; s < texts.length; s += this.batchSize) {
      const chunk = texts.slice(s, s + this.batchSize).map(t => sanitizeText(t, this.maxChars));
      const res = await this.pipe(chunk, { topk: this.labels.length || 2 });
      // One text with topk > 1 comes back as a flat list; several as a list of lists.
      const rows: LabelScore[][] = chunk.length === 1 && res.length > 0 && !Array.isArray(res[0]) ? [res as LabelScore[]] : (res as LabelScore[][]);
      rows.forEach((row, j) => {
        const p = (label: string | undefined) => (label === undefined ? 0 : row.find(r => r.label === label)?.score ?? 0);
        const pos = p(this.positive);
        const neg = this.negative !== undefined ? p(this.negative) : 1 - pos;
        out[s + j] = fromSigned(pos - neg);
      });
    }
    return out;
  }

  async dispose(): Promise<void> { await this.pipe.dispose?.(); }
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
