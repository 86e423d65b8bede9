/**
 * A z-scored reward's statistics belong to one run (issue 12, item 4). Over the wire, two sessions
 * stepped interleaved get the rewards each gets alone; a jaques-reward training run with a second
 * client training beside it on the same server writes the same metrics.jsonl rewards as alone. The
 * run saves its reward statistics with its checkpoint (checkpoint/reward.json, a reward config with
 * the statistics frozen), and an env given that file scores with them and never moves them, so an
 * evaluation's rewards do not depend on which agent ran first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectVectorEnv } from '../../agents/client.ts';
import { makeVec } from '../../env/index.ts';
import type { VectorEnv } from '../../env/core.ts';
import { loadDialogModel, type DialogModel } from '../../env/dialog-model.ts';
import { resolvePpoKlConfig } from '../../configs/agents/schema.ts';
import { trainPpoKl } from '../../agents/rl/ppo-kl.ts';
import { METRICS as M } from '../../agents/metrics.ts';
import { loadRewardConfig } from '../../rewards/composite.ts';
import { loadAgent } from '../../agents/eval/load.ts';
import { evalAgents } from '../../agents/eval/run.ts';
import { startTestServer, type TestServer } from '../server/helpers.ts';
import { buildToyModel, toyKwargs } from './toy.ts';

let srv: TestServer;
let dir: string;
let model: DialogModel;
const outs: string[] = [];
const tmpOut = (name: string) => { const p = path.join(os.tmpdir(), `colloquy-reward-iso-${name}-${process.pid}`); rmSync(p, { recursive: true, force: true }); outs.push(p); return p; };

beforeAll(async () => {
  dir = await buildToyModel();
  model = await loadDialogModel(dir);
  // The server's base model (the student's, the env's tokenizer) is the toy model; wire kwargs name no folder.
  srv = await startTestServer({}, { modelDir: dir });
});
afterAll(async () => {
  await srv.close();
  for (const o of outs) rmSync(o, { recursive: true, force: true });
});

const kwargs = (reward = 'jaques') => ({ ...toyKwargs(dir), reward });
/** The same, for a session on the server (its base model is the toy model). */
const wireKwargs = (reward = 'jaques') => { const k: Record<string, unknown> = kwargs(reward); delete k.model; return k; };

/** A fixed teacher: turns of varying words, so that the z-scored signals vary. */
function script(n: number, offset: number): number[] {
  const sp = model.tokenizer.special;
  const turns = [' yes', ' ok', ' wow yes', ' hmm', ' nice', ' right yes'].map(t => [...model.tokenizer.encode(t), sp.student]);
  const out: number[] = [];
  for (let k = offset; out.length < n; k++) out.push(...turns[k % turns.length]!);
  return out.slice(0, n);
}

/** Step `envs` (2 sub-envs) with the script, one step per call of the returned function. */
async function stepper(envs: VectorEnv<unknown, unknown>, seed: number, offset: number): Promise<{ step: () => Promise<void>; rewards: number[][] }> {
  await envs.reset({ seed });
  const acts = [script(200, offset), script(200, offset + 3)];
  const rewards: number[][] = [];
  let t = 0;
  return {
    rewards,
    step: async () => { const r = await envs.step([acts[0]![t]!, acts[1]![t]!]); rewards.push(r.rewards); t++; },
  };
}

