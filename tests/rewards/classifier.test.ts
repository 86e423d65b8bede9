import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initBackend } from '../../models/backend.ts';
import { trainClassifier, buildVocab, DEFAULT_TRAIN, evaluateClassifier } from '../../rewards/train-classifier.ts';
import { SentimentClassifier, ClassifierScorer, DEFAULT_ARCH, dense } from '../../rewards/classifier.ts';
import { createScorer } from '../../rewards/sentiment.ts';
import { readLabeledTsv, accuracy, rocAuc } from '../../rewards/metrics.ts';
import { BAD_INPUTS, expectValidScores } from './bad-inputs.ts';
import { dataPath, itWithData } from '../helpers/data.ts';

const SST = dataPath('sentiment');
const SST_TRAIN = 'sentiment/sst2_train.tsv', SST_DEV = 'sentiment/sst2_dev.tsv';
let dir: string;
let model: SentimentClassifier;
let firstLoss = 0, lastLoss = 0;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(tmpdir(), 'colloquy-clf-'));
  // A small synthetic training file: positive and negative templates with distinct words.
  const pos = ['good', 'great', 'wonderful', 'fun', 'moving', 'brilliant'];
  const neg = ['bad', 'boring', 'awful', 'dull', 'tedious', 'terrible'];
  const lines = ['label\tsentence'];
  for (let i = 0; i < 300; i++) {
    const p = pos[i % pos.length]!, n = neg[(i * 7) % neg.length]!;
    lines.push(`1\tthe movie is ${p} and ${pos[(i + 1) % pos.length]}`, `0\tthe film was ${n} , very ${neg[(i + 2) % neg.length]}`);
    lines.push(`1\tit 's not ${n}`, `0\tit 's not ${p}`);
  }
  await writeFile(path.join(dir, 'train.tsv'), lines.join('\n'));
  const losses: number[] = [];
  const r = await trainClassifier({
    // From scratch (vectors: null): tests never read the 307 MB vectors package; tests/rewards/word-vectors.test.ts covers them.
    // The shipped architecture as it is (DEFAULT_TRAIN.arch, the CNN of DEFAULT_ARCH): on 1,200 short phrases it takes a few seconds.
    ...DEFAULT_TRAIN, vectors: null, trainFile: path.join(dir, 'train.tsv'), epochs: 3, batchSize: 32, lr: 5e-3, seed: 7, members: 2,
  }, { onStep: (_s, _t, l) => losses.push(l) });
  model = r.model;
  // Losses are running means per epoch; compare the first step with the end of member 1.
  firstLoss = losses[0]!;
  lastLoss = losses[losses.length / 2 - 1]!;
}, 120_000);

