/**
 * kl-budget: the agent of Cohen, Hutter, Bengio & Russell (2024), "RL, but don't do anything I
 * wouldn't do" (code: mkc1000/kl_reg_paper). Read top to bottom: config → model → loop
 * (budget ramp → rollout → Monte-Carlo / GAE advantages → PPO epochs → metrics, samples, checkpoint).
 *
 * - Each episode gets a total KL budget B (nats), ramped linearly from 0 to `budget` over the first
 *   `budgetRampFraction` of the run's env steps (of its updates when `steps` is 0), never of its
 *   wall time: the same command and seed give the same ramp anywhere.
 * - Each token the agent proposes a distribution and a per-token target k = σ(τ − log n)·B_left;
 *   the policy is the mixture of the proposal and the base policy whose weight is solved so that
 *   KL(mixture ‖ base) = k (budget-policy.ts, kl-mixture.ts). The budget left goes down by the
 *   token's exact KL, so an episode never spends more than B. Budget left and time left are inputs.
 * - No KL penalty in the reward: the constraint replaces it. PPO as in the paper's code: γ = 1,
 *   clip 0.1, advantage whitening, entropy 1e-4, gradient norm clipping on the actor, separate
 *   learning rates for actor and critic, and the squared gap between the proposal's KL and the
 *   target added to the loss.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Rng } from '../../core/rng.ts';
import { mean, shuffle } from '../../core/arrays.ts';
import { BadConfig } from '../../core/errors.ts';
import type { KlBudgetConfig } from '../../configs/agents/schema.ts';
import { gae, whiten } from '../../rewards/returns.ts';
import type { TransformerLM } from '../../models/lm.ts';
import { tidyRead } from '../../models/lm-ops.ts';
import { clipGradients } from '../../models/pretrain.ts';
import { METRICS as M } from '../metrics.ts';
import { BudgetPolicy, mixtureOutputs, type BudgetAux } from './budget-policy.ts';
import { RolloutCollector, asReference, type Episode } from './rollout.ts';
import { POLICY_FORMAT, recordedReference, weightsSha256, writePolicyFile } from './policy-file.ts';
import { writeRewardFile } from './reward-stats.ts';
import { Budget, RunFolder, assignAll, dialogMetrics, episodeRecord, loadTensors, restoreOptimizer, saveOptimizer, saveTensors, writeAtomic, type Metrics, type TrainContext, type TrainResult } from './run.ts';

interface TrainerState { update: number; seconds: number; episodes: number; agentSteps: number; envSteps?: number; stoppedBy?: 'budget' | 'minutes'; budget: number }

/** The budget for episodes starting at `progress` ∈ [0, 1] of the run. */
export function rampedBudget(c: Pick<KlBudgetConfig, 'budget' | 'budgetRampFraction'>, progress: number): number {
  if (c.budgetRampFraction <= 0) return c.budget;
  return c.budget * Math.min(1, progress / c.budgetRampFraction);
}

/**
 * Load a trained kl-budget policy from a run's checkpoint folder, with the target horizon and
 * budget accounting it was trained with (checkpoint/agent.json records them; see policy-file.ts).
 */
export async function loadKlBudgetPolicy(checkpointDir: string, base: TransformerLM, settings: { criticHidden: number; targetHorizon: number | null; budgetAccounting: 'exact' | 'sampled' }): Promise<BudgetPolicy> {
  const policy = new BudgetPolicy(base, { criticHidden: settings.criticHidden, seed: 0 });
  policy.targetHorizon = settings.targetHorizon;
  policy.accounting = settings.budgetAccounting;
  const saved = await loadTensors(checkpointDir, 'policy');
  assignAll([...policy.actorVariables(), ...policy.criticVariables()], saved);
  tf.dispose(saved.map(s => s.tensor));
  return policy;
}

