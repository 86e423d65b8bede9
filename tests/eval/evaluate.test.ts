import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeVec } from '../../env/index.ts';
import { defaultModelDir } from '../../core/paths.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import { TransformerLM } from '../../models/lm.ts';
import { loadCheckpoint } from '../../models/checkpoint.ts';
import { ModelAgent } from '../../agents/eval/agents.ts';
import { evaluate, type DialogRow } from '../../agents/eval/evaluate.ts';
import { summarize, rowsToCsv } from '../../agents/eval/summary.ts';
import { ConservativeAgent, ModelHelper } from '../../agents/imitation/conservative.ts';
import { ConservativeReference, klToReference } from '../../agents/imitation/reference.ts';
import { bootstrapMean, bootstrapOverSeeds, bootstrapRatio, distinctN, ecdf } from '../../agents/eval/stats.ts';

const kwargs = { maxTokens: 150, maxStudentTokens: 12 };
let base: TransformerLM;
let demo: TransformerLM;
let others: TransformerLM[];

beforeAll(async () => {
  base = (await loadCheckpoint(defaultModelDir())).model;
  // Stand-ins for D and the imitators: same architecture, other random weights (what matters here
  // is the bookkeeping, not their quality).
  demo = TransformerLM.create({ ...base.config, initStd: 0.08 }, 11);
  others = [12, 13].map(s => TransformerLM.create({ ...base.config, initStd: 0.08 }, s));
});
afterAll(() => { base?.dispose(); demo?.dispose(); others?.forEach(m => m.dispose()); });

async function run(agentFor: () => ModelAgent | ConservativeAgent, seed: number, episodes: number, numEnvs: number): Promise<DialogRow[]> {
  const env = makeVec('TeacherStudent-v0', { numEnvs, kwargs, autoresetMode: 'disabled' });
  try {
    return await evaluate({
      env, agent: agentFor(), episodes, seed, tokenizer: loadDialogTokenizer(defaultModelDir()), transcripts: true,
      references: [{ name: 'base', ref: base }, { name: 'demonstrator', ref: demo }],
    });
  } finally { await env.close(); }
}

describe('colloquy eval: evaluate()', () => {
  it('is deterministic with fixed seeds, and each dialog is its own seed', async () => {
    const a = await run(() => new ModelAgent(base, 'base'), 5, 5, 3);
    const b = await run(() => new ModelAgent(base, 'base'), 5, 5, 3);
    expect(a.map(r => r.dialog)).toEqual([0, 1, 2, 3, 4]);
    expect(a.map(r => r.envSeed)).toEqual([5, 6, 7, 8, 9]);
    expect(b).toEqual(a);
    expect(new Set(a.map(r => r.transcript)).size).toBeGreaterThan(1);
    // Each row keeps the env's prompt: the transcript's text before the teacher's first token.
    for (const r of a) {
      expect(r.prompt.length).toBeGreaterThan(0);
      expect(r.transcript!.startsWith(r.prompt + r.teacherTexts[0]!)).toBe(true);
    }
    // A dialog does not depend on how dialogs are spread over sub-envs.
    const c = await run(() => new ModelAgent(base, 'base'), 5, 2, 1);
    expect(c.map(r => r.transcript)).toEqual(a.slice(0, 2).map(r => r.transcript));
    const s = summarize(a);
    expect(s.episodes).toBe(5);
    expect(s.reward.lo).toBeLessThanOrEqual(s.reward.mean);
    expect(rowsToCsv(a).trim().split('\n')).toHaveLength(6);
  });

  it('measures KL exactly: 0 to itself, the sum of per-token KLs to another model', async () => {
    const rows = await run(() => new ModelAgent(demo, 'demonstrator'), 1, 2, 2);
    for (const r of rows) {
      expect(r.kl.demonstrator).toBeCloseTo(0, 3);
      expect(r.agentTokens).toBe(r.agentPositions!.length);
      // KL(D ‖ base) over the agent's positions, from full forward passes.
      const ctxs = r.agentPositions!.map(p => r.tokens!.slice(0, p));
      const d = demo.nextTokenLogProbs(ctxs), b = base.nextTokenLogProbs(ctxs);
      const want = ctxs.reduce((acc, _, i) => acc + klToReference(d[i]!, b[i]!), 0);
      expect(r.kl.base).toBeGreaterThan(0);
      expect(r.kl.base).toBeCloseTo(want, 2);
      const nll = r.agentPositions!.reduce((acc, p, i) => acc - d[i]![r.tokens![p]!]!, 0);
      expect(r.nll.demonstrator).toBeCloseTo(nll, 2);
    }
  });

  it('runs the conservative baseline: help requests, exact KL of ℓ + θ·D', async () => {
    const helps: number[] = [];
    const tok = loadDialogTokenizer(defaultModelDir());
    const make = () => new ConservativeAgent({
      models: others, helper: new ModelHelper(demo), helpMode: 'turn', turnEnd: [tok.special.student, tok.special.endOfText],
    });
    const env = makeVec('TeacherStudent-v0', { numEnvs: 2, kwargs, autoresetMode: 'disabled' });
    let rows: DialogRow[];
    try {
      rows = await evaluate({
        env, agent: make(), episodes: 2, seed: 3, tokenizer: tok, transcripts: true,
        references: [{ name: 'demonstrator', ref: demo }, { name: 'conservative', ref: new ConservativeReference(others) }],
        onHelp: e => helps.push(e.theta),
      });
    } finally { await env.close(); }
    const total = rows.reduce((a, r) => a + r.helpRequests, 0);
    expect(total).toBe(helps.length);
    expect(total).toBeGreaterThan(0); // two random models disagree: θ is large
    expect(helps.every(t => t > 0 && t <= 1)).toBe(true);
    for (const r of rows) {
      expect(r.helpedTokens).toBeGreaterThanOrEqual(r.helpRequests);
      expect(r.decisions).toBeLessThanOrEqual(r.agentTokens);
      expect(Number.isFinite(r.kl.demonstrator)).toBe(true);
      expect(r.kl.conservative).toBeGreaterThan(0);
    }
  });
});