afterAll(async () => {
  model?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('sentiment classifier (TF.js)', () => {
  it('trains the shipped architecture (DEFAULT_ARCH: a CNN with masked windows, n-gram and lexicon inputs, scored on the fast path)', () => {
    expect(DEFAULT_TRAIN.arch).toBe(DEFAULT_ARCH);
    expect(model.arch).toMatchObject(DEFAULT_ARCH);
    expect(model.arch.widths.length).toBeGreaterThan(0);
    expect(model.fastPathEligible).toBe(true);
  });
  it('learns: loss falls and it separates held-out phrasings', async () => {
    expect(lastLoss).toBeLessThan(firstLoss * 0.5);
    const p = await model.predict(['the movie is brilliant and fun', 'the film was dull , very boring', "it 's not terrible", "it 's not wonderful"]);
    expect(p[0]).toBeGreaterThan(0.8);
    expect(p[1]).toBeLessThan(0.2);
    expect(p[2]).toBeGreaterThan(0.5);
    expect(p[3]).toBeLessThan(0.5);
  });
  it('saves and loads the same predictions, with metadata', async () => {
    const out = path.join(dir, 'ckpt');
    await model.save(out);
    const loaded = await SentimentClassifier.load(out);
    const texts = ['the movie is good', 'awful', 'unknown words here', ''];
    // The loaded checkpoint scores on the fast path, the trained model on TF.js: the same numbers to float rounding.
    expect(loaded.fastPathOn).toBe(true);
    const [pl, pm] = [await loaded.predict(texts), await model.predict(texts)];
    for (let i = 0; i < texts.length; i++) expect(pl[i]).toBeCloseTo(pm[i]!, 5);
    expect(loaded.meta.trainExamples).toBe(1200);
    expect(loaded.arch.lexicon).toBe(true);
    expect(loaded.numMembers).toBe(2);
    // The ensemble is the mean of its members.
    const [m0, m1, both] = [await loaded.predict(texts, 64, [0]), await loaded.predict(texts, 64, [1]), await loaded.predict(texts)];
    for (let i = 0; i < 3; i++) expect(both[i]).toBeCloseTo((m0[i]! + m1[i]!) / 2, 5);
    const scorer = await createScorer({ name: 'classifier', dir: out });
    const [s] = await scorer.score(['the movie is great']);
    expect(s!.score).toBeCloseTo((s!.signed + 1) / 2, 6);
    await scorer.dispose?.();
    loaded.dispose();
  });
  it('survives bad input; empty text is neutral', async () => {
    const scorer = new ClassifierScorer(model);
    const scores = await scorer.score(BAD_INPUTS);
    expectValidScores(scores, BAD_INPUTS.length);
    expect(scores[0]).toEqual({ score: 0.5, signed: 0 });
  });
  it('does not leak tensors when predicting', async () => {
    await model.predict(['warm up']);
    const before = tf.memory().numTensors;
    await model.predict(['the movie is good', 'bad']);
    expect(tf.memory().numTensors).toBe(before);
  });
  it('packs n-grams (bigrams, trigrams) and splits hyphens when asked', () => {
    const vocab = buildVocab(['well-made fun film', 'a dull film'], 1, true);
    expect(vocab).toEqual(expect.arrayContaining(['well', '-', 'made']));
    const m = SentimentClassifier.create({ embedDim: 4, widths: [2], filters: 2, hidden: 0, bigramBuckets: 64, maxLen: 16, ngramOrder: 3, splitHyphens: true }, vocab, 1);
    const ids = m.encodeText('A well-made film');
    expect(ids.map(i => m.vocab[i])).toEqual(['a', 'well', '-', 'made', 'film']);
    const b = m.packBatch([ids, ids.slice(0, 2)]);
    // len 5: 4 bigram + 3 trigram slots per row; the short row has 1 bigram and no trigram.
    expect(b.bigramLen).toBe(7);
    expect(Array.from(b.bigramMask.subarray(0, 7)).reduce((x, y) => x + y, 0)).toBe(7);
    expect(Array.from(b.bigramMask.subarray(7)).reduce((x, y) => x + y, 0)).toBe(1);
    expect(Array.from(b.bigrams).every(h => h >= 0 && h < 64)).toBe(true);
    m.dispose();
  });
  it('a bidirectional GRU path: padding does not change a score, gradients reach both directions', async () => {
    const vocab = buildVocab(['the movie is good', 'a dull and boring film'], 1);
    const m = SentimentClassifier.create({ embedDim: 6, widths: [], filters: 0, hidden: 0, bigramBuckets: 0, maxLen: 16, rnn: 5 }, vocab, 4);
    const texts = ['the movie is good', 'boring', 'a dull and boring film is good'];
    const batched = await m.predict(texts, 64);
    const alone = await Promise.all(texts.map(async t => (await m.predict([t], 1))[0]!));
    for (let i = 0; i < texts.length; i++) expect(batched[i]).toBeCloseTo(alone[i]!, 5);
    // Reversing a text changes its score (the two directions have different weights).
    const [fwd, rev] = await m.predict(['the movie is good', 'good is movie the']);
    expect(fwd).not.toBeCloseTo(rev!, 6);
    const vars = [...m.variables().values()].filter(v => v.trainable);
    const gradsOf = (texts: string[]) => tf.variableGrads(() => m.logits(m.packBatch(texts.map(t => m.encodeText(t))), 0.5, 1).sum() as tf.Scalar, vars);
    const { value, grads } = gradsOf(['the movie is good', 'boring']);
    for (const dir of ['fw', 'bw']) {
      const g = grads[m.variables().get(`gru/${dir}/recurrent`)!.name]!;
      expect(tf.tidy(() => g.abs().sum().dataSync()[0]!)).toBeGreaterThan(0);
    }
    tf.dispose([value, ...Object.values(grads)]);
    // A batch of one-word texts (one time step) trains too.
    const one = gradsOf(['good', 'boring']);
    tf.dispose([one.value, ...Object.values(one.grads)]);
    m.dispose();
  });
  it('dense() has the gradient of matMul, for matrices and batches of them', () => {
    const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    const w = tf.tensor2d([[1, 0], [0, 1], [1, 1]]);
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => dense(a as tf.Tensor2D, b as tf.Tensor2D).square().sum())([x, w]);
    const [rx, rw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D).square().sum())([x, w]);
    expect(Array.from(gx!.dataSync())).toEqual(Array.from(rx!.dataSync()));
    expect(Array.from(gw!.dataSync())).toEqual(Array.from(rw!.dataSync()));
    tf.dispose([x, w, gx!, gw!, rx!, rw!]);
    // A batch of products ([n, M, K] × [n, K, N]), as the two GRU directions use.
    const xb = tf.tensor3d([[[1, 2], [3, 4]], [[5, 6], [7, 8]]]);
    const wb = tf.tensor3d([[[1, -1, 0], [0, 2, 1]], [[2, 0, 1], [1, 1, -1]]]);
    const [bx, bw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => dense(a as tf.Tensor3D, b as tf.Tensor3D).square().sum())([xb, wb]);
    const [cx, cw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D).square().sum())([xb, wb]);
    expect(Array.from(bx!.dataSync())).toEqual(Array.from(cx!.dataSync()));
    expect(Array.from(bw!.dataSync())).toEqual(Array.from(cw!.dataSync()));
    tf.dispose([xb, wb, bx!, bw!, cx!, cw!]);
  });
  // The shipped CNN shape with narrower layers (24-d embeddings, 32 filters a width): a few seconds for 6,000 phrases × 2 epochs.
  itWithData('trains on a real SST-2 slice quickly and beats chance on dev', [SST_TRAIN, SST_DEV], async () => {
    const r = await trainClassifier({
      ...DEFAULT_TRAIN, vectors: null, trainFile: path.join(SST, 'sst2_train.tsv'), limit: 6000, epochs: 2, lr: 4e-3, seed: 3,
      arch: { ...DEFAULT_ARCH, embedDim: 24, filters: 32 },
    });
    expect(r.model.arch).toMatchObject({ widths: [1, 2, 3], rnn: 0, lexicon: true, maskWindows: true });
    const dev = readLabeledTsv(path.join(SST, 'sst2_dev.tsv'));
    const m = await evaluateClassifier(r.model, dev);
    expect(m.accuracy).toBeGreaterThan(0.65);
    expect(m.auc).toBeGreaterThan(0.7);
    r.model.dispose();
  }, 60_000);
});

