/**
 * The language models a dialog env uses (base policy, student simulator), loaded once per
 * checkpoint folder and shared by every env and session of the process: a checkpoint is immutable
 * and keyed by its absolute folder, so sharing it carries no setting from one maker to another
 * (which folder an env uses comes from its kwargs or its context, env/context.ts). The tokenizer
 * is read synchronously (an env's spaces depend on its vocabulary); the weights load on first use.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BpeTokenizer } from '../models/tokenizer.ts';
import { loadCheckpoint } from '../models/checkpoint.ts';
import { SessionPool, canPool, sampleRows } from '../models/session-pool.ts';
import { rowCacheFloats } from '../models/sampler.ts';
import type { TransformerLM } from '../models/lm.ts';
import { BadConfig, ColloquyError } from '../core/errors.ts';
import { Batcher } from './batcher.ts';
import type { TokenSampler } from './students.ts';

export interface DialogModel {
  readonly dir: string;
  readonly tokenizer: BpeTokenizer;
  readonly lm: TransformerLM;
  readonly sampler: TokenSampler;
  /** Next-token log-probabilities for each context (batched across callers in the same tick). */
  nextTokenLogProbs(contexts: number[][]): Promise<Float32Array[]>;
}

const tokenizers = new Map<string, BpeTokenizer>();
const models = new Map<string, Promise<DialogModel>>();

export function loadDialogTokenizer(dir: string): BpeTokenizer {
  const key = path.resolve(dir);
  let tok = tokenizers.get(key);
  if (!tok) {
    const file = path.join(key, 'tokenizer.json');
    if (!existsSync(file)) throw new BadConfig(`no model at ${key} (missing tokenizer.json); run 'colloquy pretrain' or start the server once to create the base model`);
    tok = BpeTokenizer.fromJSON(JSON.parse(readFileSync(file, 'utf8')));
    tokenizers.set(key, tok);
  }
  return tok;
}

export { sampleRows } from '../models/session-pool.ts';

/** KV-cache memory a model's student pool may hold (its rows live between turns). */
const POOL_BYTES = 128 * 2 ** 20;

/**
 * The student's sampler: with the native decoding step, a pool of rows that keeps each dialog's
 * cache from one turn to the next (models/session-pool.ts; the same tokens as a fresh session);
 * otherwise a fresh session per batch.
 */
function dialogSampler(lm: TransformerLM): TokenSampler {
  const pool = new SessionPool(lm, Math.max(16, Math.floor(POOL_BYTES / (4 * rowCacheFloats(lm.config)))));
  return { sampleBatch: async (contexts, opts) => (canPool() ? pool.sample(contexts, opts) : sampleRows(lm, contexts, opts)) };
}

export function loadDialogModel(dir: string): Promise<DialogModel> {
  const key = path.resolve(dir);
  let p = models.get(key);
  if (!p) {
    p = (async () => {
      const tokenizer = loadDialogTokenizer(key);
      let lm: TransformerLM;
      try {
        ({ model: lm } = await loadCheckpoint(key));
      } catch (err) {
        throw new ColloquyError('BAD_CONFIG', `cannot load the model at ${key}: ${(err as Error).message}`);
      }
      const logProbBatcher = new Batcher<number[], Float32Array>(async ctxs => lm.nextTokenLogProbs(ctxs), 64);
      const sampler = dialogSampler(lm);
      return {
        dir: key, tokenizer, lm, sampler,
        nextTokenLogProbs: (contexts: number[][]) => Promise.all(contexts.map(c => logProbBatcher.request(c))),
      };
    })();
    p.catch(() => models.delete(key));
    models.set(key, p);
  }
  return p;
}
