/**
 * The ppo-kl policy: a trainable copy of the base language model with a value head on its final
 * hidden state, and the ops its PPO update needs (fast on the wasm backend, see lm-ops.ts).
 *
 * - Sampling (rollouts) reads the copy through its KV-cached `LMSession`, one row per dialog.
 * - Training runs the model's own forward pass in pieces (`embed`, `blocks`, `finalNorm`). The
 *   lowest blocks may be frozen (`trainLayers`): their output is computed once per update, without
 *   gradients, and each PPO minibatch runs only the trainable top of the network.
 * - `actionLogProbs` is one op: logits at the agent's positions, log-softmax, the taken action's
 *   log-probability and the entropy, with a hand-written gradient (no [N, V] autodiff graph).
 */
import * as tf from '@tensorflow/tfjs';
import type { TransformerLM } from '../../models/lm.ts';
import type { LMSession } from '../../models/sampler.ts';
import { linear, readF32, tidyRead } from '../../models/lm-ops.ts';
import { BadConfig } from '../../core/errors.ts';
import { nativeNN, type NativeAddon } from '../../models/native.ts';
import type { Episode, RolloutPolicy } from './rollout.ts';

type Saver = tf.GradSaveFunc;

// ------------------------------------------------------------------------------------------------
// Ops

/**
 * For hidden states h [N, d] and output matrix E [V, d]: [N, 2] with the log-probability of
 * `actions[i]` under softmax(h·Eᵀ) and the entropy of that distribution. Gradient:
 * ∂logπ(a)/∂z = onehot(a) − p,  ∂H/∂z = −p ⊙ (log p + H).  When `trainE` is false E gets no
 * gradient (it is read as a constant).
 */
export function actionLogProbs(h: tf.Tensor2D, E: tf.Tensor2D, actions: Int32Array, trainE: boolean): tf.Tensor2D {
  const [N, d] = h.shape;
  const V = E.shape[0];
  if (actions.length !== N) throw new RangeError(`actionLogProbs: ${actions.length} actions for ${N} rows`);
  for (let i = 0; i < N; i++) {
    const a = actions[i]!;
    if (a < 0 || a >= V) throw new RangeError(`action ${a} outside the vocabulary [0, ${V})`);
  }
  const nn = nativeNN('policy');
  if (nn?.policyLogProbsForward && nn.policyLogProbsBackward) return nativeActionLogProbs(nn, h, E, actions, trainE);
  const forward = (ht: tf.Tensor2D, et: tf.Tensor2D) => {
    const z = tidyRead(() => tf.matMul(ht, tf.transpose(et)));
    const logp = new Float32Array(N * V);
    const out = new Float32Array(N * 2);
    const ent = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      const o = i * V;
      let m = -Infinity;
      for (let j = 0; j < V; j++) if (z[o + j]! > m) m = z[o + j]!;
      let s = 0;
      for (let j = 0; j < V; j++) s += Math.exp(z[o + j]! - m);
      const lse = m + Math.log(s);
      let H = 0;
      for (let j = 0; j < V; j++) { const l = z[o + j]! - lse; logp[o + j] = l; H -= Math.exp(l) * l; }
      out[2 * i] = logp[o + actions[i]!]!;
      out[2 * i + 1] = H;
      ent[i] = H;
    }
    return { logp, out, ent };
  };
  const backward = (dy: tf.Tensor, logp: Float32Array, ent: Float64Array): tf.Tensor2D => {
    const g = readF32(dy);
    const dz = new Float32Array(N * V);
    for (let i = 0; i < N; i++) {
      const o = i * V, gl = g[2 * i]!, gh = g[2 * i + 1]!, H = ent[i]!;
      for (let j = 0; j < V; j++) {
        const l = logp[o + j]!, p = Math.exp(l);
        dz[o + j] = -gl * p - gh * p * (l + H);
      }
      dz[o + actions[i]!] += gl;
    }
    return tf.tensor2d(dz, [N, V]);
  };
  if (trainE) {
    const f = tf.customGrad((hi: tf.Tensor | Saver, ei: tf.Tensor | Saver, save: tf.Tensor | Saver) => {
      const ht = hi as tf.Tensor2D, et = ei as tf.Tensor2D;
      const { logp, out, ent } = forward(ht, et);
      (save as Saver)([ht, et]);
      return {
        value: tf.tensor2d(out, [N, 2]),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [hs, es] = saved as [tf.Tensor2D, tf.Tensor2D];
          const dz = backward(dy, logp, ent);
          const dh = tf.matMul(dz, es);
          // dE = dzᵀ·h, computed as (hᵀ·dz)ᵀ: the big [N, V] matrix is never transposed.
          const dE = tf.transpose(tf.matMul(tf.transpose(hs), dz));
          return [dh, dE];
        },
      };
    });
    return f(h, E) as tf.Tensor2D;
  }
  const f = tf.customGrad((hi: tf.Tensor | Saver) => {
    const ht = hi as tf.Tensor2D;
    const { logp, out, ent } = forward(ht, E);
    return {
      value: tf.tensor2d(out, [N, 2]),
      gradFunc: (dy: tf.Tensor) => tf.matMul(backward(dy, logp, ent), E),
    };
  });
  void d;
  return f(h) as tf.Tensor2D;
}

