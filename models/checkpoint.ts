/**
 * Checkpoints of the language model, one folder each:
 *
 *   model.json     format + architecture config + the weight manifest (name, shape, offset)
 *   weights.bin    float32 little-endian, the weights in manifest order
 *   tokenizer.json the Hugging Face tokenizer (when one is given)
 *   config.json    the training config that produced it (when given)
 *   metadata.json  backend, tfjs version, date, step, corpus, validation perplexity, …
 *   optimizer.json + optimizer.bin   Adam state for `--resume` (when given)
 *
 * Weights are stored exactly (float32), so a loaded model gives bit-identical outputs.
 * Writes go to temporary names first and are renamed at the end, so a crash mid-save never
 * leaves a half-written checkpoint under the final names.
 */
import { mkdir, readFile, rename, writeFile, access } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BadConfig } from '../core/errors.ts';
import { TransformerLM, type LMConfig } from './lm.ts';

/** A named tensor (as `optimizer.getWeights()` returns them). */
export interface NamedTensor { name: string; tensor: tf.Tensor }

export const CHECKPOINT_FORMAT = 'colloquy-lm';
export const CHECKPOINT_VERSION = 1;

export interface WeightEntry { name: string; shape: number[]; dtype: 'float32'; offset: number; length: number }

export interface ModelJson {
  format: typeof CHECKPOINT_FORMAT;
  version: number;
  config: LMConfig;
  weightsFile: string;
  weights: WeightEntry[];
}

export interface CheckpointMetadata {
  /** The backend that trained / wrote it (`backendInfo()`), or null when none was initialised. */
  backend: { name: string; tfBackend: string; features: string[] } | null;
  tfjsVersion: string;
  date: string;
  step?: number;
  tokensSeen?: number;
  epochs?: number;
  corpus?: string;
  valPerplexity?: number | null;
  valPerplexityByCorpus?: Record<string, number>;
  trainSeconds?: number;
  numParams?: number;
  [key: string]: unknown;
}

export interface SaveExtras {
  /** Hugging Face tokenizer.json object (`tokenizer.toJSON()`). */
  tokenizer?: unknown;
  /** Training config (config.json). */
  trainConfig?: unknown;
  metadata?: Partial<CheckpointMetadata>;
  /** Adam state (`await optimizer.getWeights()`), written for resuming. */
  optimizer?: NamedTensor[];
}

export interface LoadedCheckpoint {
  model: TransformerLM;
  modelJson: ModelJson;
  /** The raw tokenizer.json object, or null. Build it with `BpeTokenizer.fromJSON`. */
  tokenizer: unknown;
  trainConfig: unknown;
  metadata: CheckpointMetadata | null;
}

async function exists(file: string): Promise<boolean> {
  try { await access(file); return true; } catch { return false; }
}

/** True when `dir` holds a checkpoint (a model.json and its weights). */
export async function isCheckpoint(dir: string): Promise<boolean> {
  return (await exists(path.join(dir, 'model.json'))) && (await exists(path.join(dir, 'weights.bin')));
}

function packNamed(entries: { name: string; shape: number[]; values: Float32Array }[]): { manifest: WeightEntry[]; bin: Buffer } {
  const manifest: WeightEntry[] = [];
  let offset = 0;
  for (const e of entries) { manifest.push({ name: e.name, shape: e.shape, dtype: 'float32', offset, length: e.values.length }); offset += e.values.length * 4; }
  const bin = Buffer.alloc(offset);
  for (const [i, e] of entries.entries()) {
    const view = new Float32Array(bin.buffer, bin.byteOffset + manifest[i]!.offset, e.values.length);
    view.set(e.values);
  }
  return { manifest, bin };
}

function unpack(bin: Buffer, entries: WeightEntry[], file: string): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const e of entries) {
    if (e.offset + e.length * 4 > bin.length) throw new BadConfig(`${file}: weight '${e.name}' runs past the end of the file`);
    // Copy into an aligned buffer (the file buffer's offset need not be a multiple of 4).
    const a = new Float32Array(e.length);
    new Uint8Array(a.buffer).set(bin.subarray(e.offset, e.offset + e.length * 4));
    out.set(e.name, a);
  }
  return out;
}