export async function trainKlBudget(config: KlBudgetConfig, ctx: TrainContext): Promise<TrainResult> {
  const run = new RunFolder(ctx.out, { resume: ctx.resume, log: ctx.log, progressBar: ctx.progressBar });

  // ---- model: proposal / target head and critic on the frozen base model's features
  let state: TrainerState | null = null;
  let policy: BudgetPolicy;
  if (ctx.resume && existsSync(path.join(run.checkpointDir, 'trainer.json'))) {
    state = JSON.parse(await readFile(path.join(run.checkpointDir, 'trainer.json'), 'utf8')) as TrainerState;
    policy = await loadKlBudgetPolicy(run.checkpointDir, ctx.base, config);
  } else {
    policy = new BudgetPolicy(ctx.base, { criticHidden: config.criticHidden, seed: config.seed });
  }
  policy.accounting = config.budgetAccounting;
  policy.targetHorizon = config.targetHorizon;
  const actorVars = policy.actorVariables(), criticVars = policy.criticVariables();
  const actorOpt: tf.Optimizer = tf.train.adam(config.learningRateActor, 0.9, 0.999, config.adamEps);
  const criticOpt: tf.Optimizer = tf.train.adam(config.learningRateCritic, 0.9, 0.999, config.adamEps);
  if (state) {
    await restoreOptimizer(run.checkpointDir, 'optimizer-actor', actorOpt);
    await restoreOptimizer(run.checkpointDir, 'optimizer-critic', criticOpt);
  }
  const referenceName = ctx.reference ? asReference(ctx.reference).name : 'base';
  const recorded = recordedReference(ctx, referenceName);
  const baseModelSha256 = weightsSha256(ctx.baseDir);
  run.writeConfig(config, { ...ctx.meta, baseModel: ctx.baseDir, referenceName, reference: recorded, trainableParams: [...actorVars, ...criticVars].reduce((n, v) => n + v.size, 0) });

  // ---- rollouts
  const startUpdate = state?.update ?? 0;
  if (ctx.reference && asReference(ctx.reference).outputSize !== asReference(ctx.reference).vocabSize) {
    throw new BadConfig(`kl-budget needs a KL reference normalised over the vocabulary; '${asReference(ctx.reference).name}' has a HELP action (use ppo-kl for it)`);
  }
  // With the base model as the reference, the policy reads its features from the rollout's base session.
  const reference = ctx.reference ? asReference(ctx.reference) : policy.baseReference();
  const collector = new RolloutCollector<BudgetAux>(ctx.envs, ctx.base, ctx.tokenizer, { seed: config.seed + 7919 * startUpdate, actionMode: 'token', reference });
  const rng = new Rng(config.seed + 31 * startUpdate);
  const budget = new Budget(config, state?.seconds ?? 0);
  const history: Metrics[] = [];
  let totalEpisodes = state?.episodes ?? 0, totalSteps = state?.agentSteps ?? 0, envSteps = state?.envSteps ?? 0;
  let update = startUpdate;

  const saveAll = async () => {
    const dir = run.checkpointDir;
    await saveTensors(dir, 'policy', [...actorVars, ...criticVars].map(v => ({ name: v.name, tensor: v })));
    await saveOptimizer(dir, 'optimizer-actor', actorOpt);
    await saveOptimizer(dir, 'optimizer-critic', criticOpt);
    await writeRewardFile(dir, config.env.kwargs.reward, collector.rewardStats);
    await writePolicyFile(dir, {
      format: POLICY_FORMAT, version: 1, algo: 'kl-budget', update, baseModel: ctx.baseDir, baseModelSha256, reference: recorded,
      criticHidden: config.criticHidden, targetHorizon: config.targetHorizon, budgetAccounting: config.budgetAccounting,
      budget: rampedBudget(config, budget.progress(update, envSteps)),
    });
    const s: TrainerState = { update, seconds: budget.seconds, episodes: totalEpisodes, agentSteps: totalSteps, envSteps, stoppedBy: budget.stoppedBy(update, envSteps), budget: policy.budget };
    await writeAtomic(path.join(dir, 'trainer.json'), JSON.stringify(s, null, 2) + '\n');
  };

  try {
    while (!budget.done(update, envSteps)) {
      const t0 = performance.now();
      policy.budget = rampedBudget(config, budget.progress(update, envSteps));
      collector.version = update;
      const { episodes, stats } = await collector.collect(policy, { minEpisodes: config.episodesPerUpdate });
      const tUpdate = performance.now();

      // ---- flatten the agent steps; critic values before the update
      const steps = episodes.flatMap(e => e.aux.map((aux, t) => ({ e, t, aux })));
      const F = policy.inputs;
      const X = new Float32Array(steps.length * F);
      steps.forEach((s, i) => X.set(s.aux.input, i * F));
      const values = tidyRead(() => policy.critic(tf.tensor2d(X, [steps.length, F])));

      // ---- advantages: GAE with γ per turn (γ = λ = 1: Monte-Carlo returns − V, as the paper)
      const adv = new Float64Array(steps.length), ret = new Float64Array(steps.length);
      let o = 0;
      for (const e of episodes) {
        const n = e.actions.length;
        const g = gae({ rewards: e.rewards, values: values.subarray(o, o + n), lastValue: 0, turnEnds: e.turnEnds, gamma: config.gamma, lambda: config.lambda });
        adv.set(g.advantages, o); ret.set(g.returns, o);
        o += n;
      }
      const A = config.whitenAdvantages ? whiten(adv) : adv;

      // ---- PPO epochs over minibatches of steps
      const sums = { pg: 0, vf: 0, ent: 0, gap: 0, approxkl: 0, clipfrac: 0, gradNorm: 0, n: 0 };
      for (let epoch = 0; epoch < config.epochs; epoch++) {
        const order = shuffle(steps.map((_, i) => i), rng);
        for (let s0 = 0; s0 < order.length; s0 += config.minibatchSize) {
          const idx = order.slice(s0, s0 + config.minibatchSize);
          const n = idx.length;
          const x = new Float32Array(n * F);
          idx.forEach((i, r) => x.set(steps[i]!.aux.input, r * F));
          const rows = idx.map(i => ({ logb: steps[i]!.aux.logb, alpha: steps[i]!.aux.alpha, budgetLeft: steps[i]!.aux.budgetLeft, horizon: steps[i]!.aux.horizon }));
          const actions = Int32Array.from(idx.map(i => steps[i]!.e.actions[steps[i]!.t]!));
          const oldLogp = Float32Array.from(idx.map(i => steps[i]!.e.logp[steps[i]!.t]!));
          const mbA = Float32Array.from(idx.map(i => A[i]!)), mbR = Float32Array.from(idx.map(i => ret[i]!));
          let st = { pg: 0, vf: 0, ent: 0, gap: 0, approxkl: 0, clipfrac: 0 };
          const { value, grads } = tf.variableGrads(() => {
            const xt = tf.tensor2d(x, [n, F]);
            const out = mixtureOutputs(policy.head(xt), rows, actions);
            const [lp, ent, gap] = tf.split(out, 3, 1).map(t => tf.reshape(t, [-1]));
            const logRatio = tf.sub(lp!, tf.tensor1d(oldLogp));
            const ratio = tf.exp(logRatio);
            const At = tf.tensor1d(mbA);
            const pg = tf.mean(tf.maximum(tf.mul(tf.neg(At), ratio), tf.mul(tf.neg(At), tf.clipByValue(ratio, 1 - config.clip, 1 + config.clip))));
            const vf = tf.mul(0.5, tf.mean(tf.square(tf.sub(policy.critic(xt), tf.tensor1d(mbR)))));
            const entM = tf.mean(ent!), gapM = tf.mean(gap!);
            const loss = tf.add(tf.sub(tf.add(pg, vf), tf.mul(config.entCoef, entM)), tf.mul(config.gapCoef, gapM)) as tf.Scalar;
            const lr = logRatio.dataSync(), rt = ratio.dataSync();
            let ak = 0, cf = 0;
            for (let i = 0; i < n; i++) { ak += 0.5 * lr[i]! * lr[i]!; if (Math.abs(rt[i]! - 1) > config.clip) cf++; }
            st = { pg: pg.dataSync()[0]!, vf: vf.dataSync()[0]!, ent: entM.dataSync()[0]!, gap: gapM.dataSync()[0]!, approxkl: ak / n, clipfrac: cf / n };
            return loss;
          }, [...actorVars, ...criticVars]);
          const actorGrads: typeof grads = {}, criticGrads: typeof grads = {};
          for (const v of actorVars) actorGrads[v.name] = grads[v.name]!;
          for (const v of criticVars) criticGrads[v.name] = grads[v.name]!;
          const norm = clipGradients(actorGrads, config.maxGradNorm);
          actorOpt.applyGradients(actorGrads);
          criticOpt.applyGradients(criticGrads);
          tf.dispose([value, ...Object.values(grads), ...Object.values(actorGrads)]);
          sums.pg += st.pg; sums.vf += st.vf; sums.ent += st.ent; sums.gap += st.gap; sums.approxkl += st.approxkl; sums.clipfrac += st.clipfrac; sums.gradNorm += norm; sums.n++;
        }
      }

      // ---- metrics, samples, checkpoint
      update++;
      totalEpisodes += episodes.length;
      totalSteps += stats.agentSteps;
      envSteps += stats.envSteps * ctx.envs.numEnvs;
      const tEnd = performance.now();
      const spent = episodes.map(e => e.state.spent ?? 0);
      const m: Metrics = {
        ...dialogMetrics(episodes),
        [M.kl]: mean(episodes.map(e => e.logp.reduce((a, lp, t) => a + lp - e.baseLogp[t]!, 0))),
        [M.nonScoreReward]: 0,
        [M.entropy]: mean(episodes.map(e => e.logp.reduce((a, b) => a - b, 0))),
        [M.klBudget]: policy.budget,
        [M.klBudgetEpisodeMean]: mean(episodes.map(e => e.state.budget ?? 0)),
        [M.klSpentMean]: mean(spent),
        [M.klOverspendMax]: Math.max(...episodes.map((e, i) => spent[i]! - (e.state.budget ?? 0))),
        [M.mixtureAlphaMean]: mean(steps.map(s => s.aux.alpha)),
        [M.klTargetMean]: mean(steps.map(s => s.aux.k)),
        [M.approxKl]: sums.approxkl / sums.n,
        [M.clipFrac]: sums.clipfrac / sums.n,
        [M.policyEntropy]: sums.ent / sums.n,
        [M.policyLoss]: sums.pg / sums.n,
        [M.valueLoss]: sums.vf / sums.n,
        [M.gapLoss]: sums.gap / sums.n,
        [M.valueMean]: mean(Array.from(values)),
        [M.valueTargetMean]: mean(Array.from(ret)),
        [M.gradNorm]: sums.gradNorm / sums.n,
        [M.sps]: stats.agentSteps / ((tEnd - t0) / 1000),
        [M.episodes]: totalEpisodes,
        [M.agentSteps]: totalSteps,
        [M.envSteps]: envSteps,
        [M.offPolicyShare]: stats.offPolicySteps / Math.max(1, steps.length),
        [M.rolloutSeconds]: (tUpdate - t0) / 1000,
        [M.envSeconds]: stats.envSeconds,
        [M.agentForwardSeconds]: stats.agentSeconds,
        [M.updateSeconds]: (tEnd - tUpdate) / 1000,
        [M.elapsedSeconds]: budget.seconds,
      };
      history.push(m);
      ctx.onUpdate?.(m);
      if (update % config.logEvery === 0) run.metrics(update, m, budget.progress(update, envSteps));
      if (config.samples > 0 && update % config.samplesEvery === 0) run.samples(update, episodes.slice(0, config.samples).map(e => ({ ...episodeRecord(e, ctx.tokenizer), budget: e.state.budget })));
      if (update % config.checkpointEvery === 0) { await saveAll(); if (config.keepCheckpoints) run.keep(update); }
    }
    await saveAll();
    if (config.keepCheckpoints) run.keep(update);
  } finally {
    run.close();
  }
  const result: TrainResult = { updates: update, envSteps, stoppedBy: budget.stoppedBy(update, envSteps), seconds: budget.seconds, history, checkpoint: run.checkpointDir };
  policy.dispose();
  actorOpt.dispose();
  criticOpt.dispose();
  return result;
}

export type { Episode };