describe('z-scored rewards belong to one run', () => {
  it('two sessions stepped interleaved over the wire get the rewards each gets alone', async () => {
    const open = () => connectVectorEnv(srv.wsUrl, { env: 'TeacherStudent-v0', kwargs: wireKwargs(), numEnvs: 2, autoresetMode: 'same-step' });
    const steps = 120;
    const alone: number[][][] = [];
    for (const [seed, offset] of [[1, 0], [2, 1]] as const) {
      const envs = await open();
      const s = await stepper(envs, seed, offset);
      for (let i = 0; i < steps; i++) await s.step();
      alone.push(s.rewards);
      await envs.close();
    }
    const [ea, eb] = [await open(), await open()];
    const a = await stepper(ea, 1, 0), b = await stepper(eb, 2, 1);
    for (let i = 0; i < steps; i++) { await a.step(); await b.step(); }
    await Promise.all([ea.close(), eb.close()]);
    // The z-scored reward moved (it is not a constant), and each session's rewards are its own.
    expect(new Set(alone[0]!.flat().filter(r => r !== 0)).size).toBeGreaterThan(3);
    expect(a.rewards).toEqual(alone[0]);
    expect(b.rewards).toEqual(alone[1]);
  });

  describe('a jaques-reward training run over the wire', () => {
    const config = (seed: number) => resolvePpoKlConfig({
      numEnvs: 4, steps: 0, updates: 3, seed, env: { kwargs: wireKwargs() }, minibatches: 2, epochs: 1, samples: 0, checkpointEvery: 100,
    });
    async function train(seed: number, out: string): Promise<number[]> {
      const envs = await connectVectorEnv(srv.wsUrl, { env: 'TeacherStudent-v0', kwargs: wireKwargs(), numEnvs: 4, autoresetMode: 'same-step' });
      try {
        await trainPpoKl(config(seed), { envs, base: model.lm, baseDir: dir, tokenizer: model.tokenizer, out, progressBar: false, log: () => {} });
      } finally {
        await envs.close();
      }
      return readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map(l => (JSON.parse(l) as Record<string, number>)[M.rewardMean]!);
    }
    let alone: number[], beside: number[], out: string;

    beforeAll(async () => {
      alone = await train(4, tmpOut('alone'));
      out = tmpOut('beside');
      [beside] = await Promise.all([train(4, out), train(9, tmpOut('other'))]);
    });

    it('writes the same metrics.jsonl rewards with a second client training beside it', () => {
      expect(alone).toHaveLength(3);
      expect(beside).toEqual(alone);
    });

    it('saves its reward statistics with the checkpoint, frozen, and eval\'s loader hands them on', async () => {
      const file = path.join(out, 'checkpoint', 'reward.json');
      expect(existsSync(file)).toBe(true);
      const cfg = loadRewardConfig(file);
      expect(cfg.name).toBe('jaques');
      expect(cfg.frozenStats?.sentiment?.count).toBeGreaterThan(10);
      expect(cfg.frozenStats?.conversationLength).toBeUndefined();
      const loaded = await loadAgent(`checkpoint:${out}`, { baseDir: dir, tokenizer: model.tokenizer, maxTokens: 48 });
      expect(loaded.rewardFile).toBe(file);
      loaded.dispose();
    });

    it('eval scores the run with its saved statistics (not the running ones), and --kwargs reward overrides them', async () => {
      const file = path.join(out, 'checkpoint', 'reward.json');
      const asked: (string | undefined)[] = [];
      const evalRun = async (reward: string | null, runReward = true) => {
        const [r] = await evalAgents({
          runs: [{ spec: `checkpoint:${out}` }], references: [], baseDir: dir, demonstrator: null, episodes: 4, seed: 300, runReward,
          openEnv: async rw => { asked.push(rw); return makeVec('TeacherStudent-v0', { numEnvs: 2, kwargs: kwargs(rw ?? reward ?? 'jaques'), autoresetMode: 'disabled' }); },
          agentContext: { maxTokens: 48 }, transcripts: false,
        });
        return r!;
      };
      const own = await evalRun(null);
      expect(asked).toEqual([file]);
      expect(own.summary.rewardConfig).toBe(file);
      // The same as an env told to use that file, and not what the running statistics give.
      const explicit = await evalRun(file, false);
      expect(explicit.summary.rewardConfig).toBeNull();
      expect(explicit.rows.map(r => r.reward)).toEqual(own.rows.map(r => r.reward));
      const running = await evalRun('jaques', false);
      expect(asked.slice(1)).toEqual([undefined, undefined]);
      expect(running.rows.map(r => r.reward)).not.toEqual(own.rows.map(r => r.reward));
    });

    it('an env given the saved statistics scores with them and never moves them: order-independent rewards', async () => {
      const file = path.join(out, 'checkpoint', 'reward.json');
      const play = async (seed: number) => {
        const envs = makeVec('TeacherStudent-v0', { numEnvs: 2, kwargs: kwargs(file), autoresetMode: 'same-step' });
        const s = await stepper(envs, seed, 0);
        for (let i = 0; i < 40; i++) await s.step();
        await envs.close();
        return s.rewards;
      };
      const first = await play(5);
      // Same env objects would be fresh anyway; what matters: the first exchange is z-scored at once (no warm-up), with the run's statistics.
      expect(first.flat().some(r => r !== 0)).toBe(true);
      const envs = makeVec('TeacherStudent-v0', { numEnvs: 2, kwargs: kwargs(file), autoresetMode: 'same-step' });
      const warm = await stepper(envs, 7, 2);
      for (let i = 0; i < 40; i++) await warm.step();
      // The same env, having scored other dialogs, scores seed 5 as before.
      const again = await stepper(envs, 5, 0);
      for (let i = 0; i < 40; i++) await again.step();
      await envs.close();
      expect(again.rewards).toEqual(first);
    });
  });
});
