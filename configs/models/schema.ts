/**
 * Schemas of the language-model configs (`configs/models/*.json`): the architecture (`model`, also
 * written as a checkpoint's `model.json`), the tokenizer and the pretraining run (`train`). The
 * TypeBox schema is both the JSON Schema that validates a file and the TypeScript type.
 */
import { Type, type Static } from '@sinclair/typebox';

export const LMArchSchema = Type.Object({
  vocabSize: Type.Integer({ minimum: 2, default: 4000, description: 'Vocabulary size (set from the tokenizer when pretraining).' }),
  dModel: Type.Integer({ minimum: 4, default: 128, description: 'Width of the residual stream.' }),
  nLayers: Type.Integer({ minimum: 1, default: 4, description: 'Number of transformer blocks.' }),
  nHeads: Type.Integer({ minimum: 1, default: 4, description: 'Attention heads per block (must divide dModel).' }),
  dFF: Type.Integer({ minimum: 1, default: 512, description: 'Hidden width of the feed-forward (ReLU) layer.' }),
  activation: Type.Optional(Type.Union([Type.Literal('relu'), Type.Literal('gelu_new'), Type.Literal('gelu')], { description: 'Activation of the feed-forward layer (absent: relu). gelu_new: GPT-2\'s tanh GELU; gelu: the exact erf GELU (for imported Hugging Face models).' })),
  contextLength: Type.Integer({ minimum: 2, default: 256, description: 'Longest context the model attends over; longer inputs slide (see lm.ts windowStart).' }),
  dropout: Type.Number({ minimum: 0, maximum: 0.9, default: 0, description: 'Dropout on the embeddings and on each residual branch while training.' }),
  positional: Type.Union([Type.Literal('learned'), Type.Literal('sinusoidal')], { default: 'learned', description: 'Position embeddings: a learned table or fixed sinusoids.' }),
  tieEmbeddings: Type.Boolean({ default: true, description: 'Use the token embedding as the output projection.' }),
  layerNormEps: Type.Number({ exclusiveMinimum: 0, default: 1e-5, description: 'Epsilon of layer normalisation.' }),
  bosTokenId: Type.Integer({ minimum: 0, default: 0, description: 'Token fed when a context is empty (the tokenizer\'s <|endoftext|>).' }),
  initStd: Type.Number({ exclusiveMinimum: 0, default: 0.02, description: 'Std of the normal initialisation (residual projections scaled by 1/sqrt(2·nLayers)).' }),
}, { additionalProperties: false });
export type LMConfig = Static<typeof LMArchSchema>;

export const TokenizerConfigSchema = Type.Object({
  vocabSize: Type.Integer({ minimum: 260, default: 4000, description: 'BPE vocabulary size, the 4 added tokens and 256 bytes included.' }),
  minFrequency: Type.Integer({ minimum: 1, default: 2, description: 'A pair must occur this often to be merged.' }),
}, { additionalProperties: false });
export type TokenizerConfig = Static<typeof TokenizerConfigSchema>;

export const TrainConfigSchema = Type.Object({
  corpus: Type.String({ default: 'mathdial,shipped', description: 'Comma-separated corpora: shipped, mathdial, dailydialog[:split], bridge[:split], chat:FILE.jsonl.' }),
  heldOut: Type.Number({ minimum: 0, maximum: 0.5, default: 0.1, description: 'Fraction of each corpus held out for validation perplexity.' }),
  heldOutSplits: Type.Boolean({ default: false, description: "Where a corpus is the train split of a data set with its own validation split (dailydialog, bridge), train on all of it and validate on that split instead of holding out a fraction." }),
  splitSeed: Type.Integer({ default: 0, description: 'Seed of the train / held-out split.' }),
  seed: Type.Integer({ default: 1, description: 'Seed of initialisation, batch order and dropout.' }),
  batchSize: Type.Integer({ minimum: 1, default: 16, description: 'Sequences per optimiser step.' }),
  seqLength: Type.Integer({ minimum: 2, default: 256, description: 'Tokens per training sequence (at most contextLength).' }),
  learningRate: Type.Number({ exclusiveMinimum: 0, default: 3e-3, description: 'Peak Adam learning rate.' }),
  minLrFraction: Type.Number({ minimum: 0, maximum: 1, default: 0.1, description: 'The cosine schedule ends at this fraction of the peak.' }),
  warmupSteps: Type.Integer({ minimum: 0, default: 20, description: 'Linear warm-up steps.' }),
  beta1: Type.Number({ minimum: 0, maximum: 1, default: 0.9, description: 'Adam beta1.' }),
  beta2: Type.Number({ minimum: 0, maximum: 1, default: 0.99, description: 'Adam beta2.' }),
  gradClip: Type.Number({ minimum: 0, default: 1, description: 'Clip the global gradient norm to this (0: off).' }),
  epochs: Type.Number({ exclusiveMinimum: 0, default: 20, description: 'Passes over the training tokens (a time budget may stop earlier).' }),
  minutes: Type.Number({ minimum: 0, default: 10, description: 'Wall-clock budget in minutes (0: no limit); the schedule follows whichever of epochs or minutes ends first.' }),
  threads: Type.Integer({ minimum: 1, maximum: 64, default: 2, description: 'Threads computing gradients: each batch is split row-wise across this thread and threads−1 worker threads (the wasm backend uses one core each).' }),
  evalTokens: Type.Integer({ minimum: 0, default: 200000, description: 'At most this many held-out tokens per validation (0: all).' }),
}, { additionalProperties: false });
export type TrainConfig = Static<typeof TrainConfigSchema>;

export const ModelFileSchema = Type.Object({
  description: Type.Optional(Type.String()),
  model: Type.Partial(LMArchSchema, { default: {} }),
  tokenizer: TokenizerConfigSchema,
  train: TrainConfigSchema,
}, { additionalProperties: false });
export type ModelFile = Static<typeof ModelFileSchema>;