describe('metrics', () => {
  it('accuracy and AUC by ranks with ties', () => {
    expect(accuracy([0.9, 0.1, 0.6, 0.4], [1, 0, 0, 1])).toBe(0.5);
    expect(rocAuc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0])).toBe(1);
    expect(rocAuc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0])).toBe(0);
    expect(rocAuc([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0])).toBe(0.5);
    expect(rocAuc([0.3, 0.7, 0.7, 0.2], [0, 1, 0, 1])).toBeCloseTo(0.375);
    expect(Number.isNaN(rocAuc([0.1, 0.2], [1, 1]))).toBe(true);
  });
  it('vocabulary is <pad>, <unk>, then words by count', () => {
    expect(buildVocab(['a b b', 'c b a'])).toEqual(['<pad>', '<unk>', 'b', 'a', 'c']);
    expect(buildVocab(['a b b'], 2)).toEqual(['<pad>', '<unk>', 'b']);
  });
  itWithData('reads label<TAB>sentence files, skipping a header', [SST_DEV], () => {
    const d = readLabeledTsv(path.join(SST, 'sst2_dev.tsv'), 3);
    expect(d).toHaveLength(3);
    expect(d[0]!.label).toBe(0);
  });
  it('a missing label<TAB>sentence file is a clear error', () => {
    expect(() => readLabeledTsv('/no/such/file.tsv')).toThrow(/cannot read/);
  });
});
