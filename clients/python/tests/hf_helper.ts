/**
 * Colloquy's side of the Hugging Face tests (test_hf_*.py): `node bin/run.mjs
 * clients/python/tests/hf_helper.ts < REQUEST.json`, one request (or an array of them, run in
 * order: one process start for many), one JSON reply (or an array) on stdout.
 *
 *   {"op": "tiny", "dir"}                          build the tests' tiny base model there (tests/helpers/tiny-model.ts)
 *   {"op": "logprobs", "model", "sequences"}        per-token log-probs of each id sequence (token 0 given, tokens 1… scored)
 *   {"op": "encode", "model", "texts"}             token ids of each text by the checkpoint's tokenizer
 *   {"op": "corpus", "count"}                       the first `count` shipped dialogs as transcripts
 *   {"op": "corpusIds", "model", "count", "maxLen"} those transcripts' ids by the checkpoint's tokenizer, cut to maxLen
 *   {"op": "export", "model", "out"}                models/hf.ts exportHfModel (what `colloquy export-model` runs)
 *   {"op": "random", "dir", "tokenizerFrom", "config", "seed"}
 *                                                  a checkpoint with the tokenizer of `tokenizerFrom` and every weight
 *                                                  drawn at random (std 0.3; layer-norm gains 1 ± 0.3), so that log-probs
 *                                                  are far from uniform and a misplaced parameter shows
 */
import { readFileSync } from 'node:fs';
import { initBackend } from '../../../models/backend.ts';
import { loadCheckpoint, saveCheckpoint } from '../../../models/checkpoint.ts';
import { TransformerLM, type LMConfig } from '../../../models/lm.ts';
import { Rng } from '../../../core/rng.ts';
import { BpeTokenizer } from '../../../models/tokenizer.ts';
import { exportHfModel } from '../../../models/hf.ts';
import { buildTinyModel } from '../../../tests/helpers/tiny-model.ts';
import { formatTranscript, loadShippedCorpus } from '../../../corpora/readers.ts';

type Req =
  | { op: 'tiny'; dir: string }
  | { op: 'logprobs'; model: string; sequences: number[][] }
  | { op: 'encode'; model: string; texts: string[] }
  | { op: 'corpus'; count: number }
  | { op: 'corpusIds'; model: string; count: number; maxLen: number }
  | { op: 'export'; model: string; out: string }
  | { op: 'random'; dir: string; tokenizerFrom: string; config: Partial<LMConfig>; seed: number };

const input = JSON.parse(readFileSync(0, 'utf8')) as Req | Req[];
await initBackend('auto');

async function tokenizerOf(dir: string): Promise<BpeTokenizer> {
  const { model, tokenizer } = await loadCheckpoint(dir);
  model.dispose();
  return BpeTokenizer.fromJSON(tokenizer);
}

async function handle(req: Req): Promise<unknown> {
  if (req.op === 'tiny') return { dir: await buildTinyModel({ dir: req.dir }) };
  if (req.op === 'logprobs') {
    const { model } = await loadCheckpoint(req.model);
    try { return { logprobs: model.sequenceLogProbs(req.sequences.map(s => s.slice(0, 1)), req.sequences.map(s => s.slice(1))) }; } finally { model.dispose(); }
  }
  if (req.op === 'encode') { const tok = await tokenizerOf(req.model); return { ids: req.texts.map(t => tok.encode(t)) }; }
  if (req.op === 'corpusIds') {
    const tok = await tokenizerOf(req.model);
    return { ids: loadShippedCorpus().slice(0, req.count).map(d => tok.encode(formatTranscript(d)).slice(0, req.maxLen)) };
  }
  if (req.op === 'export') return exportHfModel(req.model, req.out);
  if (req.op === 'random') {
    const tokenizer = await tokenizerOf(req.tokenizerFrom);
    const model = TransformerLM.create({ ...req.config, vocabSize: tokenizer.vocabSize }, req.seed);
    const rng = new Rng(req.seed + 1);
    const values = model.weightValues();
    for (const [name, v] of values) for (let i = 0; i < v.length; i++) v[i] = (name.endsWith('.g') ? 1 : 0) + 0.3 * rng.normal();
    model.setWeights(values);
    await saveCheckpoint(model, req.dir, { tokenizer: tokenizer.toJSON() });
    model.dispose();
    return { dir: req.dir };
  }
  return { texts: loadShippedCorpus().slice(0, req.count).map(d => formatTranscript(d)) };
}

const out: unknown[] = [];
for (const r of Array.isArray(input) ? input : [input]) out.push(await handle(r));
process.stdout.write(JSON.stringify(Array.isArray(input) ? out : out[0]));