async function writeAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

/** Save a model (and optionally tokenizer, training config, metadata and optimizer state) to `dir`. */
export async function saveCheckpoint(model: TransformerLM, dir: string, extras: SaveExtras = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const values = model.weightValues();
  const specs = TransformerLM.paramSpecs(model.config);
  const { manifest, bin } = packNamed(specs.map(s => ({ name: s.name, shape: s.shape, values: values.get(s.name)! })));
  const modelJson: ModelJson = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, config: model.config, weightsFile: 'weights.bin', weights: manifest };
  await writeAtomic(path.join(dir, 'weights.bin'), bin);
  if (extras.tokenizer !== undefined) await writeAtomic(path.join(dir, 'tokenizer.json'), JSON.stringify(extras.tokenizer));
  if (extras.trainConfig !== undefined) await writeAtomic(path.join(dir, 'config.json'), JSON.stringify(extras.trainConfig, null, 2) + '\n');
  const metadata: CheckpointMetadata = {
    backend: null,
    tfjsVersion: tf.version.tfjs,
    date: new Date().toISOString(),
    numParams: model.numParams,
    ...extras.metadata,
  };
  await writeAtomic(path.join(dir, 'metadata.json'), JSON.stringify(metadata, null, 2) + '\n');
  if (extras.optimizer) {
    const named = extras.optimizer.map(t => ({ name: t.name, shape: t.tensor.shape, values: Float32Array.from(t.tensor.dataSync() as Float32Array) }));
    const opt = packNamed(named);
    await writeAtomic(path.join(dir, 'optimizer.bin'), opt.bin);
    await writeAtomic(path.join(dir, 'optimizer.json'), JSON.stringify({ format: 'colloquy-adam', weights: opt.manifest }, null, 2) + '\n');
  }
  // model.json last: its presence marks a complete checkpoint.
  await writeAtomic(path.join(dir, 'model.json'), JSON.stringify(modelJson, null, 2) + '\n');
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (err) { throw new BadConfig(`cannot read ${file}: ${(err as Error).message}`); }
  try { return JSON.parse(text); } catch (err) { throw new BadConfig(`${file} is not valid JSON: ${(err as Error).message}`); }
}

/** Load a checkpoint folder. */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const mj = await readJson(path.join(dir, 'model.json')) as ModelJson;
  if (mj?.format !== CHECKPOINT_FORMAT) throw new BadConfig(`${dir}/model.json is not a ${CHECKPOINT_FORMAT} checkpoint`);
  if (mj.version > CHECKPOINT_VERSION) throw new BadConfig(`${dir}: checkpoint version ${mj.version} is newer than this code reads (${CHECKPOINT_VERSION})`);
  const binFile = path.join(dir, mj.weightsFile ?? 'weights.bin');
  const bin = await readFile(binFile);
  const model = TransformerLM.fromWeights(mj.config, unpack(bin, mj.weights, binFile));
  const opt = async (name: string) => ((await exists(path.join(dir, name))) ? readJson(path.join(dir, name)) : null);
  return {
    model,
    modelJson: { ...mj, config: model.config },
    tokenizer: await opt('tokenizer.json'),
    trainConfig: await opt('config.json'),
    metadata: (await opt('metadata.json')) as CheckpointMetadata | null,
  };
}

/** The optimizer state saved with a checkpoint, as named tensors (caller disposes), or null. */
export async function loadOptimizerState(dir: string): Promise<NamedTensor[] | null> {
  const jf = path.join(dir, 'optimizer.json');
  if (!(await exists(jf))) return null;
  const j = await readJson(jf) as { weights: WeightEntry[] };
  const binFile = path.join(dir, 'optimizer.bin');
  const vals = unpack(await readFile(binFile), j.weights, binFile);
  return j.weights.map(e => ({ name: e.name, tensor: tf.tensor(vals.get(e.name)!, e.shape) }));
}
