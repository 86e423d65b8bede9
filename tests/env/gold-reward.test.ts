// Issue 13, study 3's gold reward: kwargs.goldReward scores every rewarded reply with a second
// reward config, reported in info.goldReward and never in the reward; training logs its mean as
// objective/gold_reward and evaluation rows carry its sum.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeVec } from '../../env/index.ts';
import { loadDialogModel, type DialogModel } from '../../env/dialog-model.ts';
import { resolvePpoKlConfig } from '../../configs/agents/schema.ts';
import { trainPpoKl } from '../../agents/rl/ppo-kl.ts';
import { METRICS as M } from '../../agents/metrics.ts';
import { ModelAgent } from '../../agents/eval/agents.ts';
import { evalAgents } from '../../agents/eval/run.ts';
import { buildToyModel, toyKwargs } from '../agents/toy.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'colloquy-gold-'));
const gold = path.join(tmp, 'gold.json');
let dir: string;
let model: DialogModel;
beforeAll(async () => {
  // The gold scorer: minus the proxy (cohen's (s+1)/2 with weight −1), so gold = −reward on every rewarded reply.
  writeFileSync(gold, JSON.stringify({ name: 'minus-cohen', scorer: { name: 'vader' }, terms: [{ signal: 'sentiment', weight: -1 }] }));
  dir = await buildToyModel();
  model = await loadDialogModel(dir);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('kwargs.goldReward', () => {
  it('puts a second score in info.goldReward and leaves the reward as it was', async () => {
    const sp = model.tokenizer.special;
    const turn = (t: string) => [...model.tokenizer.encode(t), sp.student];
    const actions = [...turn(' yes'), ...turn(' ok'), ...turn(' wow yes'), ...turn(' hmm')];
    const play = async (kwargs: Record<string, unknown>) => {
      const env = makeVec('TeacherStudent-v0', { numEnvs: 1, kwargs, autoresetMode: 'disabled' });
      await env.reset({ seed: 3 });
      const steps: { reward: number; gold: unknown; reply: unknown }[] = [];
      for (const a of actions) {
        const r = await env.step([a]);
        steps.push({ reward: r.rewards[0]!, gold: r.infos[0]?.goldReward, reply: r.infos[0]?.studentReply });
        if (r.terminated[0] || r.truncated[0]) break;
      }
      await env.close();
      return steps;
    };
    const withGold = await play({ ...toyKwargs(dir), goldReward: gold });
    const without = await play(toyKwargs(dir));
    expect(withGold.map(s => s.reward)).toEqual(without.map(s => s.reward));
    const replies = withGold.filter(s => typeof s.reply === 'string');
    expect(replies.length).toBeGreaterThanOrEqual(3);
    for (const s of replies) expect(s.gold).toBeCloseTo(-s.reward, 12);
    expect(withGold.filter(s => s.reply === undefined).every(s => s.gold === undefined)).toBe(true);
    expect(without.every(s => s.gold === undefined)).toBe(true);
  });

  it('training logs objective/gold_reward (only when configured) and eval rows carry the gold sum', async () => {
    const run = async (kwargs: Record<string, unknown>, name: string) => {
      const out = path.join(tmp, name);
      const envs = makeVec('TeacherStudent-v0', { numEnvs: 2, kwargs, autoresetMode: 'same-step' });
      try {
        await trainPpoKl(resolvePpoKlConfig({ numEnvs: 2, steps: 0, updates: 2, seed: 1, env: { kwargs }, minibatches: 1, epochs: 1, samples: 0, checkpointEvery: 100 }),
          { envs, base: model.lm, baseDir: dir, tokenizer: model.tokenizer, out, progressBar: false, log: () => {} });
      } finally { await envs.close(); }
      return readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map(l => JSON.parse(l) as Record<string, number>);
    };
    const lines = await run({ ...toyKwargs(dir), goldReward: gold }, 'with');
    for (const l of lines) expect(l[M.goldReward]).toBeCloseTo(-l[M.rewardMean]!, 5);
    expect((await run(toyKwargs(dir), 'without')).every(l => !(M.goldReward in l))).toBe(true);

    const [res] = await evalAgents({
      runs: [{ agent: new ModelAgent(model.lm, 'toy', { kind: 'model' }) }], references: [], baseDir: dir, demonstrator: null, episodes: 4, seed: 10,
      openEnv: async () => makeVec('TeacherStudent-v0', { numEnvs: 2, kwargs: { ...toyKwargs(dir), goldReward: gold }, autoresetMode: 'disabled' }), transcripts: false,
    });
    for (const r of res!.rows) expect(r.goldReward).toBeCloseTo(r.exchanges > 0 ? -r.reward : r.goldReward, 12);
    expect(res!.rows.some(r => r.exchanges > 0)).toBe(true);
    expect(res!.summary.goldReward.mean).toBeCloseTo(-res!.summary.reward.mean, 5);
  });
});
