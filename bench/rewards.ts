/**
 * Sentences per second of each sentiment scorer, at batch 1 and batch 64, on SST-2 dev sentences,
 * with VADER's figures beside them as the in-run baseline (the machine is shared: compare within a run).
 *
 *   node bin/run.mjs bench/rewards.ts [--model DIR] [--transformers-model DIR] [--seconds 3] [--backend auto]
 *
 * The classifier needs a checkpoint (colloquy sentiment train); without one it is skipped. With an
 * emotion head it is measured in both modes, and its fast path also from a cold cache (every
 * batch's words' kernel products computed afresh: a first look at every word). The
 * transformers scorer uses --transformers-model, or else a tiny ONNX model built here (so that the
 * figure measures the pipeline overhead, not a real network).
 */
import { parseArgs } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initBackend, type BackendChoice } from '../models/backend.ts';
import { createScorer, defaultClassifierDir, type ScorerSpec } from '../rewards/sentiment.ts';
import { createCompositeReward } from '../rewards/composite.ts';
import { readLabeledTsv } from '../rewards/metrics.ts';
import { ClassifierScorer } from '../rewards/classifier.ts';
import { dataDir } from '../rewards/validate.ts';
import type { SentimentScorer } from '../rewards/types.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' }, 'transformers-model': { type: 'string' }, seconds: { type: 'string' },
    backend: { type: 'string' }, 'data-dir': { type: 'string' },
  },
});
const seconds = Number(values.seconds ?? 3);
const info = await initBackend((values.backend ?? 'auto') as BackendChoice);
const sentences = readLabeledTsv(path.join(dataDir(values['data-dir']), 'sentiment', 'sst2_dev.tsv')).map(d => d.text);

/** Sentences per second of wall-clock time, and per second of this process's CPU time (what a share of a busy machine does not change). */
async function measure(scorer: SentimentScorer, batch: number, beforeBatch?: () => void): Promise<{ wall: number; cpu: number }> {
  // Warm up on every sentence once (the classifier's fast path then knows every word, as in a
  // long run over one domain; the cold-cache row measures the other extreme), then run whole
  // batches for at least `seconds`.
  for (let i = 0; i < sentences.length; i += 64) await scorer.score(sentences.slice(i, i + 64));
  let n = 0, i = 0;
  const t0 = performance.now(), c0 = process.cpuUsage();
  while (performance.now() - t0 < seconds * 1000) {
    const b: string[] = [];
    for (let k = 0; k < batch; k++) b.push(sentences[(i++) % sentences.length]!);
    beforeBatch?.();
    await scorer.score(b);
    n += batch;
  }
  const c = process.cpuUsage(c0);
  return { wall: n / ((performance.now() - t0) / 1000), cpu: n / ((c.user + c.system) / 1e6) };
}

let tiny: string | undefined;
const specs: { label: string; spec: ScorerSpec; cold?: boolean }[] = [{ label: 'vader', spec: { name: 'vader' } }];
const clfDir = path.resolve(values.model ?? defaultClassifierDir());
if (existsSync(path.join(clfDir, 'classifier.json'))) {
  specs.push({ label: 'classifier', spec: { name: 'classifier', dir: clfDir } });
  specs.push({ label: 'classifier, cold cache', spec: { name: 'classifier', dir: clfDir }, cold: true });
  const arch = (JSON.parse(readFileSync(path.join(clfDir, 'classifier.json'), 'utf8')) as { arch: { emotions?: number } }).arch;
  if ((arch.emotions ?? 0) > 0) specs.push({ label: 'classifier-emotion', spec: { name: 'classifier', dir: clfDir, mode: 'emotion' } });
} else console.log(`(classifier skipped: no checkpoint at ${clfDir})`);
if (values['transformers-model']) specs.push({ label: 'transformers', spec: { name: 'transformers', model: values['transformers-model'] } });
else {
  const { writeTinyClassifier } = await import('../tests/rewards/tiny-onnx.ts');
  tiny = await mkdtemp(path.join(tmpdir(), 'colloquy-bench-'));
  await writeTinyClassifier(path.join(tiny, 'tiny'));
  specs.push({ label: 'transformers (tiny ONNX)', spec: { name: 'transformers', model: path.join(tiny, 'tiny') } });
}

console.log(`rewards bench: ${sentences.length} SST-2 dev sentences (mean ${Math.round(sentences.reduce((a, s) => a + s.length, 0) / sentences.length)} chars), backend ${info.name}, ${seconds} s per figure`);
console.log(`${'scorer'.padEnd(26)}${'batch 1 (sent/s)'.padStart(18)}${'batch 64 (sent/s)'.padStart(19)}${'batch 64 (per CPU-s)'.padStart(22)}`);
for (const { label, spec, cold } of specs) {
  const scorer = await createScorer(spec);
  const clear = cold && scorer instanceof ClassifierScorer ? () => scorer.model.clearFastCache() : undefined;
  const b1 = await measure(scorer, 1, clear);
  const b64 = await measure(scorer, 64, clear);
  console.log(`${label.padEnd(26)}${b1.wall.toFixed(0).padStart(18)}${b64.wall.toFixed(0).padStart(19)}${b64.cpu.toFixed(0).padStart(22)}`);
  await scorer.dispose?.();
}

// The composite reward of the Jaques config (VADER + signals), exchanges per second.
const jaques = await createCompositeReward('jaques');
const ctxs = sentences.slice(0, 64).map((s, i) => ({ reply: s, agentUtterance: sentences[(i + 1) % sentences.length]!, history: [{ role: 'student' as const, text: sentences[(i + 2) % sentences.length]! }], turnIndex: 1 }));
await jaques.computeBatch(ctxs);
let n = 0;
const t0 = performance.now();
while (performance.now() - t0 < seconds * 1000) { await jaques.computeBatch(ctxs); n += ctxs.length; }
console.log(`${'composite jaques (vader)'.padEnd(26)}${''.padStart(18)}${(n / ((performance.now() - t0) / 1000)).toFixed(0).padStart(19)}`);
if (tiny) await rm(tiny, { recursive: true, force: true });
