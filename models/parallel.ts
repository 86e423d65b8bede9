/**
 * Data-parallel gradients on worker threads. The wasm backend runs one thread per TF.js instance,
 * so pretraining on a 2-core machine splits each batch in `threads` shards: the calling thread
 * computes the first shard while each worker computes one more, on a replica that receives the
 * current weights with every request. Gradients are averaged by tokens, in a fixed order
 * (deterministic for a given thread count).
 */
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { BackendChoice } from './backend.ts';
import type { TransformerLM, LMBatch } from './lm.ts';
import type { GradReply, GradRequest } from './train-worker.ts';

export class GradientWorkers {
  private readonly workers: Worker[];
  private constructor(workers: Worker[]) { this.workers = workers; }

  /** Start `threads − 1` workers (none when threads ≤ 1). */
  static async start(threads: number, model: TransformerLM, backend: BackendChoice): Promise<GradientWorkers> {
    const n = Math.max(0, Math.floor(threads) - 1);
    const boot = new URL('./worker-boot.mjs', import.meta.url);
    const module = new URL('./train-worker.ts', import.meta.url).href;
    const workers = await Promise.all(Array.from({ length: n }, () => new Promise<Worker>((resolve, reject) => {
      const w = new Worker(boot, { workerData: { module, config: model.config, backend } });
      w.once('message', m => (m === 'ready' ? resolve(w) : reject(new Error(`gradient worker: ${JSON.stringify(m)}`))));
      w.once('error', reject);
    })));
    return new GradientWorkers(workers);
  }

  get threads(): number { return this.workers.length + 1; }

  /**
   * Mean loss and gradients (a map by variable name, like `tf.variableGrads`) of a batch split
   * row-wise across the threads. The caller disposes the gradients.
   */
  async lossAndGrads(model: TransformerLM, batch: LMBatch, dropoutSeed?: number): Promise<{ loss: number; grads: tf.NamedTensorMap }> {
    const { batchSize: B, seqLength: T, tokens } = batch;
    const k = Math.min(this.threads, B);
    const rows = Array.from({ length: k }, (_, i) => Math.floor(B / k) + (i < B % k ? 1 : 0));
    const shards: LMBatch[] = [];
    let r0 = 0;
    for (const n of rows) { shards.push({ tokens: tokens.subarray(r0 * (T + 1), (r0 + n) * (T + 1)), batchSize: n, seqLength: T }); r0 += n; }
    const weights = k > 1 ? [...model.weightValues().values()] : [];
    const pending = shards.slice(1).map((s, i) => new Promise<GradReply>((resolve, reject) => {
      const w = this.workers[i]!;
      const onMsg = (m: GradReply | { error: string }) => { w.off('error', onErr); if ('error' in m) reject(new Error(`gradient worker: ${m.error}`)); else resolve(m); };
      const onErr = (e: Error) => { w.off('message', onMsg); reject(e); };
      w.once('message', onMsg);
      w.once('error', onErr);
      const req: GradRequest = { weights, tokens: s.tokens.slice(), batchSize: s.batchSize, seqLength: T, dropoutSeed: dropoutSeed === undefined ? undefined : dropoutSeed + i + 1 };
      w.postMessage(req);
    }));
    const mine = tf.variableGrads(() => model.loss(shards[0]!, dropoutSeed));
    const replies = await Promise.all(pending);
    const frac = rows.map(n => n / B);
    let loss = mine.value.dataSync()[0]! * frac[0]!;
    mine.value.dispose();
    replies.forEach((r, i) => { loss += r.loss * frac[i + 1]!; });
    if (replies.length === 0) return { loss, grads: mine.grads };
    const grads: tf.NamedTensorMap = {};
    model.variables.forEach((v, j) => {
      grads[v.name] = tf.tidy(() => {
        let g = tf.mul(mine.grads[v.name]!, frac[0]!);
        replies.forEach((r, i) => { g = tf.add(g, tf.mul(tf.tensor(r.grads[j]!, v.shape), frac[i + 1]!)); });
        return g;
      });
    });
    tf.dispose(Object.values(mine.grads));
    return { loss, grads };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map(w => new Promise<void>(resolve => { w.once('exit', () => resolve()); w.postMessage('close'); setTimeout(() => { void w.terminate(); }, 2000).unref(); })));
  }
}
