/**
 * A tiny base model for tests: a BPE tokenizer trained on the shipped corpus and a small randomly
 * initialised (or briefly trained) transformer, saved as a real checkpoint folder. Built once per
 * folder; later calls reuse it.
 */
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BpeTokenizer } from '../../models/tokenizer.ts';
import { TransformerLM } from '../../models/lm.ts';
import { saveCheckpoint } from '../../models/checkpoint.ts';
import { formatTranscript, loadShippedCorpus } from '../../corpora/readers.ts';

export interface TinyModelOptions { vocabSize?: number; dModel?: number; nLayers?: number; seed?: number; dir?: string }

export function tinyModelDir(name = 'colloquy-tiny-model'): string {
  return path.join(os.tmpdir(), `${name}-${process.env.VITEST_POOL_ID ?? 'x'}`);
}

export async function buildTinyModel(opts: TinyModelOptions = {}): Promise<string> {
  const dir = opts.dir ?? tinyModelDir();
  if (existsSync(path.join(dir, 'model.json')) && existsSync(path.join(dir, 'tokenizer.json'))) return dir;
  mkdirSync(dir, { recursive: true });
  const texts = loadShippedCorpus().map(d => formatTranscript(d));
  const tokenizer = BpeTokenizer.train(texts, { vocabSize: opts.vocabSize ?? 600 });
  const model = TransformerLM.create({
    vocabSize: tokenizer.vocabSize, dModel: opts.dModel ?? 32, nLayers: opts.nLayers ?? 1, nHeads: 2, dFF: 64, contextLength: 256,
  }, opts.seed ?? 1);
  await saveCheckpoint(model, dir, { tokenizer: tokenizer.toJSON(), metadata: { note: 'tiny test model' } as never });
  model.dispose();
  return dir;
}
