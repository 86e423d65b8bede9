/**
 * Colloquy's language models in the Hugging Face format, both ways.
 *
 * Export (`toHfGpt2`, `exportHfModel`): a Colloquy checkpoint is a stock GPT-2 — learned positions
 * (a sinusoidal table is written as GPT-2's `wpe`), pre-LN blocks, tied embeddings (or `lm_head`),
 * `activation_function` "relu" for Colloquy's own models — so `transformers` loads it with
 * `AutoModelForCausalLM.from_pretrained(DIR)` and computes the same log-probabilities:
 *
 *   config.json              GPT2Config (model_type gpt2, GPT2LMHeadModel)
 *   model.safetensors        float32 weights, written here (no Python involved)
 *   tokenizer.json           the byte-level BPE, the turn markers special tokens
 *   tokenizer_config.json    eos/bos/unk <|endoftext|>, pad <|pad|>, the markers as extra special tokens
 *   generation_config.json   plain sampling from the model (top_k 0: the base policy itself)
 *
 * Parameter map (ours ↔ GPT-2's; both store linear weights [in, out], and the packed q|k|v columns
 * with heads contiguous inside each are the layout of GPT-2's `c_attn`):
 *   tok_emb ↔ wte, pos_emb ↔ wpe, h<l>.ln1 ↔ h.<l>.ln_1, h<l>.attn.qkv ↔ h.<l>.attn.c_attn,
 *   h<l>.attn.out ↔ h.<l>.attn.c_proj, h<l>.ln2 ↔ h.<l>.ln_2, h<l>.mlp.fc ↔ h.<l>.mlp.c_fc,
 *   h<l>.mlp.proj ↔ h.<l>.mlp.c_proj, ln_f ↔ ln_f, out_emb ↔ lm_head (g ↔ weight, b/w ↔ bias/weight).
 *
 * One difference remains by design: past `n_positions` tokens Colloquy slides its window
 * (lm.ts `windowStart`); transformers refuses longer inputs.
 *
 * Import (`importHfModel`): a GPT-2-family folder (config.json, model.safetensors or a sharded
 * index, tokenizer.json) becomes a Colloquy checkpoint; GELU activations (gelu_new / tanh, exact
 * gelu) run in the LM and the native kernels. A tokenizer without Colloquy's added tokens
 * (`<|pad|>` and the two turn markers) gets them appended, their embedding rows the mean of the
 * rows of the BPE pieces they stand for. Other architectures fail with BAD_CONFIG naming what
 * Colloquy's LM lacks for them.
 */
import { mkdir, readFile, rename, writeFile, access } from 'node:fs/promises';
import path from 'node:path';
import { BadConfig } from '../core/errors.ts';
import { END_OF_TEXT, PAD, TURN_STUDENT, TURN_TEACHER } from '../core/markers.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { TransformerLM, sinusoids, type LMConfig } from './lm.ts';
import { BLOCK_PARAMS } from './block.ts';
import { BpeTokenizer, type HfTokenizerJson, type HfAddedToken } from './tokenizer.ts';

/** The files of an export, in the order they are written. */
export const HF_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'] as const;
export type HfFile = (typeof HF_FILES)[number];

// ---------------------------------------------------------------------------------------------
// safetensors: 8-byte little-endian header length, a JSON header, then the raw tensors

export interface NamedArray { name: string; shape: number[]; data: Float32Array }

/** A safetensors file of float32 tensors (header padded with spaces to a multiple of 8 bytes). */
export function writeSafetensors(tensors: NamedArray[], metadata: Record<string, string> = { format: 'pt' }): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new RangeError(`safetensors: ${t.name} has ${t.data.length} values for shape ${t.shape.join('×')}`);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * n] };
    offset += 4 * n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const head = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + head.length + offset);
  out.writeBigUInt64LE(BigInt(head.length), 0);
  head.copy(out, 8);
  let o = 8 + head.length;
  for (const t of tensors) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, o);
    o += t.data.byteLength;
  }
  return out;
}

