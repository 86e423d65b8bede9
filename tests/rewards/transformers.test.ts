import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createScorer } from '../../rewards/sentiment.ts';
import { pickLabels } from '../../rewards/transformers.ts';
import type { SentimentScorer } from '../../rewards/types.ts';
import { writeTinyClassifier } from './tiny-onnx.ts';
import { BAD_INPUTS, expectValidScores } from './bad-inputs.ts';

let dir: string;
let scorer: SentimentScorer;
let paper: SentimentScorer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'colloquy-tiny-'));
  await writeTinyClassifier(path.join(dir, 'tiny-sst2'));
  scorer = await createScorer({ name: 'transformers', model: path.join(dir, 'tiny-sst2'), map: 'p-positive' });
  paper = await createScorer({ name: 'transformers', model: path.join(dir, 'tiny-sst2') });
});
afterAll(async () => {
  await scorer?.dispose?.();
  await paper?.dispose?.();
  await rm(dir, { recursive: true, force: true });
});

describe('transformers.js scorer on a tiny ONNX model', () => {
  it('maps by default as Cohen et al. (klreg.py): r = (±p_top + 1)/2, the sign from the top label (issue 12, item 8)', async () => {
    const [pos, neg, neutral, twice] = await paper.score(['The movie was good', 'the movie was BAD', 'the movie', 'good great']);
    const p1 = 1 / (1 + Math.exp(-2));
    expect(pos!.signed).toBeCloseTo(p1, 5);
    expect(pos!.score).toBeCloseTo((p1 + 1) / 2, 5);
    expect(neg!.signed).toBeCloseTo(-p1, 5);
    expect(neg!.score).toBeCloseTo((1 - p1) / 2, 5);
    // A tie goes to the first label (NEGATIVE), as the argmax of their pipeline: r = (−0.5 + 1)/2.
    expect(neutral!.score).toBeCloseTo(0.25, 5);
    expect(twice!.signed).toBeCloseTo(1 / (1 + Math.exp(-4)), 5);
    // The reward never lies strictly between 0.25 and 0.75 under this map.
    for (const s of [pos, neg, neutral, twice]) expect(s!.score <= 0.25 + 1e-9 || s!.score >= 0.75 - 1e-9).toBe(true);
  });
  it('an unknown map is a coded BAD_CONFIG error', async () => {
    await expect(createScorer({ name: 'transformers', model: path.join(dir, 'tiny-sst2'), map: 'softmax' as never })).rejects.toMatchObject({ code: 'BAD_CONFIG' });
  });
  it('with map p-positive gives signed = P(pos) − P(neg) from the model logits', async () => {
    const [pos, neg, neutral, twice] = await scorer.score(['The movie was good', 'the movie was BAD', 'the movie', 'good great']);
    // One positive word: logits (−1, 1) → P(pos) = σ(2).
    const p1 = 1 / (1 + Math.exp(-2));
    expect(pos!.signed).toBeCloseTo(2 * p1 - 1, 5);
    expect(pos!.score).toBeCloseTo(p1, 5);
    expect(neg!.signed).toBeCloseTo(-(2 * p1 - 1), 5);
    expect(neutral!.signed).toBeCloseTo(0, 6);
    expect(twice!.score).toBeCloseTo(1 / (1 + Math.exp(-4)), 5);
  });
  it('scores one text and a batch alike', async () => {
    const [one] = await scorer.score(['I love it']);
    const batch = await scorer.score(['I love it', 'hate', 'the movie is great great great']);
    expect(batch[0]!.signed).toBeCloseTo(one!.signed, 6);
    expect(batch[1]!.signed).toBeLessThan(0);
  });
  it('survives bad input', async () => {
    expectValidScores(await scorer.score(BAD_INPUTS), BAD_INPUTS.length);
  });
  it('finds labels by name or position, or asks for them', () => {
    expect(pickLabels(['NEGATIVE', 'POSITIVE'])).toEqual({ positive: 'POSITIVE', negative: 'NEGATIVE' });
    expect(pickLabels(['LABEL_0', 'LABEL_1'])).toEqual({ positive: 'LABEL_1', negative: 'LABEL_0' });
    expect(pickLabels(['negative', 'neutral', 'positive'])).toEqual({ positive: 'positive', negative: 'negative' });
    expect(() => pickLabels(['a', 'b', 'c'])).toThrow(/positiveLabel/);
  });
  it('reads custom label names', async () => {
    await writeTinyClassifier(path.join(dir, 'tiny-custom'), { labels: ['LABEL_0', 'LABEL_1'] });
    const s = await createScorer({ name: 'transformers', model: path.join(dir, 'tiny-custom') });
    const [r] = await s.score(['good']);
    expect(r!.signed).toBeGreaterThan(0.5);
    await s.dispose?.();
  });
  it('a missing or incomplete folder is a coded NOT_FOUND error; downloads are off', async () => {
    await expect(createScorer({ name: 'transformers', model: path.join(dir, 'nope') })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(createScorer({ name: 'transformers', model: 'Xenova/distilbert-base-uncased-finetuned-sst-2-english' })).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/downloads are off/) });
    const partial = path.join(dir, 'partial');
    await mkdir(partial, { recursive: true });
    await writeFile(path.join(partial, 'config.json'), '{}');
    await expect(createScorer({ name: 'transformers', model: partial })).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/tokenizer\.json/) });
  });
});
