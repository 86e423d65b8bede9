// Issue 13, study 1 (silence under a KL budget): the tiny preset end to end — every stage runs, the
// claims are tested with intervals over ≥ 3 seeds, the report has its figures, and a rerun reuses
// every stage.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSilenceStudy } from '../../configs/experiments/silence-schema.ts';
import { KL_PROFILE_BINS, klProfile, runSilenceStudy, type SilenceResults } from '../../agents/eval/silence.ts';
import { compareIntervals } from '../../agents/eval/stats.ts';
import { renderSilenceReport } from '../../agents/report/silence-report.ts';
import { packF32 } from '../../agents/eval/turns.ts';
import type { DialogRow } from '../../agents/eval/evaluate.ts';
import type { Interval } from '../../agents/eval/stats.ts';
import { PROJECT_ROOT, defaultModelDir } from '../../core/paths.ts';

const out = mkdtempSync(path.join(os.tmpdir(), 'colloquy-silence-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));
const ordered = (i: Interval) => !Number.isFinite(i.mean) || (i.lo <= i.mean + 1e-12 && i.mean <= i.hi + 1e-12);

describe('the silence study', () => {
  it('verdicts: reproduced only when the intervals are disjoint the claimed way', () => {
    const iv = (lo: number, hi: number): Interval => ({ mean: (lo + hi) / 2, lo, hi, n: 3 });
    expect(compareIntervals(iv(0.3, 0.4), iv(0.1, 0.2))).toBe('reproduced');
    expect(compareIntervals(iv(0.1, 0.2), iv(0.3, 0.4))).toBe('contradicted');
    expect(compareIntervals(iv(0.1, 0.35), iv(0.3, 0.4))).toBe('undecided');
    expect(compareIntervals(iv(0.55, 0.7), 0.5)).toBe('reproduced');
    expect(compareIntervals({ mean: NaN, lo: NaN, hi: NaN, n: 0 }, 0.5)).toBe('undecided');
  });

  it('the KL profile: shares of each tenth of the agent\'s tokens, pooled over dialogs', () => {
    const row = (kl: number[]) => ({ klTokens: { base: packF32(kl) } }) as unknown as DialogRow;
    const p = klProfile([row([4, 0, 0, 0, 0, 0, 0, 0, 0, 0]), row([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])]);
    expect(p).toHaveLength(KL_PROFILE_BINS);
    expect(p[0]).toBeCloseTo(6 / 14, 9); // 4 from the first dialog, 2 from the second (two of its tokens per bin)
    expect(p[4]).toBeCloseTo(2 / 14, 9);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    expect(p.slice(5).every(x => x === 0)).toBe(true);
  });

  it('runs the tiny preset end to end, tests every claim over 3 seeds, writes the report, and reuses every stage', async () => {
    const config = loadSilenceStudy(path.join(PROJECT_ROOT, 'configs', 'experiments', 'silence-tiny.json'), { base: defaultModelDir() });
    const { results } = await runSilenceStudy({ config, out, log: () => {} });
    expect(results.settings.map(s => s.name)).toEqual(['kl-budget B=5 T=128', 'kl-budget B=10 T=128', 'kl-budget B=5 T=160', 'kl-budget B=10 T=160']);
    for (const s of results.settings) {
      expect(s.seeds).toEqual([1, 2, 3]);
      expect(s.overSeeds.seeds).toBe(3);
      expect(s.perSeed.map(p => p.seed)).toEqual([1, 2, 3]);
      for (const i of [s.overSeeds.emptyTurnShare, s.overSeeds.klPerEpisode.base!, s.klPerResponse, s.earlyKlShare, s.overSeeds.reward]) expect(ordered(i)).toBe(true);
      // The KL to the base is what the budget caps (never overspent, per episode).
      expect(s.overSeeds.klPerEpisode.base!.hi).toBeLessThanOrEqual(s.budget + 1e-6);
      expect(s.klProfile).toHaveLength(KL_PROFILE_BINS);
    }
    expect(results.base.map(b => b.episodeTokens)).toEqual([128, 160]);
    for (const b of results.base) expect(b.overDialogs.klPerEpisode.base!.mean).toBeCloseTo(0, 6);
    // 4 settings × (silence, early KL) + 2 lengths × 1 budget step + 2 budgets × 1 length step.
    expect(results.claims).toHaveLength(12);
    for (const c of results.claims) {
      expect(['reproduced', 'contradicted', 'undecided']).toContain(c.verdict);
      expect(c.verdict).toBe(compareIntervals(c.a, c.b));
    }
    const saved = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as SilenceResults;
    expect(saved.settings.every(s => s.seeds.length >= 3)).toBe(true);
    const html = await renderSilenceReport(saved);
    expect((html.match(/<svg/g) ?? []).length).toBeGreaterThanOrEqual(2);
    for (const section of ['The paper\'s claims', 'Empty teacher turns', 'Where the KL is spent', 'Settings over seeds']) expect(html).toContain(section);
    for (const s of results.settings) expect(html).toContain(s.name);
    expect(html).toContain('over 3 seeds');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);

    const t0 = Date.now();
    const again = await runSilenceStudy({ config, out, log: () => {} });
    expect(Object.values(again.results.stages).every(v => v.reused)).toBe(true);
    expect(Object.keys(again.results.stages)).toHaveLength(12 + 14);
    expect(again.results.claims.map(c => c.a.mean)).toEqual(results.claims.map(c => c.a.mean));
    expect(Date.now() - t0).toBeLessThan(60_000);
  });
});
