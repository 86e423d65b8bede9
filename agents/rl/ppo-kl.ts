/**
 * ppo-kl: token-level PPO with KL control to the base policy (Jaques et al. 2017's KL control,
 * with PPO as in Ziegler et al. 2019 and TRL). Read top to bottom: config → model → loop
 * (rollout → KL-penalised rewards → GAE over tokens with γ per dialog turn → PPO epochs →
 * β update → metrics, samples, checkpoint).
 *
 * Per-token reward:  r_t = env reward_t − β·KL_t,  KL_t one of
 *   k1 = log π(a_t|s_t) − log p(a_t|s_t),  k3 = (r − 1) − log r with r = p/π,
 *   exact = KL(π(·|s_t) ‖ p(·|s_t)) from the full distributions.
 * β is fixed, or adaptive: Ziegler et al.'s e = clip(KL/target − 1, ±0.2), β ← β(1 + e·n/horizon),
 * or a PI controller of ln β (kl.controller 'pi', kl.ts) that holds the target, with KL the mean
 * per-episode KL of the batch (the estimator's, or the exact one: kl.measure) and n its episodes.
 * γ applies per dialog turn (between a teacher turn and the next), λ per token.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Rng } from '../../core/rng.ts';
import { mean, shuffle } from '../../core/arrays.ts';
import { BadConfig } from '../../core/errors.ts';
import type { PpoKlConfig } from '../../configs/agents/schema.ts';
import { gae, whiten } from '../../rewards/returns.ts';
import { loadCheckpoint, loadOptimizerState, saveCheckpoint } from '../../models/checkpoint.ts';
import { clipGradients } from '../../models/pretrain.ts';
import { METRICS as M } from '../metrics.ts';
import { klEstimate, makeKlController, type KlControllerState } from './kl.ts';
import { LmPolicy, sequenceBatch, type SequenceBatch } from './policy.ts';
import { RolloutCollector, asReference, type Episode } from './rollout.ts';
import { POLICY_FORMAT, recordedReference, weightsSha256, writePolicyFile } from './policy-file.ts';
import { writeRewardFile } from './reward-stats.ts';
import { Budget, RunFolder, disposeIterations, dialogMetrics, episodeRecord, loadTensors, saveTensors, writeAtomic, type Metrics, type TrainContext, type TrainResult } from './run.ts';

interface TrainerState { update: number; seconds: number; kl: KlControllerState; episodes: number; agentSteps: number; envSteps?: number; stoppedBy?: 'budget' | 'minutes' }

/** Load a trained ppo-kl policy (LM + value head) from a run's checkpoint folder. */
export async function loadPpoKlPolicy(checkpointDir: string, trainLayers: number | 'all' = 'all'): Promise<LmPolicy> {
  const { model } = await loadCheckpoint(checkpointDir);
  const v = await loadTensors(checkpointDir, 'value');
  const policy = new LmPolicy(model, { trainLayers }, { w: v[0]!.tensor.dataSync() as Float32Array, b: v[1]!.tensor.dataSync() as Float32Array });
  tf.dispose(v.map(x => x.tensor));
  return policy;
}

