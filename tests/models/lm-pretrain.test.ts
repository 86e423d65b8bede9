import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pretrain, ensureBaseModel, learningRate } from '../../models/pretrain.ts';
import { loadCheckpoint } from '../../models/checkpoint.ts';
import { BpeTokenizer } from '../../models/tokenizer.ts';
import { TrainConfigSchema } from '../../configs/models/schema.ts';
import { validateConfig } from '../../core/config.ts';

const TINY = path.resolve('configs/models/tiny.json');

describe('pretraining', () => {
  it('lowers validation perplexity, writes a complete checkpoint, and resumes', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'colloquy-pretrain-'));
    const lines: string[] = [];
    try {
      const r = await pretrain({
        out, configFile: TINY, dataDir: null, progressBar: false, log: s => lines.push(s),
        overrides: { train: { epochs: 0.12, minutes: 0, evalTokens: 2000 } },
      });
      // A fresh model of this vocabulary starts near perplexity V (~400); a short run must be well below.
      expect(r.valPerplexity).not.toBeNull();
      expect(r.valPerplexity!).toBeLessThan(200);
      for (const f of ['model.json', 'weights.bin', 'tokenizer.json', 'config.json', 'metadata.json', 'optimizer.bin']) expect(existsSync(path.join(out, f)), f).toBe(true);
      const meta = JSON.parse(readFileSync(path.join(out, 'metadata.json'), 'utf8'));
      expect(meta.backend.tfBackend).toBeTruthy();
      expect(meta.step).toBe(r.steps);
      expect(meta.corpus).toBe('shipped');
      const ck = await loadCheckpoint(out);
      const tok = BpeTokenizer.fromJSON(ck.tokenizer as Parameters<typeof BpeTokenizer.fromJSON>[0]);
      expect(ck.model.config.vocabSize).toBe(tok.vocabSize);
      expect(ck.model.config.bosTokenId).toBe(tok.special.endOfText);
      ck.model.dispose();
      // Resume: continues from the saved step and improves further.
      const r2 = await pretrain({ out, configFile: TINY, dataDir: null, resume: true, progressBar: false, log: s => lines.push(s), overrides: { train: { epochs: 0.24, minutes: 0, evalTokens: 2000 } } });
      expect(lines.some(l => /resuming/.test(l))).toBe(true);
      expect(r2.steps).toBeGreaterThan(r.steps);
      expect(r2.valPerplexity!).toBeLessThan(r.valPerplexity!);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('ensureBaseModel reuses an existing checkpoint', async () => {
    const dir = process.env.COLLOQUY_BASE_MODEL;
    if (!dir) throw new Error('global setup should have built a tiny checkpoint');
    const logs: string[] = [];
    const r = await ensureBaseModel({ dir, log: s => logs.push(s) });
    expect(r).toEqual({ dir: path.resolve(dir), created: false });
    expect(logs).toEqual([]);
  });

  it('the schedule warms up, then decays by cosine to the floor', () => {
    const cfg = validateConfig(TrainConfigSchema, { learningRate: 1, warmupSteps: 10, minLrFraction: 0.1 });
    expect(learningRate(cfg, 0, 0)).toBeCloseTo(0.1);
    expect(learningRate(cfg, 10, 0)).toBeCloseTo(1);
    expect(learningRate(cfg, 100, 0.5)).toBeCloseTo(0.55);
    expect(learningRate(cfg, 100, 1)).toBeCloseTo(0.1);
  });
});
