// GELU in the LM and the native kernels (for imported GPT-2-family models), and models/hf.ts's own
// parts: safetensors both ways, the GPT-2 export read back by the importer, Colloquy's added tokens
// appended to a tokenizer that lacks them, and the coded errors for what cannot be imported. (That
// transformers loads the export with the same log-probs is tested in Python: clients/python/tests/test_hf_*.py.)
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { gelu, geluRows } from '../../models/lm-ops.ts';
import { loadNative, setNativeEnabled } from '../../models/native.ts';
import { TransformerLM } from '../../models/lm.ts';
import { BpeTokenizer } from '../../models/tokenizer.ts';
import { lmConfigOfGpt2, loadHfGpt2, readSafetensors, toHfGpt2, writeSafetensors } from '../../models/hf.ts';
import { ColloquyError } from '../../core/errors.ts';
import { Rng } from '../../core/rng.ts';

const rng = new Rng(11);
const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => s * rng.normal());
const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!)); return m; };
const dirs: string[] = [];
const tmp = () => { const d = mkdtempSync(path.join(os.tmpdir(), 'colloquy-hf-')); dirs.push(d); return d; };
afterAll(() => { setNativeEnabled(true); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function erfRef(x: number): number { // float64 series / continued fraction, independent of lm-ops' fit
  let s = 0, t = x, n = 0;
  if (Math.abs(x) < 3) { while (Math.abs(t) > 1e-17 * Math.abs(s) || n === 0) { s += t / (2 * n + 1); n++; t *= -x * x / n; } return 2 / Math.sqrt(Math.PI) * s; }
  return Math.sign(x) * (1 - Math.exp(-x * x) / (Math.abs(x) * Math.sqrt(Math.PI)) * (1 - 1 / (2 * x * x) + 3 / (4 * x ** 4)));
}
const REF = {
  gelu_new: (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
  gelu: (v: number) => 0.5 * v * (1 + erfRef(v / Math.SQRT2)),
};

function geluValueAndGrad(x: Float32Array, dy: Float32Array, kind: 'gelu_new' | 'gelu'): { y: number[]; g: number[] } {
  return tf.tidy(() => {
    const xt = tf.tensor2d(x, [x.length / 4, 4]);
    const y = Array.from(gelu(xt, kind).dataSync());
    const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(gelu(a as tf.Tensor2D, kind), tf.tensor2d(dy, [x.length / 4, 4]))))(xt);
    return { y, g: Array.from(g.dataSync()) };
  });
}

describe('GELU', () => {
  const x = Float32Array.from([...rand(200, 2), -6, -3, 0, 3, 6, 1e-3, -1e-3, 8]);
  const dy = rand(x.length);
  for (const kind of ['gelu_new', 'gelu'] as const) {
    it(`${kind}: values match a float64 reference and gradients match finite differences, on the JS and native paths`, () => {
      for (const native of [false, true]) {
        if (native && !loadNative().addon?.geluForward) continue;
        setNativeEnabled(native);
        const { y, g } = geluValueAndGrad(x, dy, kind);
        expect(maxAbs(y, Array.from(x, REF[kind]))).toBeLessThan(2e-6);
        const h = 1e-3;
        const fd = Array.from(x, (v, i) => dy[i]! * (REF[kind](v + h) - REF[kind](v - h)) / (2 * h));
        expect(maxAbs(g, fd)).toBeLessThan(1e-4);
      }
      setNativeEnabled(true);
    });
  }

  it('the native addon computes what the JS path computes', () => {
    const n = loadNative().addon;
    if (!n?.geluForward) return; // an addon built before GELU: the JS path is used
    for (const [kind, code] of [['gelu_new', 0], ['gelu', 1]] as const) {
      const a = new Float32Array(x.length), b = new Float32Array(x.length);
      n.geluForward(x, x.length, code, a);
      geluRows(x, kind, b);
      expect(maxAbs(a, b)).toBeLessThan(1e-6);
    }
    expect(() => n.geluForward!(x, x.length, 2, new Float32Array(x.length))).toThrow(/kind/);
    expect(() => n.geluForward!(x, x.length + 1, 0, new Float32Array(x.length))).toThrow();
  });

  it('an LM with GELU: the KV-cached session gives the full forward pass\'s log-probs, and training moves the loss', () => {
    for (const activation of ['gelu_new', 'gelu'] as const) {
      const m = TransformerLM.create({ vocabSize: 50, dModel: 16, nLayers: 2, nHeads: 2, dFF: 24, contextLength: 32, activation, initStd: 0.3 }, 5);
      const prefix = [1, 7, 3, 9], cont = [4, 8, 2, 6, 5];
      const full = m.sequenceLogProbs([prefix], [cont])[0]!;
      const s = m.startSession([prefix]);
      const cached: number[] = [];
      for (const t of cont) { cached.push(s.nextLogProbs()[0]![t]!); s.append([t]); }
      s.dispose();
      expect(maxAbs(full, cached)).toBeLessThan(1e-4);
      const relu = TransformerLM.fromWeights({ ...m.config, activation: 'relu' }, m.weightValues());
      expect(maxAbs(relu.sequenceLogProbs([prefix], [cont])[0]!, full)).toBeGreaterThan(1e-3); // the activation is really used
      relu.dispose();
      const tokens = Int32Array.from({ length: 2 * 9 }, (_, i) => (i * 7 + 3) % 50);
      const before = m.evalLoss({ tokens, batchSize: 2, seqLength: 8 });
      const opt = tf.train.adam(0.01);
      for (let k = 0; k < 5; k++) tf.tidy(() => { opt.minimize(() => m.loss({ tokens, batchSize: 2, seqLength: 8 }), false, m.variables); });
      expect(m.evalLoss({ tokens, batchSize: 2, seqLength: 8 })).toBeLessThan(before - 0.05);
      opt.dispose();
      m.dispose();
    }
  });
});

describe('safetensors', () => {
  it('writes float32 with an 8-byte-aligned header and reads F32, F16 and BF16', () => {
    const a = rand(6), b = rand(4);
    const buf = writeSafetensors([{ name: 'a', shape: [2, 3], data: a }, { name: 'b', shape: [4], data: b }]);
    const n = Number(buf.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const back = readSafetensors(buf);
    expect(Array.from(back.get('a')!.data)).toEqual(Array.from(a));
    expect(back.get('a')!.shape).toEqual([2, 3]);
    // F16 1.5, -2 and BF16 of 3.0 written by hand.
    const hdr = JSON.stringify({ h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, bf: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] } });
    const body = Buffer.from([0x00, 0x3e, 0x00, 0xc0, 0x40, 0x40]);
    const f = Buffer.concat([Buffer.alloc(8), Buffer.from(hdr), body]);
    f.writeBigUInt64LE(BigInt(hdr.length), 0);
    const r = readSafetensors(f);
    expect(Array.from(r.get('h')!.data)).toEqual([1.5, -2]);
    expect(Array.from(r.get('bf')!.data)).toEqual([3]);
    expect(() => readSafetensors(Buffer.from([1, 2, 3]))).toThrow(ColloquyError);
  });
});

