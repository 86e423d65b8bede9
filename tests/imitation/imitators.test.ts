import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../../core/rng.ts';
import { TransformerLM } from '../../models/lm.ts';
import { bootstrapResample, fitMasked, maskedBatch, maskedNll, type MaskedTranscript } from '../../agents/imitation/fit.ts';
import { loadEnsemble, trainImitators } from '../../agents/imitation/imitators.ts';
import { ensemblePosterior } from '../../agents/imitation/ensemble.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'colloquy-imitators-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A synthetic "dialog": the demonstrator writes 5 → 6 → 7 after a 3, the "student" writes random
// tokens; only the demonstrator's tokens are targets.
function transcripts(n: number, seed: number): MaskedTranscript[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const tokens = [1], targets: number[] = [];
    for (let turn = 0; turn < 4; turn++) {
      tokens.push(3);
      for (const t of [5, 6, 7]) { targets.push(tokens.length); tokens.push(t); }
      tokens.push(2);
      for (let k = 0; k < 3; k++) tokens.push(8 + rng.int(10));
    }
    return { tokens, targets };
  });
}

const arch = { vocabSize: 20, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32, contextLength: 32, bosTokenId: 0 };

describe('fitting imitators on the demonstrator\'s tokens only', () => {
  it('puts weight 1 exactly on target positions', () => {
    const b = maskedBatch([{ tokens: [1, 2, 3, 4], targets: [2, 3] }, { tokens: [1, 2], targets: [1] }], 0);
    expect(b.seqLength).toBe(3);
    expect(Array.from(b.tokens)).toEqual([1, 2, 3, 4, 1, 2, 0, 0]);
    // Row 0 predicts tokens[2], tokens[3] at inputs 1, 2; row 1 predicts tokens[1] at input 0.
    expect(Array.from(b.weights!)).toEqual([0, 1, 1, 1, 0, 0]);
  });

  it('learns the targets and not the student\'s noise', async () => {
    const train = transcripts(24, 1), held = transcripts(8, 2);
    const m = TransformerLM.create(arch, 3);
    const before = maskedNll(m, held).nll;
    const r = await fitMasked(m, train, { train: { epochs: 15, batchSize: 8, learningRate: 0.02, warmupSteps: 2, minutes: 0 } });
    expect(r.heldOutNll).toBeNaN(); // no held-out set given
    const after = maskedNll(m, held).nll;
    expect(before).toBeGreaterThan(2.5);
    expect(after).toBeLessThan(0.5); // 5, 6, 7 after a 3 are deterministic
    // The student's tokens were not trained on: their NLL stays near uniform over 10 choices or worse.
    const student = held.map(t => ({ tokens: t.tokens, targets: t.tokens.map((_, i) => i).filter(i => i > 0 && t.tokens[i]! >= 8) }));
    expect(maskedNll(m, student).nll).toBeGreaterThan(1.5);
    m.dispose();
  });

  it('bootstrap resamples are seeded', () => {
    const xs = [1, 2, 3, 4, 5, 6];
    expect(bootstrapResample(xs, 4)).toEqual(bootstrapResample(xs, 4));
    expect(bootstrapResample(xs, 4)).toHaveLength(6);
    expect(bootstrapResample(xs, 4)).not.toEqual(bootstrapResample(xs, 5));
  });

  it('writes an ensemble folder whose weights and plausible set follow the held-out NLLs', async () => {
    const out = path.join(dir, 'ens');
    const file = await trainImitators({
      out, k: 3, bootstrap: true, seed: 7, model: arch, train: { epochs: 3, batchSize: 8, learningRate: 0.02, warmupSteps: 1, minutes: 0 },
      settings: { alpha: 0.5, posteriorScale: 1 }, tokenizer: { json: null, vocabSize: 20, bos: 0 },
    }, transcripts(16, 3), transcripts(6, 4));
    expect(file.members.map(m => m.bootstrap)).toEqual([false, true, true]);
    expect(file.members.map(m => m.seed)).toEqual([7, 8, 9]);
    const post = ensemblePosterior(file.members.map(m => m.heldOutNll), { alpha: 0.5, posteriorScale: 1 });
    expect(file.weights).toEqual(post.weights);
    expect(file.plausible).toEqual(post.members);
    const ens = await loadEnsemble(out, { alpha: 1 });
    expect(ens.models).toHaveLength(3);
    expect(ens.file.plausible).toHaveLength(1); // α = 1: only the best
    expect(ens.conservative.members).toEqual(ens.file.plausible);
    expect(ens.single.config.vocabSize).toBe(20);
    ens.dispose();
  });
});