/**
 * actionLogProbs on the native kernels: the logits, log-softmax, entropy and their gradients in two
 * calls (nn.cc policyLogProbsForward/Backward) instead of the JS loops over [N, V] above. Its
 * figures agree with the JS path's to float rounding (the softmax sums differ in order).
 */
function nativeActionLogProbs(nn: NativeAddon, h: tf.Tensor2D, E: tf.Tensor2D, actions: Int32Array, trainE: boolean): tf.Tensor2D {
  const [N, d] = h.shape;
  const V = E.shape[0];
  const op = (hd: Float32Array, ed: Float32Array) => {
    const P = new Float32Array(N * V), logP = new Float32Array(N * V), ent = new Float64Array(N), out = new Float32Array(N * 2);
    nn.policyLogProbsForward!(hd, ed, actions, N, V, d, P, logP, ent, out);
    return {
      value: tf.tensor2d(out, [N, 2]),
      grads: (dy: tf.Tensor) => {
        const dh = new Float32Array(N * d), dE = trainE ? new Float32Array(V * d) : null;
        nn.policyLogProbsBackward!(hd, ed, P, logP, ent, actions, readF32(dy), N, V, d, dh, dE);
        return { dh: tf.tensor2d(dh, [N, d]), dE: dE ? tf.tensor2d(dE, [V, d]) : null };
      },
    };
  };
  if (trainE) {
    const f = tf.customGrad((hi: tf.Tensor | Saver, ei: tf.Tensor | Saver) => {
      const { value, grads } = op(readF32(hi as tf.Tensor), readF32(ei as tf.Tensor));
      return { value, gradFunc: (dy: tf.Tensor) => { const g = grads(dy); return [g.dh, g.dE!]; } };
    });
    return f(h, E) as tf.Tensor2D;
  }
  const ed = readF32(E);
  const f = tf.customGrad((hi: tf.Tensor | Saver) => {
    const { value, grads } = op(readF32(hi as tf.Tensor), ed);
    return { value, gradFunc: (dy: tf.Tensor) => grads(dy).dh };
  });
  return f(h) as tf.Tensor2D;
}

// ------------------------------------------------------------------------------------------------
// Batches of episodes as right-padded sequences

/** The episodes of a minibatch laid out as B right-padded rows of T tokens. */
export interface SequenceBatch {
  B: number;
  T: number;
  ids: Int32Array;
  /** Row in [B·T] whose hidden state predicts each action (the position before it), in episode/action order. */
  actionRows: Int32Array;
  actions: Int32Array;
  /** Row of each episode's last token (the state after its last action). */
  lastRows: Int32Array;
}

export function sequenceBatch(episodes: readonly Episode[], pad: number): SequenceBatch {
  const B = episodes.length;
  const T = Math.max(1, ...episodes.map(e => e.tokens.length));
  const ids = new Int32Array(B * T).fill(pad);
  let n = 0;
  for (const e of episodes) n += e.actions.length;
  const actionRows = new Int32Array(n), actions = new Int32Array(n), lastRows = new Int32Array(B);
  let k = 0;
  episodes.forEach((e, b) => {
    ids.set(e.tokens, b * T);
    for (let t = 0; t < e.actions.length; t++) {
      const pos = e.pos[t]!;
      if (pos < 1 || e.tokens[pos] !== e.actions[t]) throw new Error(`episode ${e.id}: action ${t} is not at token ${pos}`);
      actionRows[k] = b * T + pos - 1;
      actions[k++] = e.actions[t]!;
    }
    lastRows[b] = b * T + e.tokens.length - 1;
  });
  return { B, T, ids, actionRows, actions, lastRows };
}

// ------------------------------------------------------------------------------------------------
// The policy

export interface LmPolicyOptions {
  /** Transformer blocks trained, counted from the top; 'all' also trains the embeddings. */
  trainLayers: number | 'all';
}

export class LmPolicy implements RolloutPolicy {
  readonly lm: TransformerLM;
  readonly valueW: tf.Variable;
  readonly valueB: tf.Variable;
  /** Index of the lowest trained block (0 with `trainLayers: 'all'`). */
  readonly trainFrom: number;
  readonly trainEmbeddings: boolean;
  private session: LMSession | null = null;

  /** `lm` becomes the policy's own (a clone of the base model, not the base itself). */
  constructor(lm: TransformerLM, opts: LmPolicyOptions, valueInit?: { w: Float32Array; b: Float32Array }) {
    const L = lm.config.nLayers;
    if (opts.trainLayers !== 'all' && !(Number.isInteger(opts.trainLayers) && opts.trainLayers >= 0)) {
      throw new BadConfig(`trainLayers must be 'all' or a non-negative integer, got ${String(opts.trainLayers)}`);
    }
    this.lm = lm;
    this.trainEmbeddings = opts.trainLayers === 'all';
    // More trained blocks than the model has: all blocks train (the embeddings stay frozen).
    this.trainFrom = opts.trainLayers === 'all' ? 0 : Math.max(0, L - opts.trainLayers);
    const d = lm.config.dModel;
    this.valueW = tf.variable(tf.tensor2d(valueInit?.w ?? new Float32Array(d), [d, 1]), true, `${lmName(lm)}value/w`);
    this.valueB = tf.variable(tf.tensor1d(valueInit?.b ?? new Float32Array(1)), true, `${lmName(lm)}value/b`);
  }