function tokenizer(): BpeTokenizer {
  return BpeTokenizer.train(['Teacher: Do you see it?\n\nStudent: I do not, sorry.', 'the cat sat on the mat', 'you do see'], { vocabSize: 300 });
}

function writeHfDir(files: Map<string, Buffer>): string {
  const d = tmp();
  for (const [name, bytes] of files) writeFileSync(path.join(d, name), bytes);
  return d;
}

describe('import of an export', () => {
  it('gives back the same model (sinusoids become the learned table), its activation and its log-probs', async () => {
    const tok = tokenizer();
    const m = TransformerLM.create({ vocabSize: tok.vocabSize, dModel: 16, nLayers: 2, nHeads: 4, dFF: 20, contextLength: 24, positional: 'sinusoidal', tieEmbeddings: false, activation: 'gelu_new', initStd: 0.3 }, 2);
    const dir = writeHfDir(toHfGpt2(m, tok));
    const { model, tokenizer: t2, addedTokens } = await loadHfGpt2(dir);
    expect(addedTokens).toEqual([]);
    expect(model.config).toMatchObject({ dModel: 16, nLayers: 2, nHeads: 4, dFF: 20, contextLength: 24, positional: 'learned', tieEmbeddings: false, activation: 'gelu_new' });
    expect(t2.encode('Teacher: Do you\n\nStudent:')).toEqual(tok.encode('Teacher: Do you\n\nStudent:'));
    const ids = tok.encode('the cat sat on the mat you do see');
    expect(maxAbs(model.sequenceLogProbs([ids.slice(0, 1)], [ids.slice(1)])[0]!, m.sequenceLogProbs([ids.slice(0, 1)], [ids.slice(1)])[0]!)).toBeLessThan(1e-5);
    model.dispose(); m.dispose();
  });

  it('appends <|pad|> and the turn markers to a tokenizer without them, embedded as the mean of their pieces', async () => {
    const tok = tokenizer();
    const m = TransformerLM.create({ vocabSize: tok.vocabSize, dModel: 8, nLayers: 1, nHeads: 2, dFF: 8, contextLength: 16 }, 4);
    const files = toHfGpt2(m, tok);
    const j = JSON.parse(files.get('tokenizer.json')!.toString()) as { added_tokens: { id: number; content: string }[]; model: { vocab: Record<string, number> } };
    // A GPT-2-like tokenizer: only <|endoftext|> added. Drop the other three (ids 1..3) by moving the last three tokens into their ids.
    const V = tok.vocabSize;
    const moved = Object.entries(j.model.vocab).filter(([, id]) => id >= V - 3);
    const vocab: Record<string, number> = {};
    for (const [t, id] of Object.entries(j.model.vocab)) if (id !== 1 && id !== 2 && id !== 3 && id < V - 3) vocab[t] = id;
    moved.forEach(([t], k) => { vocab[t] = k + 1; });
    j.model.vocab = vocab;
    j.added_tokens = j.added_tokens.filter(t => t.id === 0);
    const cfg = JSON.parse(files.get('config.json')!.toString()) as Record<string, unknown>;
    cfg.vocab_size = V - 3;
    const w = readSafetensors(files.get('model.safetensors')!);
    const wte = w.get('transformer.wte.weight')!;
    const newWte = new Float32Array((V - 3) * 8);
    const old = tok.toJSON().model.vocab;
    for (const [t, id] of Object.entries(vocab)) newWte.set(wte.data.subarray(old[t]! * 8, (old[t]! + 1) * 8), id * 8);
    w.set('transformer.wte.weight', { name: 'transformer.wte.weight', shape: [V - 3, 8], data: newWte });
    const d = tmp();
    writeFileSync(path.join(d, 'config.json'), JSON.stringify(cfg));
    writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(j));
    writeFileSync(path.join(d, 'model.safetensors'), writeSafetensors([...w.values()]));
    const { model, tokenizer: t2, addedTokens } = await loadHfGpt2(d);
    expect(addedTokens).toEqual(['<|pad|>', '\n\nStudent:', '\n\nTeacher:']);
    expect(model.config.vocabSize).toBe(V);
    expect([t2.special.pad, t2.special.student, t2.special.teacher]).toEqual([V - 3, V - 2, V - 1]);
    const E = model.weightValues().get('tok_emb')!;
    const pieces = t2.encodeOrdinary('\n\nStudent:');
    const mean = new Float32Array(8);
    for (const id of pieces) for (let k = 0; k < 8; k++) mean[k] += E[id * 8 + k]! / pieces.length;
    expect(maxAbs(E.subarray((V - 2) * 8, (V - 1) * 8), mean)).toBeLessThan(1e-6);
    model.dispose(); m.dispose();
  });
});

