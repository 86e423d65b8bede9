// Smoke run of `colloquy compare` on the tiny preset: every stage runs, the report is complete,
// and a rerun with the same settings reuses every stage.
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadExperimentConfig } from '../../configs/experiments/schema.ts';
import { runExperiment, type ExperimentResults } from '../../agents/eval/experiment.ts';
import { renderReport } from '../../agents/report/report.ts';
import { parseSet } from '../../cli/compare.ts';
import { PROJECT_ROOT, defaultModelDir } from '../../core/paths.ts';
import { readPolicyFile } from '../../agents/rl/policy-file.ts';

const out = mkdtempSync(path.join(os.tmpdir(), 'colloquy-compare-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('colloquy compare (tiny preset)', () => {
  it('trains, evaluates every agent and writes a complete report', async () => {
    const config = loadExperimentConfig(path.join(PROJECT_ROOT, 'configs', 'experiments', 'tiny.json'), parseSet([`base.dir=${defaultModelDir()}`]));
    const quiet = () => {};
    const { results, out: dir } = await runExperiment({ config, out, dataDir: null, log: quiet });
    expect(dir).toBe(out);
    const names = results.agents.map(a => a.name);
    const rl = ['ppo-kl β=0.1 [imitator]', 'ppo-kl β=0.1 [conservative]', 'kl-budget B=5 [imitator]', 'kl-budget B=5 [conservative]'];
    expect(names).toEqual(['demonstrator D', 'imitator', 'conservative', ...rl.flatMap(n => [1, 2, 3].map(s => `${n} s${s}`))]);
    const by = Object.fromEntries(results.agents.map(a => [a.name, a.summary]));
    for (const s of Object.values(by)) {
      expect(s.episodes).toBe(3);
      expect(Number.isFinite(s.reward.mean)).toBe(true);
      expect(Number.isFinite(s.klPerEpisode.imitator!.mean)).toBe(true);
      expect(Number.isFinite(s.klPerEpisode.demonstrator!.mean)).toBe(true);
    }
    // Exact KL: an agent against itself is 0.
    expect(by['demonstrator D']!.klPerEpisode.demonstrator!.mean).toBeCloseTo(0, 3);
    expect(by.imitator!.klPerEpisode.imitator!.mean).toBeCloseTo(0, 3);
    // The ensemble and the baseline's help requests.
    expect(results.models.imitators.heldOutNll).toHaveLength(2);
    expect(results.models.imitators.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    expect(Number.isFinite(by.conservative!.helpRate.mean)).toBe(true);
    expect(results.rl).toHaveLength(12);
    expect(new Set(results.curves.map(c => c.run)).size).toBe(12);
    expect(results.transcripts.length).toBe(15);
    // Each run's checkpoint records the reference it was trained against, so `eval checkpoint:DIR` rebuilds it.
    for (const r of results.rl) {
      const pf = readPolicyFile(path.join(r.dir, 'checkpoint'))!;
      if (r.reference === 'imitator') expect(pf.reference.kind).toBe('base');
      else expect(pf.reference).toMatchObject({ kind: 'conservative', ensemble: path.join(out, 'models', 'imitators'), normalise: r.algo === 'kl-budget', members: results.models.imitators.plausible });
    }
    // Every setting over its three seeds: the over-seeds reward is the mean of the seeds' means, inside its interval.
    expect(results.settings.map(s => s.name)).toEqual(rl);
    for (const st of results.settings) {
      expect(st.seeds).toEqual([1, 2, 3]);
      expect(st.overSeeds.seeds).toBe(3);
      const seedMeans = st.agents.map(n => by[n]!.reward.mean);
      expect(st.overSeeds.reward.mean).toBeCloseTo(seedMeans.reduce((a, b) => a + b, 0) / 3, 9);
      expect(st.overSeeds.reward.lo).toBeLessThanOrEqual(st.overSeeds.reward.mean + 1e-12);
      expect(st.overSeeds.reward.hi).toBeGreaterThanOrEqual(st.overSeeds.reward.mean - 1e-12);
    }
    // Per-token KL kept: the histogram of each agent counts every scored token of its dialogs.
    for (const a of results.agents) {
      const h = results.klHistogram.filter(x => x.agent === a.name);
      expect(h.reduce((s, x) => s + x.share, 0)).toBeCloseTo(1, 9);
    }
    expect(results.klHistogram.filter(x => x.agent === 'imitator').every(x => x.lo === 0 || x.count === 0)).toBe(true);
    for (const s of Object.values(by)) expect(s.shortTurnTokens).toBe(4);

    const html = await renderReport(results);
    expect((html.match(/<svg/g) ?? []).length).toBeGreaterThanOrEqual(3);
    expect((html.match(/<svg/g) ?? []).length).toBeGreaterThanOrEqual(6);
    for (const section of ['Reward–KL frontier', 'The mightn\'t-do bound', 'Empty teacher turns', 'KL as Cohen et al. draw it', 'Learning curves', 'RL settings over seeds', 'All metrics', 'Sample transcripts']) expect(html).toContain(section);
    expect(html).toContain('over 3 seeds');
    expect(html).toContain('short-turn share (≤ 4 tokens');
    for (const n of names) expect(html).toContain(n.replace(/&/g, '&amp;'));
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/); // offline: no scripts, no external resources
    const saved = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as ExperimentResults;
    expect(saved.agents.map(a => a.name)).toEqual(names);
    // A results.json written before version 2 (no settings, histograms, short shares) still renders (--report-only).
    const v1 = { ...saved, version: 1, settings: undefined, klHistogram: undefined } as unknown as ExperimentResults;
    const old = await renderReport(v1);
    expect(old).toContain('written by an older version');

    // Same settings again: every stage is reused and the results are the same.
    const again = await runExperiment({ config, out, dataDir: null, log: quiet });
    expect(Object.entries(again.results.stages).filter(([, v]) => !v.reused).map(([k]) => k)).toEqual([]);
    expect(again.results.agents.map(a => a.summary.reward.mean)).toEqual(results.agents.map(a => a.summary.reward.mean));
    expect(existsSync(path.join(out, 'eval', 'conservative.jsonl'))).toBe(true);
  });

  // Study 2 (issue 13): the direction of Cohen, Hutter & Nanda's claim. With D among the models the
  // posterior ranges over (realizable), ℓ ≤ D at every token, so a policy's KL to D is at most its
  // KL to the conservative reference; the single imitator bounds nothing (imperfect: far from D).
  it('the mightn\'t-do bound: KL to the conservative reference bounds KL to D in the realizable case, KL to the imitator does not', async () => {
    const out2 = path.join(out, 'realizable');
    const config = loadExperimentConfig(path.join(PROJECT_ROOT, 'configs', 'experiments', 'tiny.json'), parseSet([`base.dir=${defaultModelDir()}`, 'imitators.includeDemonstrator=true']));
    const { results } = await runExperiment({ config, out: out2, dataDir: null, log: () => {} });
    const ensemble = JSON.parse(readFileSync(path.join(out2, 'models', 'imitators', 'ensemble.json'), 'utf8')) as { members: { dir: string; demonstrator?: boolean }[]; plausible: number[] };
    expect(ensemble.members.at(-1)).toMatchObject({ dir: 'member-d', demonstrator: true });
    expect(ensemble.plausible).toContain(ensemble.members.length - 1);
    expect(results.settings).toHaveLength(4);
    for (const st of results.settings) {
      expect(st.boundGap.lo).toBeLessThanOrEqual(st.boundGap.mean);
      expect(st.boundGap.mean).toBeLessThanOrEqual(st.boundGap.hi);
      if (st.reference === 'conservative') expect(st.boundGap.hi).toBeLessThanOrEqual(1e-3);
      else expect(st.boundGap.lo).toBeGreaterThan(0);
    }
    const html = await renderReport(results);
    expect(html).toContain('the <b>realizable</b> case');
    expect(html).toContain('yes (whole interval ≤ 0)');
    expect(html).toContain('no (whole interval > 0)');
  });
});
