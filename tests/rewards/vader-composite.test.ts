import { describe, it, expect } from 'vitest';
import { VaderScorer, vaderCompound } from '../../rewards/vader.ts';
import { createScorer, sharedScorer } from '../../rewards/sentiment.ts';
import { cohenReward, fromSigned, type SentimentScorer, type RewardContext } from '../../rewards/types.ts';
import { createCompositeReward, loadRewardConfig, listRewardConfigs, validateRewardConfig, RunningStats } from '../../rewards/composite.ts';
import { ColloquyError } from '../../core/errors.ts';
import { BAD_INPUTS, expectValidScores } from './bad-inputs.ts';

describe('vader scorer', () => {
  it('matches the published VADER compound scores', () => {
    // Reference values of the original Python implementation (vaderSentiment 3.x).
    expect(vaderCompound('VADER is smart, handsome, and funny.')).toBeCloseTo(0.8316, 3);
    expect(vaderCompound('VADER is not smart, handsome, nor funny.')).toBeCloseTo(-0.7424, 3);
    expect(vaderCompound('The book was kind of good.')).toBeCloseTo(0.3832, 3);
    expect(vaderCompound('I love this!')).toBeCloseTo(0.6696, 3);
  });
  it('maps to [0, 1] with (s + 1) / 2', async () => {
    const [pos, neg, neutral] = await new VaderScorer().score(['I love this!', 'This is terrible and sad.', 'The table is brown.']);
    expect(pos!.score).toBeCloseTo((pos!.signed + 1) / 2);
    expect(pos!.signed).toBeGreaterThan(0.5);
    expect(neg!.signed).toBeLessThan(-0.5);
    expect(neutral).toEqual({ score: 0.5, signed: 0 });
  });
  it('survives bad input', async () => {
    expectValidScores(await new VaderScorer().score(BAD_INPUTS), BAD_INPUTS.length);
  });
  it('is created by name and shared', async () => {
    const a = await sharedScorer({ name: 'vader' });
    const b = await sharedScorer({ name: 'vader' });
    expect(a).toBe(b);
    expect((await createScorer({ name: 'vader' })).name).toBe('vader');
    await expect(createScorer({ name: 'nope' } as never)).rejects.toMatchObject({ code: 'BAD_CONFIG' });
  });
  it('a missing classifier folder is a coded NOT_FOUND error', async () => {
    const err = await createScorer({ name: 'classifier', dir: '/nonexistent/model' }).catch(e => e);
    expect(err).toBeInstanceOf(ColloquyError);
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toMatch(/colloquy sentiment train/);
  });
});

describe('cohen mapping', () => {
  it('is (s + 1) / 2, clamped, NaN-safe', () => {
    expect(cohenReward(-1)).toBe(0);
    expect(cohenReward(0)).toBe(0.5);
    expect(cohenReward(1)).toBe(1);
    expect(cohenReward(0.5)).toBe(0.75);
    expect(cohenReward(3)).toBe(1);
    expect(cohenReward(NaN)).toBe(0.5);
    expect(fromSigned(Infinity)).toEqual({ score: 0.5, signed: 0 });
  });
});

/** A scorer with fixed answers: "good" → +0.8, "bad" → −0.6, else 0. */
const fake: SentimentScorer = {
  name: 'fake',
  async score(texts) { return texts.map(t => fromSigned(t.includes('good') ? 0.8 : t.includes('bad') ? -0.6 : 0)); },
};

const ctx = (reply: string, agentUtterance = 'Tell me more.', history: RewardContext['history'] = []): RewardContext => ({ reply, agentUtterance, history, turnIndex: history.length / 2 });

describe('reward configs', () => {
  it('ships cohen and jaques, which validate', () => {
    expect(listRewardConfigs()).toEqual(expect.arrayContaining(['cohen', 'jaques']));
    const cohen = loadRewardConfig('cohen');
    expect(cohen.terms).toEqual([{ signal: 'sentiment', weight: 1 }]);
    expect(cohen.scorer).toEqual({ name: 'vader' });
    expect(loadRewardConfig('jaques').terms.map(t => t.signal)).toEqual(expect.arrayContaining([
      'sentiment', 'sentimentTransition', 'laughter', 'wordsElicited', 'question', 'conversationLength', 'repetition',
    ]));
  });
  it('rejects unknown keys, unknown signals, duplicate names and unknown configs', () => {
    expect(() => validateRewardConfig({ name: 'x', terms: [{ signal: 'sentiment', weight: 1 }], extra: 1 })).toThrow(/extra/);
    expect(() => validateRewardConfig({ name: 'x', terms: [{ signal: 'vibes', weight: 1 }] })).toThrow(ColloquyError);
    expect(() => validateRewardConfig({ name: 'x', terms: [] })).toThrow(ColloquyError);
    expect(() => validateRewardConfig({ name: 'x', terms: [{ signal: 'laughter', weight: 1 }, { signal: 'laughter', weight: 2 }] })).toThrow(/two terms/);
    expect(() => loadRewardConfig('does-not-exist')).toThrow(/no reward config/);
  });
});

