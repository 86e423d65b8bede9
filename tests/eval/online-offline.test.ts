// Issue 13, study 3 (online against offline at matched KL, with a gold reward): the tiny preset end
// to end — base dialogs logged in batch-kl's format, ppo-kl / kl-budget / batch-kl trained over 3
// seeds with checkpoints kept along training, every checkpoint evaluated for KL, proxy and gold,
// the claims tested with intervals over seeds, the report's figure — and a rerun reuses every stage.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOnlineOfflineStudy } from '../../configs/experiments/online-offline-schema.ts';
import { FAMILIES, keptCheckpoints, loggedChat, onlineOfflineClaims, runOnlineOfflineStudy, type CurvePoint, type OnlineOfflineResults } from '../../agents/eval/online-offline.ts';
import { compareIntervals } from '../../agents/eval/stats.ts';
import { renderOnlineOfflineReport } from '../../agents/report/online-offline-report.ts';
import { readLoggedDialogs } from '../../agents/batch-kl.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import type { DialogRow } from '../../agents/eval/evaluate.ts';
import type { Interval } from '../../agents/eval/stats.ts';
import { PROJECT_ROOT, defaultModelDir } from '../../core/paths.ts';

const out = mkdtempSync(path.join(os.tmpdir(), 'colloquy-online-offline-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));
const ordered = (i: Interval) => Number.isFinite(i.mean) && i.lo <= i.mean + 1e-12 && i.mean <= i.hi + 1e-12;
const iv = (lo: number, hi: number): Interval => ({ mean: (lo + hi) / 2, lo, hi, n: 3 });
const pt = (family: CurvePoint['family'], step: number, kl: Interval, proxy: Interval, gold: Interval): CurvePoint => ({ family, step, seeds: [1, 2, 3], kl, proxy, gold, perSeed: [] });

describe('the online-against-offline study', () => {
  it('claims: matched only where the KL intervals overlap; over-optimisation when the gold peak lies above the highest-KL gold', () => {
    const base = pt('base', 0, iv(0, 0), iv(1, 1.2), iv(1, 1.2));
    const points = [
      pt('ppo-kl', 1, iv(4, 6), iv(2, 2.2), iv(2, 2.2)),
      pt('ppo-kl', 2, iv(19, 21), iv(3, 3.2), iv(0.2, 0.4)),
      pt('batch-kl', 5, iv(5, 7), iv(1.5, 1.7), iv(1.5, 2.1)),
      pt('batch-kl', 10, iv(40, 50), iv(0, 5), iv(0, 5)),
    ];
    const claims = onlineOfflineClaims(base, points);
    const at = (f: string, text: string) => claims.filter(c => c.family === f && c.comparison.includes(text));
    // batch-kl step 5 (KL 6) is matched by ppo-kl step 1 (KL 5): online wins on proxy, undecided on gold.
    expect(at('ppo-kl', 'batch-kl step 5').map(c => [c.metric, c.verdict])).toEqual([['proxy', 'reproduced'], ['gold', 'undecided']]);
    // batch-kl step 10 (KL 45) has no online point whose KL interval overlaps: never a verdict.
    expect(at('ppo-kl', 'batch-kl step 10').every(c => c.verdict === 'undecided' && c.comparison.includes('not matched'))).toBe(true);
    // ppo-kl's gold peaks at step 1 above the base and falls at its highest KL: both reproduced.
    expect(at('ppo-kl', 'peak').map(c => c.verdict)).toEqual(['reproduced', 'reproduced']);
    // batch-kl's gold peaks at its highest KL (step 10, mean 2.5): no fall seen, never "reproduced".
    expect(at('batch-kl', 'highest KL').map(c => c.verdict)).toEqual(['undecided']);
    for (const c of claims) if (!c.comparison.includes('not matched') && !c.comparison.includes('the peak is at')) expect(c.verdict).toBe(compareIntervals(c.a, c.b as Interval));
  });

  it('logs an eval row in the export format batch-kl reads: turns, per-reply rewards, the prompt, how it ended', () => {
    const tok = loadDialogTokenizer(defaultModelDir());
    const prompt = 'Student: hi\n\nTeacher:';
    const tokens = tok.encode(`${prompt} a b\n\nStudent: ok\n\nTeacher: c`);
    const row = {
      envSeed: 7, terminated: false, endedBy: 'maxTokens', tokens, agentPositions: [tok.encode(prompt).length],
      teacherTexts: [' a b', ' c'], studentTexts: [' ok'], replyRewards: [0.75],
    } as unknown as DialogRow;
    const file = path.join(out, 'one.jsonl');
    writeFileSync(file, JSON.stringify(loggedChat(row, tok)) + '\n');
    const [d] = readLoggedDialogs(file);
    expect(d!.prompt).toBe(prompt);
    expect(d!.turns).toEqual([{ role: 'teacher', text: ' a b' }, { role: 'student', text: ' ok' }, { role: 'teacher', text: ' c' }]);
    expect([...d!.rewards]).toEqual([[1, 0.75]]);
    expect(d!.terminated).toBe(false);
    expect(() => loggedChat({ ...row, tokens: undefined } as DialogRow, tok)).toThrow(/transcript/);
  });

  it('runs the tiny preset end to end: checkpoints along training give several KL points per family, gold beside proxy, intervals over 3 seeds, the figure; a rerun reuses every stage', async () => {
    const config = loadOnlineOfflineStudy(path.join(PROJECT_ROOT, 'configs', 'experiments', 'online-offline-tiny.json'), { base: defaultModelDir() });
    const { results } = await runOnlineOfflineStudy({ config, out, log: () => {} });
    // Checkpoints kept along training (keepCheckpoints / checkpointEvery), each a different policy.
    expect(keptCheckpoints(path.join(out, 'rl', 'ppo-kl-s1'))).toEqual([1, 2]);
    expect(keptCheckpoints(path.join(out, 'rl', 'kl-budget-s2'))).toEqual([1, 2]);
    expect(keptCheckpoints(path.join(out, 'rl', 'batch-kl-s3'))).toEqual([2, 4]);
    const trainer = (ck: string) => JSON.parse(readFileSync(path.join(out, 'rl', 'ppo-kl-s1', ck, 'trainer.json'), 'utf8')) as { update: number };
    expect([trainer('checkpoint-1').update, trainer('checkpoint-2').update, trainer('checkpoint').update]).toEqual([1, 2, 2]);
    const weights = (ck: string) => readFileSync(path.join(out, 'rl', 'batch-kl-s1', ck, 'weights.bin'));
    expect(weights('checkpoint-2').equals(weights('checkpoint-4'))).toBe(false);
    expect(weights('checkpoint-4').equals(weights('checkpoint'))).toBe(true);
    // The logged dialogs batch-kl trained on: the base policy's, every reply rewarded.
    const logged = readLoggedDialogs(path.join(out, 'logged', 'chats.jsonl'));
    expect(logged).toHaveLength(6);
    for (const d of logged) expect(d.rewards.size).toBe(d.turns.filter(t => t.role === 'student').length);

    const saved = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')) as OnlineOfflineResults;
    expect(saved.seeds).toEqual([1, 2, 3]);
    for (const f of FAMILIES) {
      const pts = saved.points.filter(p => p.family === f);
      expect(pts.length).toBeGreaterThanOrEqual(2);
      expect(new Set(pts.map(p => p.kl.mean)).size).toBe(pts.length);
      for (const p of pts) {
        expect(p.seeds.length).toBeGreaterThanOrEqual(3);
        expect(p.perSeed.map(s => s.seed)).toEqual([1, 2, 3]);
        for (const i of [p.kl, p.proxy, p.gold]) expect(ordered(i), `${p.family} ${p.step} ${JSON.stringify(i)}`).toBe(true);
        expect(p.kl.mean).toBeGreaterThanOrEqual(0);
        // The tiny preset's gold is the proxy's own config: the gold return equals the proxy's, dialog by dialog.
        expect(p.gold.mean).toBeCloseTo(p.proxy.mean, 9);
      }
    }
    // The base policy is the curves' start: KL 0 to itself.
    expect(saved.base.kl.mean).toBeCloseTo(0, 6);
    const evalRows = readFileSync(path.join(out, 'eval', 'batch-kl-s2-4.jsonl'), 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l) as DialogRow);
    for (const r of evalRows) expect(r.exchanges > 0 ? r.goldReward : 0).toBeCloseTo(r.reward, 9);
    expect(Number.isFinite(saved.base.gold.mean)).toBe(true);
    expect(saved.claims.length).toBeGreaterThan(0);
    for (const c of saved.claims) expect(['reproduced', 'contradicted', 'undecided']).toContain(c.verdict);

    const html = await renderOnlineOfflineReport(saved);
    expect((html.match(/<svg/g) ?? []).length).toBe(1);
    for (const s of ['What reproduces', 'Reward against KL', 'gold reward (never seen)', 'proxy reward (trained on)', 'The claims', 'over 3 seeds']) expect(html).toContain(s);
    for (const f of FAMILIES) expect(html).toContain(f);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);

    const t0 = Date.now();
    const again = await runOnlineOfflineStudy({ config, out, log: () => {} });
    expect(Object.values(again.results.stages).every(v => v.reused)).toBe(true);
    // logged + 9 runs + base eval + (2 + 2 + 2 checkpoints) × 3 seeds.
    expect(Object.keys(again.results.stages)).toHaveLength(1 + 9 + 1 + 18);
    expect(again.results.points.map(p => p.gold.mean)).toEqual(results.points.map(p => p.gold.mean));
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(existsSync(path.join(out, 'report.html'))).toBe(false); // the CLI writes it, not the runner
  });
});
