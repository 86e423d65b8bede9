/**
 * A gradient worker (worker thread) for data-parallel pretraining, see parallel.ts. It holds a
 * replica of the model; each request brings the current weights and a shard of the batch, and the
 * reply carries the shard's mean loss and its gradients (in parameter order).
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendChoice } from './backend.ts';
import { TransformerLM, type LMConfig } from './lm.ts';

interface Init { module: string; config: LMConfig; backend: BackendChoice }
export interface GradRequest { weights: Float32Array[]; tokens: Int32Array; batchSize: number; seqLength: number; dropoutSeed?: number }
export interface GradReply { loss: number; grads: Float32Array[] }

const init = workerData as Init;
await initBackend(init.backend);
tf.enableProdMode();
const model = TransformerLM.create(init.config, 0);
const names = [...model.params.keys()];
const port = parentPort!;
port.on('message', (req: GradRequest | 'close') => {
  if (req === 'close') { model.dispose(); port.close(); return; }
  try {
    model.setWeights(new Map(names.map((n, i) => [n, req.weights[i]!])));
    const { value, grads } = tf.variableGrads(() => model.loss({ tokens: req.tokens, batchSize: req.batchSize, seqLength: req.seqLength }, req.dropoutSeed));
    const loss = value.dataSync()[0]!;
    const out = model.variables.map(v => Float32Array.from(grads[v.name]!.dataSync() as Float32Array));
    tf.dispose([value, ...Object.values(grads)]);
    port.postMessage({ loss, grads: out } satisfies GradReply, out.map(g => g.buffer));
  } catch (err) {
    port.postMessage({ error: (err as Error).stack ?? String(err) });
  }
});
port.postMessage('ready');