export async function trainPpoKl(config: PpoKlConfig, ctx: TrainContext): Promise<TrainResult> {
  const run = new RunFolder(ctx.out, { resume: ctx.resume, log: ctx.log, progressBar: ctx.progressBar });
  const actionMode = (config.env.kwargs.actionMode as 'token' | 'utterance' | undefined) ?? 'token';
  const pad = ctx.tokenizer.special.pad;

  // ---- model: a trainable copy of the base model with a value head
  let state: TrainerState | null = null;
  let policy: LmPolicy;
  if (ctx.resume && existsSync(path.join(run.checkpointDir, 'trainer.json'))) {
    state = JSON.parse(await readFile(path.join(run.checkpointDir, 'trainer.json'), 'utf8')) as TrainerState;
    policy = await loadPpoKlPolicy(run.checkpointDir, config.trainLayers);
  } else {
    policy = new LmPolicy(ctx.base.clone(), { trainLayers: config.trainLayers });
  }
  if (policy.lm.config.contextLength < ((config.env.kwargs.maxTokens as number | undefined) ?? 256)) {
    throw new BadConfig(`env maxTokens exceeds the model's context length ${policy.lm.config.contextLength}`);
  }
  const vars = policy.trainableVariables();
  const optimizer = tf.train.adam(config.learningRate, 0.9, 0.999, config.adamEps);
  if (state) {
    const adam = await loadOptimizerState(run.checkpointDir);
    if (adam) { await optimizer.setWeights(adam); tf.dispose(adam.map(t => t.tensor)); }
  }
  const kl = makeKlController(config.kl, state?.kl);
  const referenceName = ctx.reference ? asReference(ctx.reference).name : 'base';
  const reference = recordedReference(ctx, referenceName);
  const baseModelSha256 = weightsSha256(ctx.baseDir);
  run.writeConfig(config, { ...ctx.meta, baseModel: ctx.baseDir, referenceName, reference, trainableParams: vars.reduce((n, v) => n + v.size, 0) });

  // ---- rollouts
  const startUpdate = state?.update ?? 0;
  const collector = new RolloutCollector(ctx.envs, ctx.base, ctx.tokenizer, {
    seed: config.seed + 7919 * startUpdate, actionMode, maxUtteranceTokens: config.maxUtteranceTokens, ...(ctx.reference ? { reference: asReference(ctx.reference) } : {}),
  });
  const rng = new Rng(config.seed + 31 * startUpdate);
  const budget = new Budget(config, state?.seconds ?? 0);
  const history: Metrics[] = [];
  let totalEpisodes = state?.episodes ?? 0, totalSteps = state?.agentSteps ?? 0, envSteps = state?.envSteps ?? 0;
  let update = startUpdate;

  const saveAll = async () => {
    const dir = run.checkpointDir;
    // An ordinary LM checkpoint (any LM consumer can sample the policy), plus the value head, Adam and the trainer's state.
    const adam = await optimizer.getWeights();
    await saveCheckpoint(policy.lm, dir, { tokenizer: ctx.tokenizer.toJSON(), metadata: { step: update, rl: 'ppo-kl', baseModel: ctx.baseDir }, optimizer: adam });
    disposeIterations(adam);
    await saveTensors(dir, 'value', [{ name: 'value/w', tensor: policy.valueW }, { name: 'value/b', tensor: policy.valueB }]);
    await writeRewardFile(dir, config.env.kwargs.reward, collector.rewardStats);
    await writePolicyFile(dir, { format: POLICY_FORMAT, version: 1, algo: 'ppo-kl', update, baseModel: ctx.baseDir, baseModelSha256, reference, trainLayers: config.trainLayers });
    const s: TrainerState = { update, seconds: budget.seconds, kl: kl.toJSON(), episodes: totalEpisodes, agentSteps: totalSteps, envSteps, stoppedBy: budget.stoppedBy(update, envSteps) };
    await writeAtomic(path.join(dir, 'trainer.json'), JSON.stringify(s, null, 2) + '\n');
  };

  try {
    while (!budget.done(update, envSteps)) {
      const t0 = performance.now();
      collector.version = update;
      const { episodes, stats } = await collector.collect(policy, { minEpisodes: config.episodesPerUpdate });
      const tUpdate = performance.now();

      // ---- KL-penalised token rewards
      const beta = kl.value;
      const penalties = episodes.map(e => e.actions.map((_, t) => klEstimate(config.kl.estimator, e.logp[t]!, e.baseLogp[t]!, e.kl[t]!)));
      const episodeKl = penalties.map(p => p.reduce((a, b) => a + b, 0));

      // ---- values of the policy before the update (old values), frozen trunk once per update
      const full = sequenceBatch(episodes, pad);
      const trunk = policy.frozenTrunk(full);
      const { values, lastValues } = policy.values(full, trunk);

      // ---- GAE over tokens, γ per turn
      const adv: number[] = [], ret: number[] = [], oldV: number[] = [];
      let k = 0;
      episodes.forEach((e, b) => {
        const n = e.actions.length;
        const v = values.subarray(k, k + n);
        const rewards = e.rewards.map((r, t) => r - beta * penalties[b]![t]!);
        const bootstrap = e.truncated && config.bootstrapTruncated ? lastValues[b]! : 0;
        const g = gae({ rewards, values: v, lastValue: bootstrap, turnEnds: e.turnEnds, gamma: config.gamma, lambda: config.lambda });
        for (let t = 0; t < n; t++) { adv.push(g.advantages[t]!); ret.push(g.returns[t]!); oldV.push(v[t]!); }
        k += n;
      });
      const advantages = config.whitenAdvantages ? Array.from(whiten(adv)) : adv;

      // Per-episode slices of the flat arrays and of the frozen trunk.
      const offsets: number[] = [];
      let o = 0;
      for (const e of episodes) { offsets.push(o); o += e.actions.length; }
      const d = policy.lm.config.dModel;
      const trunkOf = (b: number): Float32Array | null => trunk ? trunk.subarray(b * full.T * d, (b * full.T + episodes[b]!.tokens.length) * d) : null;

      // ---- PPO epochs over minibatches of episodes
      const sums = { pg: 0, vf: 0, ent: 0, approxkl: 0, clipfrac: 0, vclipfrac: 0, gradNorm: 0, n: 0 };
      for (let epoch = 0; epoch < config.epochs; epoch++) {
        const order = shuffle(episodes.map((_, i) => i), rng);
        for (let m = 0; m < config.minibatches; m++) {
          const idx = order.filter((_, i) => i % config.minibatches === m);
          if (!idx.length) continue;
          const mbEps = idx.map(i => episodes[i]!);
          const mb = sequenceBatch(mbEps, pad);
          const mbTrunk = trunk ? packTrunk(idx.map(trunkOf) as Float32Array[], mb, d) : null;
          const pick = (xs: readonly number[]) => Float32Array.from(idx.flatMap(i => xs.slice(offsets[i]!, offsets[i]! + episodes[i]!.actions.length)));
          const oldLogp = Float32Array.from(idx.flatMap(i => episodes[i]!.logp));
          const A = pick(advantages), R = pick(ret), V0 = pick(oldV);
          const s = ppoStep(policy, vars, optimizer, mb, mbTrunk, { oldLogp, A, R, V0 }, config);
          sums.pg += s.pg; sums.vf += s.vf; sums.ent += s.ent; sums.approxkl += s.approxkl; sums.clipfrac += s.clipfrac; sums.vclipfrac += s.vclipfrac; sums.gradNorm += s.gradNorm; sums.n++;
        }
      }

      // ---- adaptive β
      const meanKl = episodeKl.reduce((a, b) => a + b, 0) / Math.max(1, episodeKl.length);
      const measured = config.kl.measure === 'exact' ? mean(episodes.map(e => e.kl.reduce((a, b) => a + b, 0))) : meanKl;
      kl.update(measured, episodes.length);

      // ---- metrics, samples, checkpoint
      update++;
      totalEpisodes += episodes.length;
      totalSteps += stats.agentSteps;
      envSteps += stats.envSteps * ctx.envs.numEnvs;
      const tEnd = performance.now();
      const nonScore = episodes.map((_, b) => -beta * episodeKl[b]!);
      const m: Metrics = {
        ...dialogMetrics(episodes),
        [M.kl]: meanKl,
        [M.klCoef]: beta,
        [M.nonScoreReward]: mean(nonScore),
        [M.rlhfReward]: mean(episodes.map((e, b) => e.return + nonScore[b]!)),
        [M.entropy]: mean(episodes.map(e => e.logp.reduce((a, b) => a - b, 0))),
        [M.approxKl]: sums.approxkl / sums.n,
        [M.clipFrac]: sums.clipfrac / sums.n,
        [M.policyEntropy]: sums.ent / sums.n,
        [M.policyLoss]: sums.pg / sums.n,
        [M.valueLoss]: sums.vf / sums.n,
        [M.valueClipFrac]: sums.vclipfrac / sums.n,
        [M.valueMean]: mean(oldV),
        [M.valueTargetMean]: mean(ret),
        [M.gradNorm]: sums.gradNorm / sums.n,
        [M.sps]: stats.agentSteps / ((tEnd - t0) / 1000),
        [M.episodes]: totalEpisodes,
        [M.agentSteps]: totalSteps,
        [M.envSteps]: envSteps,
        [M.offPolicyShare]: stats.offPolicySteps / Math.max(1, episodes.reduce((n, e) => n + e.actions.length, 0)),
        [M.rolloutSeconds]: (tUpdate - t0) / 1000,
        [M.envSeconds]: stats.envSeconds,
        [M.agentForwardSeconds]: stats.agentSeconds,
        [M.updateSeconds]: (tEnd - tUpdate) / 1000,
        [M.elapsedSeconds]: budget.seconds,
      };
      history.push(m);
      ctx.onUpdate?.(m);
      if (update % config.logEvery === 0) run.metrics(update, m, budget.progress(update, envSteps));
      if (config.samples > 0 && update % config.samplesEvery === 0) run.samples(update, episodes.slice(0, config.samples).map(e => episodeRecord(e, ctx.tokenizer)));
      if (update % config.checkpointEvery === 0) { await saveAll(); if (config.keepCheckpoints) run.keep(update); }
    }
    await saveAll();
    if (config.keepCheckpoints) run.keep(update);
  } finally {
    run.close();
    policy.end();
  }
  const result: TrainResult = { updates: update, envSteps, stoppedBy: budget.stoppedBy(update, envSteps), seconds: budget.seconds, history, checkpoint: run.checkpointDir };
  policy.dispose();
  optimizer.dispose();
  return result;
}

