/**
 * The classifier trained on SST-2-style phrases and DailyDialog-style emotion labels together:
 * the emotion head (Jaques et al.'s emotion-based sentiment), the plain-TypeScript fast path (the
 * same numbers as the TF.js graph), masked convolution windows (a score does not depend on its
 * batch), the scorer's emotion mode and the emotion transition. Small generated data: ~10 s.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initBackend } from '../../models/backend.ts';
import { trainClassifier, DEFAULT_TRAIN, conversationLabel } from '../../rewards/train-classifier.ts';
import { SentimentClassifier, ClassifierScorer, hashIds, hashString } from '../../rewards/classifier.ts';
import { createScorer } from '../../rewards/sentiment.ts';
import { DD_EMOTIONS, DEFAULT_EMOTION_WEIGHTS, emotionTransition, emotionValence, emotionWeightVector, loadDailyDialog } from '../../rewards/emotions.ts';
import { BAD_INPUTS, expectValidScores } from './bad-inputs.ts';

let dir: string;
let model: SentimentClassifier;

const HAPPY = ['that is wonderful news , thank you', 'great , i love it', 'i am so happy for you', 'how nice , thanks a lot'];
const ANGRY = ['this is outrageous , i hate it', 'leave me alone , you idiot', 'i am furious with you', 'stop it right now'];
const SAD = ['i am so sorry to hear that', 'my dog died last week', 'i miss her so much', 'that is so sad'];
const NEUTRAL = ['the bus leaves at nine', 'can you pass the salt ?', 'i will call you tomorrow', 'where is the station ?'];

/** A DailyDialog-shaped folder (train split) of generated dialogs: each line cycles through the four kinds of utterance. */
async function writeDailyDialog(root: string, dialogs: number): Promise<void> {
  const kinds: [string[], number][] = [[NEUTRAL, 0], [HAPPY, 4], [ANGRY, 1], [SAD, 5]];
  const text: string[] = [], emo: string[] = [];
  for (let d = 0; d < dialogs; d++) {
    const utts: string[] = [], labels: number[] = [];
    for (let t = 0; t < 4; t++) {
      const [pool, label] = kinds[(d + t) % 4]!;
      utts.push(pool[(d * 3 + t) % pool.length]!);
      labels.push(label);
    }
    text.push(utts.map(u => `${u} __eou__`).join(' '));
    emo.push(labels.join(' '));
  }
  await mkdir(path.join(root, 'train'), { recursive: true });
  await writeFile(path.join(root, 'train', 'dialogues_train.txt'), text.join('\n') + '\n');
  await writeFile(path.join(root, 'train', 'dialogues_emotion_train.txt'), emo.join('\n') + '\n');
}

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(tmpdir(), 'colloquy-emo-'));
  const lines = ['label\tsentence'];
  const pos = ['good', 'great', 'fun', 'moving'], neg = ['bad', 'dull', 'awful', 'boring'];
  for (let i = 0; i < 200; i++) lines.push(`1\tthe film is ${pos[i % 4]}`, `0\tthe film is ${neg[i % 4]}`);
  await writeFile(path.join(dir, 'sst.tsv'), lines.join('\n'));
  await writeDailyDialog(path.join(dir, 'dd'), 120);
  const r = await trainClassifier({
    ...DEFAULT_TRAIN, vectors: null, trainFile: path.join(dir, 'sst.tsv'), dailyDialog: path.join(dir, 'dd'), dailyDialogDevDialogs: 20,
    conversationSentiment: true, epochs: 10, batchSize: 32, lr: 5e-3, seed: 5, members: 2,
    arch: { ...DEFAULT_TRAIN.arch, embedDim: 16, widths: [1, 2, 3], filters: 12, rnn: 0, bigramBuckets: 1 << 12, maskWindows: true, emotions: 7 },
  });
  model = r.model;
  // The last 20 dialogs (80 utterances) are held out; the rest join the 400 phrases.
  expect(r.trainExamples).toBe(400 + 100 * 4);
  expect(r.epochs.at(-1)!.conversationDevAuc).toBeGreaterThan(0.9);
  expect(r.epochs.at(-1)!.conversationDevEmotionAuc).toBeGreaterThan(0.9);
}, 120_000);