/** The tensors of a safetensors file as float32 (F32, F16 and BF16 are read; other dtypes fail). */
export function readSafetensors(buf: Buffer, file = 'model.safetensors'): Map<string, NamedArray> {
  if (buf.length < 8) throw new BadConfig(`${file}: too short for a safetensors file`);
  const n = Number(buf.readBigUInt64LE(0));
  if (!(n > 1 && 8 + n <= buf.length)) throw new BadConfig(`${file}: bad safetensors header length ${n}`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try { header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')); } catch { throw new BadConfig(`${file}: the safetensors header is not JSON`); }
  const base = 8 + n;
  const out = new Map<string, NamedArray>();
  for (const [name, h] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = h.data_offsets;
    const count = h.shape.reduce((x, y) => x * y, 1);
    const bytes = buf.subarray(base + b, base + e);
    if (base + e > buf.length) throw new BadConfig(`${file}: tensor ${name} runs past the end of the file`);
    const data = new Float32Array(count);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (h.dtype === 'F32' && bytes.length === 4 * count) for (let i = 0; i < count; i++) data[i] = dv.getFloat32(4 * i, true);
    else if (h.dtype === 'F16' && bytes.length === 2 * count) for (let i = 0; i < count; i++) data[i] = halfToFloat(dv.getUint16(2 * i, true));
    else if (h.dtype === 'BF16' && bytes.length === 2 * count) {
      const u = new Uint32Array(data.buffer);
      for (let i = 0; i < count; i++) u[i] = dv.getUint16(2 * i, true) << 16;
    } else throw new BadConfig(`${file}: tensor ${name} has dtype ${h.dtype} (${bytes.length} bytes for ${count} values); F32, F16 or BF16 are read`);
    out.set(name, { name, shape: h.shape, data });
  }
  return out;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

// ---------------------------------------------------------------------------------------------
// Export

/** Ours → GPT-2's names of one block's parameters (`BLOCK_PARAMS` order). */
const BLOCK_NAMES: Record<(typeof BLOCK_PARAMS)[number], string> = {
  'ln1.g': 'ln_1.weight', 'ln1.b': 'ln_1.bias', 'attn.qkv.w': 'attn.c_attn.weight', 'attn.qkv.b': 'attn.c_attn.bias',
  'attn.out.w': 'attn.c_proj.weight', 'attn.out.b': 'attn.c_proj.bias', 'ln2.g': 'ln_2.weight', 'ln2.b': 'ln_2.bias',
  'mlp.fc.w': 'mlp.c_fc.weight', 'mlp.fc.b': 'mlp.c_fc.bias', 'mlp.proj.w': 'mlp.c_proj.weight', 'mlp.proj.b': 'mlp.c_proj.bias',
};

/** tokenizer.json with every added token special (the turn markers too: one id each, never split). */
export function hfTokenizerJson(tokenizer: BpeTokenizer): HfTokenizerJson {
  const j = tokenizer.toJSON();
  return { ...j, added_tokens: j.added_tokens.map(t => ({ ...t, special: true, normalized: false })) };
}

/** The GPT-2 export of a model and its tokenizer: file name → bytes. */
export function toHfGpt2(model: TransformerLM, tokenizer: BpeTokenizer, source: Record<string, unknown> = {}): Map<HfFile, Buffer> {
  const c = model.config;
  if (tokenizer.vocabSize !== c.vocabSize) throw new BadConfig(`export: the tokenizer has ${tokenizer.vocabSize} tokens, the model ${c.vocabSize}`);
  const w = model.weightValues();
  const tensors: NamedArray[] = [];
  const put = (name: string, shape: number[], data: Float32Array) => tensors.push({ name, shape, data });
  put('transformer.wte.weight', [c.vocabSize, c.dModel], w.get('tok_emb')!);
  put('transformer.wpe.weight', [c.contextLength, c.dModel], c.positional === 'learned' ? w.get('pos_emb')! : sinusoids(c.contextLength, c.dModel));
  const specs = new Map(TransformerLM.paramSpecs(c).map(s => [s.name, s.shape]));
  for (let l = 0; l < c.nLayers; l++) {
    for (const p of BLOCK_PARAMS) put(`transformer.h.${l}.${BLOCK_NAMES[p]}`, specs.get(`h${l}.${p}`)!, w.get(`h${l}.${p}`)!);
  }
  put('transformer.ln_f.weight', [c.dModel], w.get('ln_f.g')!);
  put('transformer.ln_f.bias', [c.dModel], w.get('ln_f.b')!);
  if (!c.tieEmbeddings) put('lm_head.weight', [c.vocabSize, c.dModel], w.get('out_emb')!);

  const sp = tokenizer.special;
  const config = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: c.vocabSize,
    n_positions: c.contextLength,
    n_embd: c.dModel,
    n_layer: c.nLayers,
    n_head: c.nHeads,
    n_inner: c.dFF,
    activation_function: c.activation ?? 'relu',
    resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0,
    layer_norm_epsilon: c.layerNormEps,
    initializer_range: c.initStd,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    use_cache: true,
    tie_word_embeddings: c.tieEmbeddings,
    bos_token_id: c.bosTokenId,
    eos_token_id: sp.endOfText,
    pad_token_id: sp.pad,
    dtype: 'float32',
    colloquy: { turnStudentTokenId: sp.student, turnTeacherTokenId: sp.teacher, positional: c.positional, ...source },
  };
  const tokenizerConfig = {
    ...tokenizer.hfConfig(),
    tokenizer_class: 'PreTrainedTokenizerFast',
    extra_special_tokens: [TURN_STUDENT, TURN_TEACHER],
    model_max_length: c.contextLength,
  };
  const generation = {
    bos_token_id: c.bosTokenId, eos_token_id: sp.endOfText, pad_token_id: sp.pad,
    // No max_length: callers give max_new_tokens (TRL does), and transformers warns on every generate when both are set.
    do_sample: true, temperature: 1.0, top_k: 0, top_p: 1.0,
  };
  const json = (o: unknown) => Buffer.from(JSON.stringify(o, null, 2) + '\n');
  return new Map<HfFile, Buffer>([
    ['config.json', json(config)],
    ['model.safetensors', writeSafetensors(tensors)],
    ['tokenizer.json', Buffer.from(JSON.stringify(hfTokenizerJson(tokenizer)))],
    ['tokenizer_config.json', json(tokenizerConfig)],
    ['generation_config.json', json(generation)],
  ]);
}

/** The export of a checkpoint folder (it must hold a tokenizer.json). */
export async function hfExportOf(checkpointDir: string): Promise<Map<HfFile, Buffer>> {
  const loaded = await loadCheckpoint(checkpointDir);
  try {
    if (!loaded.tokenizer) throw new BadConfig(`${checkpointDir} has no tokenizer.json; a Hugging Face export needs one`);
    const tokenizer = BpeTokenizer.fromJSON(loaded.tokenizer);
    return toHfGpt2(loaded.model, tokenizer, { exportedFrom: path.basename(path.resolve(checkpointDir)), ...(loaded.metadata?.step !== undefined ? { step: loaded.metadata.step } : {}) });
  } finally {
    loaded.model.dispose();
  }
}

/** Write the export of a checkpoint into `outDir` (files renamed into place when written). */
export async function exportHfModel(checkpointDir: string, outDir: string): Promise<{ files: { name: string; bytes: number }[] }> {
  const files = await hfExportOf(checkpointDir);
  await mkdir(outDir, { recursive: true });
  const out: { name: string; bytes: number }[] = [];
  for (const [name, bytes] of files) {
    const tmp = path.join(outDir, `.${name}.partial-${process.pid}`);
    await writeFile(tmp, bytes);
    await rename(tmp, path.join(outDir, name));
    out.push({ name, bytes: bytes.length });
  }
  return { files: out };
}

// ---------------------------------------------------------------------------------------------
// Import

/** What Colloquy's LM lacks for well-known non-GPT-2 architectures (for the error message). */
const MISSING: Record<string, string[]> = {
  llama: ['rotary position embeddings', 'RMSNorm', 'a gated (SwiGLU) MLP', 'grouped-query attention', 'linear layers without bias'],
  mistral: ['rotary position embeddings', 'RMSNorm', 'a gated (SwiGLU) MLP', 'grouped-query attention', 'sliding-window attention'],
  qwen2: ['rotary position embeddings', 'RMSNorm', 'a gated (SwiGLU) MLP', 'grouped-query attention'],
  gemma: ['rotary position embeddings', 'RMSNorm', 'a gated (GeGLU) MLP', 'multi-query attention'],
  phi: ['rotary position embeddings', 'parallel attention and MLP blocks'],
  gpt_neox: ['rotary position embeddings', 'parallel attention and MLP blocks'],
  gptj: ['rotary position embeddings', 'parallel attention and MLP blocks'],
  opt: ['positions offset by 2 (OPT\'s learned positional embedding)', 'separate q/k/v projections'],
  bloom: ['ALiBi position biases', 'embedding layer norm'],
  gpt_neo: ['local attention layers', 'unscaled attention'],
  bert: ['a decoder (BERT is an encoder: bidirectional attention, post-LN)'],
};

const ACTIVATION_OF: Record<string, LMConfig['activation']> = { relu: 'relu', gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', gelu: 'gelu' };

interface Gpt2Config {
  model_type?: string; architectures?: string[];
  vocab_size?: number; n_positions?: number; n_embd?: number; n_layer?: number; n_head?: number; n_inner?: number | null;
  activation_function?: string; layer_norm_epsilon?: number; initializer_range?: number; tie_word_embeddings?: boolean;
  bos_token_id?: number | null; scale_attn_weights?: boolean; scale_attn_by_inverse_layer_idx?: boolean; add_cross_attention?: boolean;
}

/** The Colloquy architecture of a GPT-2 config.json, or BAD_CONFIG naming what is missing. */
export function lmConfigOfGpt2(cfg: Gpt2Config, file = 'config.json'): LMConfig {
  const type = cfg.model_type ?? '(none)';
  if (type !== 'gpt2') {
    const missing = MISSING[type] ?? [`a ${type} implementation (only GPT-2-family models — model_type "gpt2": GPT-2, DistilGPT2 — are imported)`];
    throw new BadConfig(`${file}: model_type '${type}' is not supported: Colloquy's LM lacks ${missing.join(', ')}`, { modelType: type, missing });
  }
  const missing: string[] = [];
  const act = cfg.activation_function ?? 'gelu_new';
  const activation = ACTIVATION_OF[act];
  if (!activation) missing.push(`the activation '${act}' (relu, gelu_new, gelu_pytorch_tanh and gelu are supported)`);
  if (cfg.scale_attn_weights === false) missing.push('unscaled attention (scale_attn_weights: false)');
  if (cfg.scale_attn_by_inverse_layer_idx) missing.push('attention scaled by the inverse layer index (scale_attn_by_inverse_layer_idx)');
  if (cfg.add_cross_attention) missing.push('cross-attention (add_cross_attention)');
  for (const k of ['vocab_size', 'n_positions', 'n_embd', 'n_layer', 'n_head'] as const) {
    if (!Number.isInteger(cfg[k])) missing.push(`an integer ${k}`);
  }
  if (missing.length) throw new BadConfig(`${file}: this GPT-2 config cannot be imported: Colloquy's LM lacks ${missing.join('; ')}`, { modelType: type, missing });
  return TransformerLM.validate({
    vocabSize: cfg.vocab_size!, dModel: cfg.n_embd!, nLayers: cfg.n_layer!, nHeads: cfg.n_head!,
    dFF: cfg.n_inner ?? 4 * cfg.n_embd!, contextLength: cfg.n_positions!, dropout: 0, positional: 'learned',
    tieEmbeddings: cfg.tie_word_embeddings ?? true, layerNormEps: cfg.layer_norm_epsilon ?? 1e-5,
    bosTokenId: cfg.bos_token_id ?? 0, initStd: cfg.initializer_range ?? 0.02,
    ...(activation === 'relu' ? {} : { activation }),
  });
}

async function exists(file: string): Promise<boolean> {
  try { await access(file); return true; } catch { return false; }
}

async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (err) { throw new BadConfig(`cannot read ${file}: ${(err as Error).message}`); }
  try { return JSON.parse(text); } catch (err) { throw new BadConfig(`${file} is not valid JSON: ${(err as Error).message}`); }
}

/** The tensors of a Hugging Face folder: model.safetensors, or the shards a model.safetensors.index.json names. */
async function readHfWeights(dir: string): Promise<Map<string, NamedArray>> {
  const single = path.join(dir, 'model.safetensors');
  if (await exists(single)) return readSafetensors(await readFile(single), single);
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (!(await exists(indexFile))) {
    const bin = await exists(path.join(dir, 'pytorch_model.bin'));
    throw new BadConfig(`${dir}: no model.safetensors${bin ? ' (pytorch_model.bin is a pickle, which Colloquy does not read: save with safe_serialization=True)' : ''}`);
  }
  const index = await readJsonFile(indexFile) as { weight_map?: Record<string, string> };
  const out = new Map<string, NamedArray>();
  for (const shard of new Set(Object.values(index.weight_map ?? {}))) {
    const f = path.join(dir, path.basename(shard));
    for (const [k, v] of readSafetensors(await readFile(f), f)) out.set(k, v);
  }
  return out;
}

export interface ImportResult { model: TransformerLM; tokenizer: BpeTokenizer; addedTokens: string[] }

/** A Colloquy model and tokenizer from a GPT-2-family Hugging Face folder. */
export async function loadHfGpt2(dir: string): Promise<ImportResult> {
  const cfgFile = path.join(dir, 'config.json');
  const base = lmConfigOfGpt2(await readJsonFile(cfgFile) as Gpt2Config, cfgFile);
  const tokFile = path.join(dir, 'tokenizer.json');
  if (!(await exists(tokFile))) throw new BadConfig(`${dir}: no tokenizer.json (save the tokenizer with the model: tokenizer.save_pretrained(DIR))`);
  const tokJson = await readJsonFile(tokFile) as HfTokenizerJson;
  const tensors = await readHfWeights(dir);
  // Keys are "transformer.h.0…" (GPT2LMHeadModel) or "h.0…" (GPT2Model, as the Hub's gpt2 stores them).
  const get = (name: string, shape: number[]): Float32Array => {
    const t = tensors.get(`transformer.${name}`) ?? tensors.get(name);
    if (!t) throw new BadConfig(`${dir}: the weights lack '${name}'`);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) throw new BadConfig(`${dir}: '${name}' has shape [${t.shape}], expected [${shape}]`);
    return t.data;
  };
  const values = new Map<string, Float32Array>();
  const d = base.dModel;
  values.set('tok_emb', get('wte.weight', [base.vocabSize, d]));
  values.set('pos_emb', get('wpe.weight', [base.contextLength, d]));
  const specs = new Map(TransformerLM.paramSpecs(base).map(s => [s.name, s.shape]));
  for (let l = 0; l < base.nLayers; l++) for (const p of BLOCK_PARAMS) values.set(`h${l}.${p}`, get(`h.${l}.${BLOCK_NAMES[p]}`, specs.get(`h${l}.${p}`)!));
  values.set('ln_f.g', get('ln_f.weight', [d]));
  values.set('ln_f.b', get('ln_f.bias', [d]));
  if (!base.tieEmbeddings) {
    const head = tensors.get('lm_head.weight');
    if (!head) throw new BadConfig(`${dir}: tie_word_embeddings is false but the weights lack lm_head.weight`);
    values.set('out_emb', head.data);
  }

  // Colloquy's added tokens, appended when the tokenizer lacks them.
  const addedList: HfAddedToken[] = (tokJson.added_tokens ?? []).map(t => ({ ...t }));
  const ids = new Set([...Object.values(tokJson.model?.vocab ?? {}), ...addedList.map(t => t.id)]);
  if (ids.size !== base.vocabSize) throw new BadConfig(`${dir}: the tokenizer has ${ids.size} tokens but vocab_size is ${base.vocabSize}; Colloquy needs them equal`);
  const have = new Set(addedList.map(t => t.content));
  const appended = [END_OF_TEXT, PAD, TURN_STUDENT, TURN_TEACHER].filter(t => !have.has(t) && !(t in (tokJson.model?.vocab ?? {})));
  let next = base.vocabSize;
  for (const content of appended) addedList.push({ id: next++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  // An <|endoftext|> in the BPE vocabulary (not listed as added) is made an added token.
  const eot = tokJson.model?.vocab?.[END_OF_TEXT];
  if (eot !== undefined && !have.has(END_OF_TEXT)) addedList.push({ id: eot, content: END_OF_TEXT, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizer = BpeTokenizer.fromJSON({ ...tokJson, added_tokens: addedList });
  let config = base;
  if (appended.length) {
    const V = base.vocabSize, V2 = V + appended.length;
    const grow = (m: Float32Array): Float32Array => {
      const out = new Float32Array(V2 * d);
      out.set(m);
      appended.forEach((content, k) => {
        const pieces = tokenizer.encodeOrdinary(content).filter(id => id < V);
        for (const id of pieces) for (let j = 0; j < d; j++) out[(V + k) * d + j] += m[id * d + j]! / pieces.length;
      });
      return out;
    };
    values.set('tok_emb', grow(values.get('tok_emb')!));
    if (!base.tieEmbeddings) values.set('out_emb', grow(values.get('out_emb')!));
    config = { ...base, vocabSize: V2 };
  }
  return { model: TransformerLM.fromWeights(config, values), tokenizer, addedTokens: appended };
}

/** `colloquy import-model`: a Hugging Face folder → a Colloquy checkpoint folder. */
export async function importHfModel(fromDir: string, outDir: string): Promise<{ config: LMConfig; numParams: number; addedTokens: string[] }> {
  const { model, tokenizer, addedTokens } = await loadHfGpt2(fromDir);
  try {
    await saveCheckpoint(model, outDir, {
      tokenizer: tokenizer.toJSON(),
      metadata: { importedFrom: path.resolve(fromDir), format: 'hf-gpt2', addedTokens },
    });
    return { config: model.config, numParams: model.numParams, addedTokens };
  } finally {
    model.dispose();
  }
}
