/**
 * Schedules follow env steps, never the wall clock (issue 12, item 6): `steps` is the budget,
 * kl-budget's ramp is a share of it, and `minutes` only caps wall time. The same config and seed on
 * a fast and on a slow machine (here: an env whose every step sleeps) give the same updates, the
 * same budgets and the same rewards; a run cut by the minutes cap is a prefix of the full run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeVec } from '../../env/index.ts';
import type { VectorEnv } from '../../env/core.ts';
import { loadDialogModel, type DialogModel } from '../../env/dialog-model.ts';
import { resolveKlBudgetConfig, type KlBudgetConfig } from '../../configs/agents/schema.ts';
import { trainKlBudget } from '../../agents/rl/kl-budget.ts';
import { METRICS as M } from '../../agents/metrics.ts';
import type { TrainResult } from '../../agents/rl/run.ts';
import { buildToyModel, toyKwargs } from './toy.ts';

let model: DialogModel;
let dir: string;
const outs: string[] = [];
const tmpOut = (name: string) => { const p = path.join(os.tmpdir(), `colloquy-schedule-${name}-${process.pid}`); rmSync(p, { recursive: true, force: true }); outs.push(p); return p; };

beforeAll(async () => {
  dir = await buildToyModel();
  model = await loadDialogModel(dir);
});
afterAll(() => { for (const o of outs) rmSync(o, { recursive: true, force: true }); });

function config(over: Record<string, unknown> = {}): KlBudgetConfig {
  return resolveKlBudgetConfig({
    numEnvs: 4, steps: 360, minutes: 0, seed: 11, env: { kwargs: toyKwargs(dir) },
    budget: 6, budgetRampFraction: 0.5, epochs: 1, minibatchSize: 256, criticHidden: 8, samples: 0, checkpointEvery: 100, ...over,
  });
}

/** The vector env with `delayMs` of sleep before every step: a loaded machine. */
function slowed(envs: VectorEnv<unknown, unknown>, delayMs: number): VectorEnv<unknown, unknown> {
  const step = envs.step.bind(envs);
  envs.step = async actions => { await new Promise(r => setTimeout(r, delayMs)); return step(actions); };
  return envs;
}

async function train(c: KlBudgetConfig, out: string, delayMs = 0): Promise<TrainResult> {
  const envs = slowed(makeVec('TeacherStudent-v0', { numEnvs: c.numEnvs, kwargs: c.env.kwargs, autoresetMode: 'same-step' }), delayMs);
  try {
    return await trainKlBudget(c, { envs, base: model.lm, baseDir: dir, tokenizer: model.tokenizer, out, progressBar: false, log: () => {} });
  } finally {
    await envs.close();
  }
}

const column = (r: TrainResult, k: string) => r.history.map(m => m[k]!);

describe('schedules in env steps', () => {
  let fast: TrainResult, slow: TrainResult, capped: TrainResult;
  beforeAll(async () => {
    fast = await train(config(), tmpOut('fast'));
    slow = await train(config(), tmpOut('slow'), 15);
    capped = await train(config({ minutes: 0.5 / 60 }), tmpOut('capped'), 15);
  });

  it('stops after the update that reaches `steps` env steps, counting sub-env steps over the envs', () => {
    const steps = column(fast, M.envSteps);
    expect(steps[steps.length - 1]).toBeGreaterThanOrEqual(360);
    expect(steps[steps.length - 2]).toBeLessThan(360);
    expect(fast.envSteps).toBe(steps[steps.length - 1]);
    expect(fast.stoppedBy).toBe('budget');
    // Token mode: one agent token per sub-env step.
    expect(column(fast, M.agentSteps)).toEqual(steps);
    expect(fast.updates).toBeGreaterThan(3);
  });

  it('ramps the budget over the first half of the steps', () => {
    const budgets = column(fast, M.klBudget), steps = column(fast, M.envSteps);
    expect(budgets[0]).toBe(0);
    // The budget of update u follows the env steps before it: 6 · min(1, steps / (0.5 · 360)).
    budgets.slice(1).forEach((b, i) => expect(b).toBeCloseTo(6 * Math.min(1, steps[i]! / 180), 12));
    expect(budgets[budgets.length - 1]).toBe(6);
  });

  it('gives the same updates, budgets and rewards on a slow machine', () => {
    expect(slow.updates).toBe(fast.updates);
    expect(column(slow, M.envSteps)).toEqual(column(fast, M.envSteps));
    expect(column(slow, M.klBudget)).toEqual(column(fast, M.klBudget));
    expect(column(slow, M.rewardMean)).toEqual(column(fast, M.rewardMean));
  });

  it('lets minutes only cap the run: the capped run is a prefix of the full one and says why it stopped', () => {
    expect(capped.stoppedBy).toBe('minutes');
    expect(capped.updates).toBeLessThan(fast.updates);
    expect(capped.updates).toBeGreaterThanOrEqual(1);
    const n = capped.updates;
    expect(column(capped, M.klBudget)).toEqual(column(fast, M.klBudget).slice(0, n));
    expect(column(capped, M.rewardMean)).toEqual(column(fast, M.rewardMean).slice(0, n));
    const trainer = JSON.parse(readFileSync(path.join(capped.checkpoint, 'trainer.json'), 'utf8')) as { stoppedBy: string; envSteps: number };
    expect(trainer).toMatchObject({ stoppedBy: 'minutes', envSteps: capped.envSteps });
  });
});