/** One PPO gradient step on a minibatch; returns its statistics. */
function ppoStep(policy: LmPolicy, vars: tf.Variable[], optimizer: tf.Optimizer, mb: SequenceBatch, trunk: Float32Array | null,
  data: { oldLogp: Float32Array; A: Float32Array; R: Float32Array; V0: Float32Array }, c: PpoKlConfig) {
  let stats = { pg: 0, vf: 0, ent: 0, approxkl: 0, clipfrac: 0, vclipfrac: 0, gradNorm: 0 };
  const { value, grads } = tf.variableGrads(() => {
    const { logp, entropy, values } = policy.evaluate(mb, trunk);
    const oldLogp = tf.tensor1d(data.oldLogp), A = tf.tensor1d(data.A), R = tf.tensor1d(data.R), V0 = tf.tensor1d(data.V0);
    // Clipped surrogate.
    const logRatio = tf.sub(logp, oldLogp);
    const ratio = tf.exp(logRatio);
    const pg = tf.mean(tf.maximum(tf.mul(tf.neg(A), ratio), tf.mul(tf.neg(A), tf.clipByValue(ratio, 1 - c.clip, 1 + c.clip))));
    // Clipped value loss.
    const vUnclipped = tf.square(tf.sub(values, R));
    const vClipped = c.valueClip > 0 ? tf.square(tf.sub(tf.add(V0, tf.clipByValue(tf.sub(values, V0), -c.valueClip, c.valueClip)), R)) : vUnclipped;
    const vf = tf.mul(0.5, tf.mean(tf.maximum(vUnclipped, vClipped)));
    const ent = tf.mean(entropy);
    const loss = tf.sub(tf.add(pg, tf.mul(c.vfCoef, vf)), tf.mul(c.entCoef, ent)) as tf.Scalar;
    // Statistics (read once, no gradients needed).
    const lr = logRatio.dataSync(), rt = ratio.dataSync(), vv = values.dataSync();
    let ak = 0, cf = 0, vcf = 0;
    for (let i = 0; i < lr.length; i++) {
      ak += 0.5 * lr[i]! * lr[i]!;
      if (Math.abs(rt[i]! - 1) > c.clip) cf++;
      if (c.valueClip > 0 && Math.abs(vv[i]! - data.V0[i]!) > c.valueClip) vcf++;
    }
    const n = Math.max(1, lr.length);
    stats = { pg: pg.dataSync()[0]!, vf: vf.dataSync()[0]!, ent: ent.dataSync()[0]!, approxkl: ak / n, clipfrac: cf / n, vclipfrac: vcf / n, gradNorm: 0 };
    return loss;
  }, vars);
  stats.gradNorm = clipGradients(grads, c.maxGradNorm);
  optimizer.applyGradients(grads);
  tf.dispose([value, ...Object.values(grads)]);
  return stats;
}

/** Lay per-episode trunk slices out as a minibatch's right-padded [B·T, d] rows. */
function packTrunk(slices: Float32Array[], mb: SequenceBatch, d: number): Float32Array {
  const out = new Float32Array(mb.B * mb.T * d);
  slices.forEach((s, b) => out.set(s, b * mb.T * d));
  return out;
}

export type { Episode };
