/**
 * bench/train: end-to-end training throughput of the RL agents on TeacherStudent-v0 (16 dialogs in
 * process, the default base model as base policy and student): agent token-steps per second
 * (sampling in the env + PPO updates), and the share of wall time spent in the env (student
 * replies, rewards), in the agent's forward passes during rollouts (policy + base model, KV-cached)
 * and in updates (values, PPO epochs). Each algorithm runs with its shipped config
 * (configs/agents/<algo>.json), only the number of dialogs and of updates set by the bench.
 *
 *   node bin/run.mjs bench/train.ts [--algo ppo-kl|kl-budget|both] [--updates 3] [--num-envs 16] [--model DIR] [--set JSON]
 */
import { parseArgs } from 'node:util';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../models/backend.ts';
import { makeVec } from '../env/index.ts';
import { loadDialogModel } from '../env/dialog-model.ts';
import { resolveAgentConfig, type Algo } from '../configs/agents/schema.ts';
import { deepMerge } from '../core/config.ts';
import type { Metrics } from '../agents/rl/run.ts';
import { PROJECT_ROOT, defaultModelDir } from '../core/paths.ts';
import { METRICS as M } from '../agents/metrics.ts';

const { values } = parseArgs({
  options: {
    algo: { type: 'string', default: 'both' }, updates: { type: 'string', default: '3' }, 'num-envs': { type: 'string', default: '16' },
    model: { type: 'string' }, set: { type: 'string' }, backend: { type: 'string', default: 'auto' },
  },
});
const info = await initBackend(values.backend as 'auto');
const modelDir = path.resolve(values.model ?? defaultModelDir());
const { lm, tokenizer } = await loadDialogModel(modelDir);
const algos: Algo[] = values.algo === 'both' ? ['ppo-kl', 'kl-budget'] : [values.algo as Algo];
const updates = Number(values.updates), numEnvs = Number(values['num-envs']);
console.log(`bench/train: TeacherStudent-v0, ${numEnvs} dialogs, ${updates} updates per algorithm, base ${modelDir} (${lm.numParams.toLocaleString()} parameters), backend ${info.name}`);

for (const algo of algos) {
  // The shipped config of the algorithm (configs/agents/<algo>.json), with the bench's sizes.
  const file = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'configs', 'agents', `${algo}.json`), 'utf8')) as object;
  const config = resolveAgentConfig(deepMerge(file, { algo, numEnvs, updates, minutes: 0, samples: 0, ...(values.set ? JSON.parse(values.set) as object : {}) }), algo);
  const envs = makeVec(config.env.id, { numEnvs: config.numEnvs, kwargs: { ...config.env.kwargs, model: modelDir }, autoresetMode: 'same-step' });
  const out = path.join(os.tmpdir(), `colloquy-bench-train-${algo}-${process.pid}`);
  const history: Metrics[] = [];
  const t0 = performance.now();
  const ctx = { envs, base: lm, baseDir: modelDir, tokenizer, out, progressBar: false, log: () => {}, onUpdate: (m: Metrics) => history.push(m) };
  if (config.algo === 'ppo-kl') await (await import('../agents/rl/ppo-kl.ts')).trainPpoKl(config, ctx);
  else await (await import('../agents/rl/kl-budget.ts')).trainKlBudget(config, ctx);
  const wall = (performance.now() - t0) / 1000;
  await envs.close();
  rmSync(out, { recursive: true, force: true });
  const sum = (k: string) => history.reduce((s, m) => s + (m[k] ?? 0), 0);
  const steps = history[history.length - 1]![M.agentSteps]!;
  const env = sum(M.envSeconds), fwd = sum(M.agentForwardSeconds), upd = sum(M.updateSeconds), roll = sum(M.rolloutSeconds);
  const pct = (x: number) => `${(100 * x / wall).toFixed(1)}%`;
  console.log(`\n${algo}: ${steps} agent token-steps in ${wall.toFixed(1)} s = ${(steps / wall).toFixed(1)} steps/s end to end (${history.length} updates, ${sum(M.episodes) ? history[history.length - 1]![M.episodes] : 0} dialogs)`);
  console.log(`  env (student replies, rewards)   ${env.toFixed(1).padStart(7)} s  ${pct(env)}`);
  console.log(`  agent forward (policy + base)    ${fwd.toFixed(1).padStart(7)} s  ${pct(fwd)}`);
  console.log(`  rollout bookkeeping              ${(roll - env - fwd).toFixed(1).padStart(7)} s  ${pct(roll - env - fwd)}`);
  console.log(`  updates (values + PPO epochs)    ${upd.toFixed(1).padStart(7)} s  ${pct(upd)}`);
  console.log(`  other (setup, checkpoint)        ${(wall - roll - upd).toFixed(1).padStart(7)} s  ${pct(wall - roll - upd)}`);
}
