// The student's session pool (models/session-pool.ts): over several turns of several dialogs, with
// identical contexts in one batch, rows evicted and reused, contexts beyond its capacity and a
// change of weights, it samples exactly what a fresh session per batch samples, while serving
// later turns from the rows kept from earlier ones.
import { describe, expect, it } from 'vitest';
import { TransformerLM } from '../../models/lm.ts';
import { SessionPool, canPool } from '../../models/session-pool.ts';
import { kvShareStats } from '../../models/sampler.ts';
import { sampleRows } from '../../env/dialog-model.ts';
import { Rng } from '../../core/rng.ts';

describe.skipIf(!canPool())('session pool', () => {
  it('samples what fresh sessions sample, turn after turn, and reuses the kept rows', () => {
    const m = TransformerLM.create({ vocabSize: 50, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, contextLength: 48 }, 2);
    for (const capacity of [64, 3]) {
      const pool = new SessionPool(m, capacity);
      const rng = new Rng(capacity);
      // Five dialogs (two identical) grow by a teacher turn and the sampled student reply each turn.
      const dialogs = [[1, 2, 3], [4, 5], [1, 2, 3], [6], [7, 8, 9, 10]];
      for (let turn = 0; turn < 6; turn++) {
        dialogs.forEach(d => d.push(...Array.from({ length: 1 + rng.int(4) }, () => 1 + rng.int(45))));
        // Turns 0-3: all dialogs; later turns: some (the others wait, as envs do).
        const ks = turn < 4 ? dialogs.map((_, k) => k) : [4, 1, 0];
        const opts = (seed: number) => ({ maxTokens: ks.map(k => 3 + k), temperature: 1, stopTokens: [0, 49], rngs: ks.map(k => new Rng(1000 * turn + k + seed)) });
        const ctx = ks.map(k => dialogs[k]!.slice());
        const got = pool.sample(ctx.map(c => c.slice()), opts(0));
        const want = sampleRows(m, ctx.map(c => c.slice()), opts(0));
        expect(got, `capacity ${capacity} turn ${turn}`).toEqual(want);
        ks.forEach((k, j) => dialogs[k]!.push(...got[j]!));
      }
      expect(pool.size).toBeLessThanOrEqual(capacity);
      if (capacity >= 5) {
        // Every context after the first turn extended a kept row (the identical pair: one each).
        expect(pool.stats.misses).toBe(5);
        expect(pool.stats.hits).toBe(5 * 3 + 3 * 2);
        expect(pool.stats.tokensReused).toBeGreaterThan(100);
      } else {
        expect(pool.stats.misses).toBeGreaterThan(5);
      }
      pool.dispose();
    }
    // New weights: the kept rows are dropped, and the samples follow the new weights.
    const pool = new SessionPool(m, 8);
    const ctx = [[1, 2, 3, 4], [5, 6]];
    const opts = () => ({ maxTokens: [6, 6], temperature: 1, stopTokens: [], rngs: [new Rng(1), new Rng(2)] });
    pool.sample(ctx.map(c => c.slice()), opts());
    const other = TransformerLM.create({ vocabSize: 50, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, contextLength: 48 }, 9);
    m.setWeights(other.weightValues());
    expect(pool.sample(ctx.map(c => c.slice()), opts())).toEqual(sampleRows(m, ctx.map(c => c.slice()), opts()));
    pool.dispose(); other.dispose(); m.dispose();
  });

  it("a row copies the keys and values another session's row holds for its tokens, and gets the same numbers", () => {
    const m = TransformerLM.create({ vocabSize: 50, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, contextLength: 48 }, 3);
    const rng = new Rng(5);
    const dialog = Array.from({ length: 30 }, () => 1 + rng.int(45));
    const other = Array.from({ length: 30 }, () => 1 + rng.int(45));
    // Alone: nothing to copy from.
    const alone = m.startSession([dialog.slice(0, 12)]);
    alone.nextLogProbs();
    alone.extend(0, dialog.slice(12));
    const want = { next: Array.from(alone.nextLogProbs()[0]!), hidden: Array.from(alone.hidden()[0]!) };
    alone.dispose();
    // A lender holding the dialog's first 25 tokens (and an unrelated row).
    const lender = m.startSession([dialog.slice(0, 25), other]);
    lender.nextLogProbs();
    const before = kvShareStats.tokens;
    const s = m.startSession([dialog.slice(0, 12)]);
    s.nextLogProbs();
    s.extend(0, dialog.slice(12));
    const got = { next: Array.from(s.nextLogProbs()[0]!), hidden: Array.from(s.hidden()[0]!) };
    // Tokens 0-11 copied at the start, then 12-24 when the row caught up.
    expect(kvShareStats.tokens - before).toBe(11 + 13);
    expect(got).toEqual(want);
    // New weights: the lender's keys are stale and nothing is copied.
    const fresh = TransformerLM.create({ vocabSize: 50, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, contextLength: 48 }, 8);
    m.setWeights(fresh.weightValues());
    const again = kvShareStats.tokens;
    const t = m.startSession([dialog.slice()]);
    t.nextLogProbs();
    expect(kvShareStats.tokens).toBe(again);
    [lender, s, t].forEach(x => x.dispose());
    fresh.dispose(); m.dispose();
  });
});
