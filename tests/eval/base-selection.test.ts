/**
 * The compare preset's base model selection (agents/eval/experiment.ts selectBase): base.preferred
 * (data/models/dialog in configs/experiments/mightnt-vs-kl.json) replaces base.dir when it holds a
 * checkpoint; and imitators that start from the base's weights (ImitatorSpec.initDir).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { selectBase } from '../../agents/eval/experiment.ts';
import { loadExperimentConfig } from '../../configs/experiments/schema.ts';
import { loadEnsemble, trainImitators } from '../../agents/imitation/imitators.ts';
import { loadCheckpoint, saveCheckpoint } from '../../models/checkpoint.ts';
import { TransformerLM } from '../../models/lm.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'colloquy-base-selection-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const arch = { vocabSize: 20, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32, contextLength: 32, bosTokenId: 0 };

describe('selectBase', () => {
  const base = { dir: path.join(tmp, 'base'), corpus: 'shipped', minutes: 1 };

  it('takes base.preferred only when it holds a checkpoint', async () => {
    const preferred = path.join(tmp, 'dialog');
    expect(await selectBase(base)).toEqual({ dir: base.dir, preferred: false });
    expect(await selectBase({ ...base, preferred })).toEqual({ dir: base.dir, preferred: false });
    mkdirSync(preferred);
    writeFileSync(path.join(preferred, 'model.json'), '{}'); // half a checkpoint: still not used
    expect(await selectBase({ ...base, preferred })).toEqual({ dir: base.dir, preferred: false });
    const m = TransformerLM.create(arch, 1);
    await saveCheckpoint(m, preferred, {});
    m.dispose();
    expect(await selectBase({ ...base, preferred })).toEqual({ dir: preferred, preferred: true });
  });

  it('the compare preset prefers data/models/dialog, for D and the imitators', () => {
    const c = loadExperimentConfig(path.join(PROJECT_ROOT, 'configs', 'experiments', 'mightnt-vs-kl.json'));
    expect(c.base.preferred).toBe('data/models/dialog');
    expect(c.base.dir).toBe('data/models/base');
    expect(c.demonstrator.init).toBe('base');
    expect(c.imitators.init).toBe('preferred-base');
    // The tiny preset keeps its scratch imitators.
    expect(loadExperimentConfig(path.join(PROJECT_ROOT, 'configs', 'experiments', 'tiny.json')).imitators.init).toBe('scratch');
  });
});

describe('imitators from the base weights', () => {
  const transcripts = Array.from({ length: 6 }, (_, i) => ({ tokens: [1, 3, 5, 6, 7, 2, 8 + (i % 5), 3, 5, 6, 7, 2], targets: [2, 3, 4, 8, 9, 10] }));
  const tokenizer = (vocabSize: number) => ({ json: {}, vocabSize, bos: 0 });

  it('every member starts from the checkpoint (its architecture, not `model`) and then fits D\'s tokens', async () => {
    const initDir = path.join(tmp, 'init');
    const init = TransformerLM.create({ ...arch, dModel: 24, dFF: 48 }, 7);
    await saveCheckpoint(init, initDir, {});
    const spec = {
      out: path.join(tmp, 'ens'), k: 2, bootstrap: true, seed: 11, model: arch, initDir,
      train: { epochs: 1, batchSize: 3, learningRate: 0.01, warmupSteps: 1, minutes: 0 },
      settings: { alpha: 0.1, posteriorScale: 1 }, tokenizer: tokenizer(20),
    };
    await trainImitators(spec, transcripts, transcripts.slice(0, 2));
    const ens = await loadEnsemble(spec.out, spec.settings);
    for (const m of ens.models) {
      expect(m.config.dModel).toBe(24);
      expect(m.config.dFF).toBe(48);
    }
    // Fitted from the init: every weight within a few Adam steps of it (lr 0.01), and some moved.
    const member = (await loadCheckpoint(path.join(spec.out, 'member-0'))).model;
    const flat = (m: TransformerLM) => Float32Array.from(m.variables.flatMap(v => Array.from(v.dataSync())));
    const a = flat(member), b = flat(init);
    expect(a.length).toBe(b.length);
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    expect(maxDiff).toBeGreaterThan(1e-4);
    expect(maxDiff).toBeLessThan(0.1);
    init.dispose(); member.dispose();
    for (const m of ens.models) m.dispose();
  });

  it('refuses a checkpoint of another vocabulary', async () => {
    const initDir = path.join(tmp, 'init');
    await expect(trainImitators({
      out: path.join(tmp, 'ens-bad'), k: 1, bootstrap: false, seed: 1, model: arch, initDir,
      train: { epochs: 1, batchSize: 3, minutes: 0 }, settings: { alpha: 0.1, posteriorScale: 1 }, tokenizer: tokenizer(40),
    }, transcripts, transcripts)).rejects.toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(/vocabulary of 20, the shared tokenizer 40/) });
  });
});
