/**
 * One entry point for the sentiment scorers: `createScorer({name: 'vader' | 'classifier' |
 * 'transformers', ...})`. The spec is a typed, validated value (TypeBox), so reward configs and
 * env kwargs can name a scorer. `sharedScorer` memoises loaded scorers per spec within a process.
 *
 * The `classifier` scorer runs TensorFlow.js: the entry point (CLI, server, worker) must have
 * chosen a backend with `initBackend` before; library code never does.
 */
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { validateConfig } from '../core/config.ts';
import { VaderScorer } from './vader.ts';
import type { SentimentScorer } from './types.ts';
import { DATA_DIR } from '../core/paths.ts';


/** Where `colloquy sentiment train` writes and the `classifier` scorer reads by default. */
export function defaultClassifierDir(): string {
  return process.env.COLLOQUY_SENTIMENT_MODEL || path.join(DATA_DIR, 'models', 'sentiment-classifier');
}

export const SCORER_NAMES = ['vader', 'classifier', 'transformers'] as const;
export type ScorerName = (typeof SCORER_NAMES)[number];

export const VaderSpec = Type.Object({ name: Type.Literal('vader') }, { additionalProperties: false });
export const ClassifierSpec = Type.Object({
  name: Type.Literal('classifier'),
  dir: Type.Optional(Type.String({ description: 'checkpoint folder (default data/models/sentiment-classifier, or $COLLOQUY_SENTIMENT_MODEL)' })),
  batchSize: Type.Optional(Type.Integer({ minimum: 1, description: 'texts per forward pass' })),
  mode: Type.Optional(Type.Union([Type.Literal('sentiment'), Type.Literal('emotion')], { description: "'sentiment' (default): the sentiment head; 'emotion': the emotion head's distribution weighted by emotionWeights (Jaques et al. 2019)" })),
  emotionWeights: Type.Optional(Type.Record(Type.String(), Type.Number({ minimum: -1, maximum: 1 }), { description: 'emotion mode: weight by emotion name (none, anger, disgust, fear, happiness, sadness, surprise), over the defaults of rewards/emotions.ts' })),
}, { additionalProperties: false });
export const TransformersSpec = Type.Object({
  name: Type.Literal('transformers'),
  model: Type.String({ description: 'local model folder (transformers.js layout), or a hub id when allowRemote' }),
  allowRemote: Type.Optional(Type.Boolean({ description: 'allow downloads from the hub (off by default)' })),
  quantized: Type.Optional(Type.Boolean({ description: 'use onnx/model_quantized.onnx' })),
  positiveLabel: Type.Optional(Type.String({ description: 'name of the positive label (default: found by name)' })),
  negativeLabel: Type.Optional(Type.String({ description: 'name of the negative label (default: found by name)' })),
  map: Type.Optional(Type.Union([Type.Literal('top-label'), Type.Literal('p-positive')], { description: 'label probabilities → signed score: top-label (Cohen et al.\'s klreg.py: +p_top if the top label is positive, −p_top if negative; default) or p-positive (P(pos) − P(neg))' })),
  batchSize: Type.Optional(Type.Integer({ minimum: 1, description: 'texts per model call' })),
}, { additionalProperties: false });
export const ScorerSpecSchema = Type.Union([VaderSpec, ClassifierSpec, TransformersSpec]);
export type ScorerSpec = Static<typeof ScorerSpecSchema>;

/** Build a scorer from its spec (validated). Missing model folders are NOT_FOUND errors. */
export async function createScorer(spec: ScorerSpec): Promise<SentimentScorer> {
  const s = validateConfig(ScorerSpecSchema, spec, 'sentiment scorer spec');
  switch (s.name) {
    case 'vader':
      return new VaderScorer();
    case 'classifier': {
      const { ClassifierScorer, SentimentClassifier } = await import('./classifier.ts');
      return new ClassifierScorer(await SentimentClassifier.load(s.dir ?? defaultClassifierDir()), { batchSize: s.batchSize, mode: s.mode, emotionWeights: s.emotionWeights });
    }
    case 'transformers': {
      const { TransformersScorer } = await import('./transformers.ts');
      return TransformersScorer.load(s);
    }
  }
}

const cache = new Map<string, Promise<SentimentScorer>>();

/** Like `createScorer`, but one loaded scorer per distinct spec in this process. A failed load is not cached. */
export function sharedScorer(spec: ScorerSpec): Promise<SentimentScorer> {
  const key = JSON.stringify(spec, Object.keys(spec).sort());
  let p = cache.get(key);
  if (!p) {
    p = createScorer(spec);
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

/** Forget (and dispose) every shared scorer. */
export async function clearSharedScorers(): Promise<void> {
  const all = [...cache.values()];
  cache.clear();
  for (const p of all) { try { await (await p).dispose?.(); } catch { /* already failed */ } }
}