afterAll(async () => {
  model?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('classifier with an emotion head (SST-2 + DailyDialog)', () => {
  it('learns emotions and sentiment from both sources', async () => {
    expect(model.emotionLabels).toEqual([...DD_EMOTIONS]);
    const texts = ['great , thank you so much', 'i hate you , idiot', 'i miss my dog', 'the bus leaves at ten', 'the film is fun'];
    const { positive, emotions } = await model.predictAll(texts);
    const argmax = (i: number) => { const row = Array.from(emotions!.subarray(i * 7, i * 7 + 7)); return DD_EMOTIONS[row.indexOf(Math.max(...row))]; };
    expect([0, 1, 2, 3].map(argmax)).toEqual(['happiness', 'anger', 'sadness', 'none']);
    for (let i = 0; i < texts.length; i++) expect(emotions!.subarray(i * 7, i * 7 + 7).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    // Conversational sentiment (DailyDialog happiness vs anger/sadness) and SST-2's.
    expect(positive[0]).toBeGreaterThan(0.7);
    expect(positive[1]).toBeLessThan(0.3);
    expect(positive[4]).toBeGreaterThan(0.7);
  });
  it('the fast path gives the TF.js numbers, and a score does not depend on its batch', async () => {
    const texts = ['great , thank you so much', 'i hate you', 'a', '', 'the film is dull and boring and i miss the bus at nine', 'unseen words only here'];
    expect(model.fastPathEligible).toBe(true);
    expect(model.useFastPath(false)).toBe(false);
    const slow = await model.predictAll(texts, 64);
    const alone = await Promise.all(texts.map(async t => (await model.predictAll([t], 1)).positive[0]!));
    expect(model.useFastPath(true)).toBe(true);
    const fast = await model.predictAll(texts);
    for (let i = 0; i < texts.length; i++) {
      expect(fast.positive[i]).toBeCloseTo(slow.positive[i]!, 5);
      expect(alone[i]).toBeCloseTo(slow.positive[i]!, 5);
    }
    for (let i = 0; i < texts.length * 7; i++) expect(fast.emotions![i]).toBeCloseTo(slow.emotions![i]!, 5);
    // Members can be picked on either path.
    const m1 = await model.predictAll(texts, 64, [1]);
    model.useFastPath(false);
    const m1slow = await model.predictAll(texts, 64, [1]);
    for (let i = 0; i < texts.length; i++) expect(m1.positive[i]).toBeCloseTo(m1slow.positive[i]!, 5);
    model.useFastPath(true);
  });
  it("n-gram keys hashed from the ids are the earlier checkpoints' string hashes", () => {
    const ids = [0, 1, 9, 10, 99, 100, 12345, 4294967, 7];
    for (let t = 0; t + 2 < ids.length; t++) {
      expect(hashIds(ids, t, 2)).toBe(hashString(`${ids[t]} ${ids[t + 1]}`));
      expect(hashIds(ids, t, 3)).toBe(hashString(`${ids[t]} ${ids[t + 1]} ${ids[t + 2]}`));
    }
  });
  it('saves and loads the emotion head; a loaded checkpoint scores on the fast path', async () => {
    const out = path.join(dir, 'ckpt');
    await model.save(out);
    const loaded = await SentimentClassifier.load(out);
    expect(loaded.fastPathOn).toBe(true);
    expect(loaded.emotionLabels).toEqual([...DD_EMOTIONS]);
    const texts = ['great , thank you', 'i am furious'];
    const a = await model.predictAll(texts), b = await loaded.predictAll(texts);
    expect(Array.from(b.emotions!)).toEqual(Array.from(a.emotions!));
    expect(loaded.meta.dailyDialogUtterances).toBe(400);
    loaded.dispose();
    // The emotion-mode scorer from a spec: signed = Σ p(e)·w(e).
    const scorer = await createScorer({ name: 'classifier', dir: out, mode: 'emotion', emotionWeights: { surprise: 1 } }) as ClassifierScorer;
    expect(scorer.name).toBe('classifier-emotion');
    const [dist] = await scorer.emotions(['great , thank you']);
    const w = emotionWeightVector(DD_EMOTIONS, { surprise: 1 });
    const [s] = await scorer.score(['great , thank you']);
    expect(s!.signed).toBeCloseTo(emotionValence(dist!, w), 6);
    expect(s!.signed).toBeGreaterThan(0.5);
    const [angry] = await scorer.score(['i hate you , idiot']);
    expect(angry!.signed).toBeLessThan(-0.5);
    expectValidScores(await scorer.score(BAD_INPUTS), BAD_INPUTS.length);
    await scorer.dispose?.();
  });
  it('emotion mode and weights are checked', () => {
    expect(() => new ClassifierScorer(model, { mode: 'emotion', emotionWeights: { joy: 1 } })).toThrow(/unknown emotion 'joy'/);
    expect(() => new ClassifierScorer(model, { mode: 'emotion', emotionWeights: { anger: -2 } })).toThrow(/\[-1, 1\]/);
    expect(() => new ClassifierScorer(model, { emotionWeights: { anger: -1 } })).toThrow(/mode 'emotion'/);
    const plain = SentimentClassifier.create({ embedDim: 4, widths: [2], filters: 2, hidden: 0, bigramBuckets: 0, maxLen: 8 }, ['<pad>', '<unk>', 'a'], 1);
    expect(() => new ClassifierScorer(plain, { mode: 'emotion' })).toThrow(expect.objectContaining({ code: 'BAD_CONFIG' }));
    expect(plain.fastPathEligible).toBe(false);
    plain.dispose();
  });
});

describe('emotion-based sentiment and transition (Jaques et al.)', () => {
  const w = emotionWeightVector(DD_EMOTIONS);
  const onehot = (e: string) => Float32Array.from(DD_EMOTIONS, x => (x === e ? 1 : 0));
  it('valence is the weighted sum over emotions', () => {
    expect(Array.from(w)).toEqual(DD_EMOTIONS.map(e => DEFAULT_EMOTION_WEIGHTS[e]));
    expect(emotionValence(onehot('happiness'), w)).toBe(1);
    expect(emotionValence(onehot('sadness'), w)).toBe(-1);
    const mix = Float32Array.from(DD_EMOTIONS, e => (e === 'none' ? 0.5 : e === 'fear' ? 0.5 : 0));
    expect(emotionValence(mix, w)).toBeCloseTo(-0.375, 6);
  });
  it('the transition is half the valence change, 0 without a previous message', () => {
    expect(emotionTransition(onehot('happiness'), onehot('anger'), w)).toBe(1);
    expect(emotionTransition(onehot('sadness'), onehot('happiness'), w)).toBe(-1);
    expect(emotionTransition(onehot('none'), onehot('disgust'), w)).toBe(0.5);
    expect(emotionTransition(onehot('happiness'), undefined, w)).toBe(0);
  });
  it('conversational sentiment labels: happiness 1, anger/disgust/sadness 0, others none', () => {
    expect(DD_EMOTIONS.map((_, i) => conversationLabel(i))).toEqual([-1, 0, 0, -1, 1, 0, -1]);
  });
  it('reads DailyDialog splits; a bad label is a coded error', async () => {
    const utts = loadDailyDialog(path.join(dir, 'dd'), 'train');
    expect(utts).toHaveLength(480);
    expect(utts[1]).toMatchObject({ text: HAPPY[1], emotion: 4, dialog: 0, turn: 1 });
    expect(loadDailyDialog(path.join(dir, 'dd'), 'train', 1)).toHaveLength(360);
    expect(() => loadDailyDialog(path.join(dir, 'dd'), 'test')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    const bad = path.join(dir, 'bad');
    await mkdir(path.join(bad, 'train'), { recursive: true });
    await writeFile(path.join(bad, 'train', 'dialogues_train.txt'), 'hi __eou__ there __eou__\n');
    await writeFile(path.join(bad, 'train', 'dialogues_emotion_train.txt'), '0 9\n');
    expect(() => loadDailyDialog(bad, 'train')).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
  });
});