  /** Variables the optimiser updates. */
  trainableVariables(): tf.Variable[] {
    const vars: tf.Variable[] = [];
    for (const [name, v] of this.lm.params) {
      const block = /^h(\d+)\./.exec(name);
      if (block ? Number(block[1]) >= this.trainFrom : name.startsWith('ln_f.') || this.trainEmbeddings) vars.push(v);
    }
    vars.push(this.valueW, this.valueB);
    return vars;
  }

  // ---------------------------------------------------------------------------- rollouts

  begin(transcripts: readonly number[][]): void {
    this.session?.dispose();
    this.session = this.lm.startSession(transcripts.map(t => [...t]));
  }
  resetRow(row: number, tokens: readonly number[]): void { this.session!.resetRow(row, [...tokens]); }
  extendRow(row: number, tokens: readonly number[]): void { this.session!.extend(row, tokens); }
  next(rows: readonly number[]): { logp: ArrayLike<number>[] } {
    return { logp: this.session!.nextLogProbs(rows) };
  }
  end(): void { this.session?.dispose(); this.session = null; }

  // ---------------------------------------------------------------------------- training

  /** The residual stream entering block 0 of a batch of right-padded rows. */
  private embedIds(ids: Int32Array, B: number, T: number): tf.Tensor2D {
    if (T > this.lm.config.contextLength) throw new BadConfig(`an episode of ${T} tokens is longer than the model's context (${this.lm.config.contextLength}); lower the env's maxTokens`);
    return this.lm.embed(ids, B, T);
  }

  /**
   * The frozen part of the network for a batch: the residual stream entering the first trained
   * block, [B·T, d] as a Float32Array (empty when everything trains).
   */
  frozenTrunk(batch: SequenceBatch): Float32Array | null {
    if (this.trainEmbeddings) return null;
    const { ids, B, T } = batch;
    // tidyRead: the tensor tidy returns would outlive it (one trunk, MBs, leaked per update).
    return tidyRead(() => this.lm.blocks(this.embedIds(ids, B, T), B, T, { to: this.trainFrom }));
  }

  /**
   * Final hidden states (with gradients to the trained variables) at `rows` of the batch's [B·T]
   * positions: the last block runs its output projection and MLP on those rows only.
   */
  hidden(batch: SequenceBatch, trunk: Float32Array | null, rows: Int32Array): tf.Tensor2D {
    const { B, T } = batch;
    const c = this.lm.config;
    const x0 = trunk ? tf.tensor2d(trunk, [B * T, c.dModel]) : this.embedIds(batch.ids, B, T);
    return this.lm.finalNorm(this.lm.blocks(x0, B, T, { from: this.trainFrom, rows }));
  }

  /**
   * Per action: log π(a|s), entropy, value (tensors, inside `tf.variableGrads` for training).
   */
  evaluate(batch: SequenceBatch, trunk: Float32Array | null): { logp: tf.Tensor1D; entropy: tf.Tensor1D; values: tf.Tensor1D } {
    const hs = this.hidden(batch, trunk, batch.actionRows);
    const lp = actionLogProbs(hs, this.lm.outputMatrix(), batch.actions, this.trainEmbeddings);
    const [logp, ent] = tf.split(lp, 2, 1) as [tf.Tensor2D, tf.Tensor2D];
    const values = linear(hs, this.valueW as tf.Tensor2D, this.valueB as tf.Tensor1D);
    return { logp: tf.reshape(logp, [-1]), entropy: tf.reshape(ent, [-1]), values: tf.reshape(values, [-1]) };
  }

  /** Values (no gradients) at every action of the batch and after each episode's last token. */
  values(batch: SequenceBatch, trunk: Float32Array | null): { values: Float32Array; lastValues: Float32Array } {
    let values = new Float32Array(0), lastValues = new Float32Array(0);
    tf.tidy(() => {
      const n = batch.actionRows.length, rows = new Int32Array(n + batch.lastRows.length);
      rows.set(batch.actionRows);
      rows.set(batch.lastRows, n);
      const v = readF32(linear(this.hidden(batch, trunk, rows), this.valueW as tf.Tensor2D, this.valueB as tf.Tensor1D));
      values = v.slice(0, n);
      lastValues = v.slice(n);
    });
    return { values, lastValues };
  }

  dispose(): void {
    this.end();
    this.lm.dispose();
    this.valueW.dispose();
    this.valueB.dispose();
  }
}

function lmName(lm: TransformerLM): string {
  // Variables are named after their model's prefix (e.g. `lm3/tok_emb`): reuse it for the head.
  const first = lm.variables[0]?.name ?? 'lm/';
  return first.slice(0, first.indexOf('/') + 1);
}