describe('what cannot be imported', () => {
  it('other architectures and GPT-2 options get BAD_CONFIG naming what is missing', () => {
    const err = (cfg: Record<string, unknown>) => { try { lmConfigOfGpt2(cfg); } catch (e) { return e as ColloquyError; } throw new Error('no error'); };
    const llama = err({ model_type: 'llama' });
    expect(llama.code).toBe('BAD_CONFIG');
    expect(llama.message).toMatch(/model_type 'llama' is not supported: .*rotary position embeddings.*RMSNorm/);
    expect(llama.details?.missing).toContain('RMSNorm');
    expect(err({ model_type: 'my_lm' }).message).toMatch(/only GPT-2-family/);
    const g = { model_type: 'gpt2', vocab_size: 10, n_positions: 8, n_embd: 8, n_layer: 1, n_head: 2 };
    expect(err({ ...g, activation_function: 'silu' }).message).toMatch(/activation 'silu'/);
    expect(err({ ...g, scale_attn_by_inverse_layer_idx: true }).message).toMatch(/inverse layer index/);
    expect(lmConfigOfGpt2(g)).toMatchObject({ activation: 'gelu_new', dFF: 32, tieEmbeddings: true });
  });

  it('a folder without safetensors weights, or whose weights lack a tensor, is a coded error', async () => {
    const tok = tokenizer();
    const m = TransformerLM.create({ vocabSize: tok.vocabSize, dModel: 8, nLayers: 1, nHeads: 2, dFF: 8, contextLength: 16 }, 4);
    const files = toHfGpt2(m, tok);
    m.dispose();
    const d = tmp();
    mkdirSync(d, { recursive: true });
    writeFileSync(path.join(d, 'config.json'), files.get('config.json')!);
    writeFileSync(path.join(d, 'tokenizer.json'), files.get('tokenizer.json')!);
    writeFileSync(path.join(d, 'pytorch_model.bin'), 'pickle');
    await expect(loadHfGpt2(d)).rejects.toThrow(/no model.safetensors \(pytorch_model.bin is a pickle/);
    const w = [...readSafetensors(files.get('model.safetensors')!).values()].filter(t => t.name !== 'transformer.ln_f.bias');
    writeFileSync(path.join(d, 'model.safetensors'), writeSafetensors(w));
    await expect(loadHfGpt2(d)).rejects.toThrow(/lack 'ln_f.bias'/);
  });
});