describe('stats', () => {
  it('bootstrap intervals bracket the mean and are reproducible', () => {
    const xs = Array.from({ length: 50 }, (_, i) => (i * 37) % 11);
    const a = bootstrapMean(xs, { seed: 1 }), b = bootstrapMean(xs, { seed: 1 });
    expect(a).toEqual(b);
    expect(a.mean).toBeCloseTo(xs.reduce((s, x) => s + x, 0) / 50, 12);
    expect(a.lo).toBeLessThan(a.mean); expect(a.hi).toBeGreaterThan(a.mean);
    const r = bootstrapRatio([1, 2, 3], [2, 2, 2]);
    expect(r.mean).toBeCloseTo(1, 12);
    expect(bootstrapMean([]).n).toBe(0);
  });

  it('the interval over seeds resamples seeds, then dialogs: it carries the spread between seeds', () => {
    // Three seeds whose dialogs agree closely within a seed but not between seeds.
    const seeds = [0, 1, 5].map(m => ({ num: Array.from({ length: 40 }, (_, i) => m + 0.01 * (i % 5)), den: Array.from({ length: 40 }, () => 1) }));
    const over = bootstrapOverSeeds(seeds, { seed: 3 });
    const pooled = bootstrapMean(seeds.flatMap(s => s.num), { seed: 3 });
    expect(over.n).toBe(3);
    expect(over.mean).toBeCloseTo((0 + 1 + 5) / 3 + 0.02, 9);
    expect(over).toEqual(bootstrapOverSeeds(seeds, { seed: 3 }));
    expect(over.hi - over.lo).toBeGreaterThan(5 * (pooled.hi - pooled.lo));
    expect(over.lo).toBeGreaterThanOrEqual(0); expect(over.hi).toBeLessThanOrEqual(5.05);
    // Seeds weigh equally whatever their number of dialogs; NaN entries and empty seeds drop out.
    const uneven = bootstrapOverSeeds([{ num: [1, 1, 1, 1, NaN], den: [1, 1, 1, 1, 1] }, { num: [3], den: [1] }, { num: [], den: [] }]);
    expect(uneven.mean).toBe(2);
    expect(uneven.n).toBe(2);
  });

  it('distinct-n and the ECDF', () => {
    expect(distinctN([['a', 'b', 'a', 'b']], 1)).toBe(0.5);
    expect(distinctN([['a', 'b', 'a', 'b']], 2)).toBeCloseTo(2 / 3, 12);
    expect(distinctN([], 2)).toBe(0);
    expect(ecdf([0, 0, 1, 0.5])).toEqual([{ x: 0, p: 0.5 }, { x: 0.5, p: 0.75 }, { x: 1, p: 1 }]);
  });
});