describe('composite rewards', () => {
  it('cohen: total = (s + 1) / 2 of the reply', async () => {
    const r = await createCompositeReward('cohen', { scorer: fake });
    expect(await r.compute(ctx('good job'))).toEqual({ total: 0.9, components: { sentiment: 0.9 } });
    expect((await r.compute(ctx('bad'))).total).toBeCloseTo(0.2);
    // With the real VADER default.
    const v = await createCompositeReward('cohen');
    expect((await v.compute(ctx('I love this!'))).total).toBeCloseTo((0.6696 + 1) / 2, 3);
  });
  it('weights every term and returns every component', async () => {
    const r = await createCompositeReward({
      name: 'mix', description: '', zscore: false, zscoreClip: 5, zscoreWarmup: 2,
      terms: [
        { signal: 'sentiment', weight: 1 }, { signal: 'sentimentTransition', weight: 2 }, { signal: 'laughter', weight: 1 },
        { signal: 'wordsElicited', weight: 3 }, { signal: 'question', weight: 1 }, { signal: 'conversationLength', weight: 0.5 },
        { signal: 'repetition', weight: 1 }, { signal: 'sentimentSigned', weight: 0, name: 'signed' },
      ],
    }, { scorer: fake });
    const history = [{ role: 'teacher' as const, text: 'Hello there.' }, { role: 'student' as const, text: 'this is bad' }];
    const out = await r.compute(ctx('good haha', 'What did you find? Hello', history));
    expect(out.components).toEqual({
      sentiment: 0.9, sentimentTransition: 0.9 - 0.2, laughter: 0.5, wordsElicited: 2 / 30, question: 1,
      conversationLength: 1, repetition: -0.5, signed: 0.8, // 'find' is new, 'hello' repeats the agent
    });
    expect(out.total).toBeCloseTo(0.9 + 2 * 0.7 + 0.5 + 3 * (2 / 30) + 1 + 0.5 - 0.5);
  });
  it('computeBatch equals compute in order', async () => {
    const cfg = loadRewardConfig('jaques');
    const a = await createCompositeReward(cfg, { scorer: fake });
    const b = await createCompositeReward(cfg, { scorer: fake });
    const ctxs = [ctx('good'), ctx('bad haha'), ctx('meh what'), ctx('good good lol'), ctx('')];
    const batch = await a.computeBatch(ctxs);
    const one = [];
    for (const c of ctxs) one.push(await b.compute(c));
    expect(batch).toEqual(one);
  });
  it('z-scores with running statistics, warm-up, clip, freeze and reset', async () => {
    const r = await createCompositeReward({
      name: 'z', description: '', zscore: true, zscoreClip: 1.5, zscoreWarmup: 2,
      terms: [{ signal: 'wordsElicited', weight: 1 }],
    });
    expect((await r.compute(ctx('one'))).total).toBe(0); // warm-up
    const second = await r.compute(ctx('one two three'));
    // Two values 1/30 and 3/30: mean 2/30, sample std √2/30 → z = (1/30)/(√2/30) = 0.7071.
    expect(second.components['wordsElicited:z']).toBeCloseTo(Math.SQRT1_2, 6);
    expect(second.components.wordsElicited).toBeCloseTo(3 / 30);
    r.freezeStats();
    const big = await r.compute(ctx('w '.repeat(40)));
    expect(big.total).toBe(1.5); // clipped
    expect(r.stats().wordsElicited!.count).toBe(2); // frozen
    r.resetStats();
    expect(r.stats()).toEqual({});
  });
  it('never returns NaN on bad input', async () => {
    const r = await createCompositeReward('jaques');
    for (const t of BAD_INPUTS) {
      const out = await r.compute(ctx(t, t, [{ role: 'student', text: t }]));
      expect(Number.isFinite(out.total)).toBe(true);
      for (const v of Object.values(out.components)) expect(Number.isFinite(v)).toBe(true);
    }
  });
  it('running stats match the textbook', () => {
    const s = new RunningStats();
    for (const x of [2, 4, 4, 4, 5, 5, 7, 9]) s.push(x);
    expect(s.mean).toBe(5);
    expect(s.variance).toBeCloseTo(32 / 7);
    expect(RunningStats.fromJSON(s.toJSON()).std).toBeCloseTo(s.std);
  });
});
