/**
 * Tokenizer figures: BPE training time on the pretraining corpus (MathDial + shipped when the data
 * dir exists, else shipped only) and encode/decode throughput.
 *
 *   node bin/run.mjs bench/tokenizer.ts [--vocab 4000] [--data-dir DIR] [--repeat 3]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatTranscript, loadMathDial, loadShippedCorpus, resolveDataDir, type Dialog } from '../corpora/readers.ts';
import { BpeTokenizer } from '../models/tokenizer.ts';

const { values } = parseArgs({ options: {
  vocab: { type: 'string', default: '4000' },
  'data-dir': { type: 'string' },
  repeat: { type: 'string', default: '3' },
} });
const vocabSize = Number(values.vocab), repeat = Number(values.repeat);
const dataDir = resolveDataDir(values['data-dir']);
const dialogs: Dialog[] = [...loadShippedCorpus()];
if (dataDir) dialogs.push(...loadMathDial(path.join(dataDir, 'mathdial', 'test.jsonl')));
const texts = dialogs.map(d => formatTranscript(d));
const chars = texts.reduce((n, t) => n + t.length, 0);
const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
console.log(`corpus: ${dataDir ? 'MathDial + shipped' : 'shipped only'}, ${dialogs.length} dialogs, ${chars} chars, ${(bytes / 1e6).toFixed(2)} MB`);

let tok!: BpeTokenizer;
const trainTimes: number[] = [];
for (let r = 0; r < repeat; r++) {
  const t0 = performance.now();
  tok = BpeTokenizer.train(texts, { vocabSize });
  trainTimes.push((performance.now() - t0) / 1000);
}
console.log(`train: vocab ${tok.vocabSize} (${tok.numMerges} merges) in ${Math.min(...trainTimes).toFixed(2)} s (best of ${repeat}; all: ${trainTimes.map(t => t.toFixed(2)).join(', ')})`);

const all = texts.join('');
const fresh = BpeTokenizer.fromJSON(tok.toJSON()); // empty word cache
let t0 = performance.now();
const ids = fresh.encode(all);
const cold = (performance.now() - t0) / 1000;
const warm: number[] = [];
for (let r = 0; r < repeat; r++) { t0 = performance.now(); fresh.encode(all); warm.push((performance.now() - t0) / 1000); }
const w = Math.min(...warm);
console.log(`encode: ${ids.length} tokens (${(chars / ids.length).toFixed(2)} chars/token); cold cache ${(chars / cold / 1e6).toFixed(2)} M chars/s, warm cache ${(chars / w / 1e6).toFixed(2)} M chars/s (${(ids.length / w / 1e6).toFixed(2)} M tokens/s)`);

// Short-utterance encode, as on the environment's hot path.
const utterances = dialogs.flatMap(d => d.turns.map(t => ' ' + t.text)).slice(0, 20000);
const uChars = utterances.reduce((n, u) => n + u.length, 0);
t0 = performance.now();
for (const u of utterances) fresh.encode(u);
const ut = (performance.now() - t0) / 1000;
console.log(`encode utterances: ${utterances.length} in ${(ut * 1000).toFixed(0)} ms, ${(utterances.length / ut / 1e3).toFixed(0)} k utterances/s, ${(uChars / ut / 1e6).toFixed(2)} M chars/s`);

t0 = performance.now();
const back = fresh.decode(ids);
const dt = (performance.now() - t0) / 1000;
console.log(`decode: ${(ids.length / dt / 1e6).toFixed(2)} M tokens/s; round trip ${back === all ? 'exact' : 'MISMATCH'}`);
