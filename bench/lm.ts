/**
 * bench/lm: speed of the base language model, TensorFlow.js against the same architecture in
 * PyTorch on the CPU, in the same run.
 *
 *   node bin/run.mjs bench/lm.ts [--config configs/models/base.json] [--steps 5] [--tokens 64]
 *                                [--threads 2] [--model DIR] [--env-steps 400] [--no-env] [--no-torch] [--json]
 *
 * Prints, in one run:
 * - training tokens/s (batch × seqLength from the config, Adam step included; on one thread and
 *   data-parallel on `--threads` threads, as `colloquy pretrain` trains);
 * - KV-cached sampling tokens/s at batch 1 and 16 (prompt of 16 tokens, then `--tokens` sampled
 *   tokens per row, temperature 1);
 * - env token-steps/s of TeacherStudent-v0 with 16 dialogs in process (a vector env; student
 *   replies from the base checkpoint `--model DIR`, default data/models/base, batched across
 *   dialogs; a scripted teacher says one fixed 12-token utterance and hands over, so a student
 *   reply follows every turn);
 * - with the project's native kernels built (native/), the same figures on the wasm backend's own
 *   kernels, as a baseline;
 * - the same architecture in PyTorch 2.13 (`bench/reference/lm_reference.py`, torch 2.13.0+cpu in
 *   the bench venv `.venv-bench`, made on first use from the machine's local package index by
 *   bench/reference/venv.ts; skipped with a message when that fails) with 1 and `--threads`
 *   intra-op threads, and the ratios TF.js / PyTorch.
 */
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../models/backend.ts';
import { TransformerLM } from '../models/lm.ts';
import { readModelFile } from '../models/pretrain.ts';
import { GradientWorkers } from '../models/parallel.ts';
import { setNativeEnabled } from '../models/native.ts';
import { Rng } from '../core/rng.ts';
import { makeVec } from '../env/index.ts';
import { loadDialogModel } from '../env/dialog-model.ts';
import { defaultModelDir } from '../core/paths.ts';
import { existsSync } from 'node:fs';
import { benchPython } from './reference/venv.ts';

const { values } = parseArgs({
  options: {
    config: { type: 'string' }, steps: { type: 'string' }, tokens: { type: 'string' }, threads: { type: 'string' },
    'batch-size': { type: 'string' }, 'seq-length': { type: 'string' }, 'vocab-size': { type: 'string' },
    'no-torch': { type: 'boolean' }, json: { type: 'boolean' }, backend: { type: 'string' },
    model: { type: 'string' }, 'env-steps': { type: 'string' }, 'no-env': { type: 'boolean' },
  },
});

const file = readModelFile(values.config);
const vocabSize = Number(values['vocab-size'] ?? file.tokenizer.vocabSize);
const B = Number(values['batch-size'] ?? file.train.batchSize);
const T = Number(values['seq-length'] ?? file.train.seqLength);
const steps = Number(values.steps ?? 5);
const sampleTokens = Number(values.tokens ?? 64);
const threads = Number(values.threads ?? 2);
const promptLength = 16;
const sampleBatches = [1, 16];

const info = await initBackend((values.backend ?? 'auto') as 'auto');
tf.enableProdMode();
const model = TransformerLM.create({ ...file.model, vocabSize }, 1);
const log = (s: string) => { if (!values.json) console.log(s); };
const load = () => os.loadavg().map(x => x.toFixed(2)).join(' ');
log(`bench/lm: load average ${load()} on ${os.cpus().length} cores (other processes slow every figure below)`);
log(`bench/lm: ${model.numParams.toLocaleString('en')} parameters, d=${model.config.dModel} L=${model.config.nLayers} H=${model.config.nHeads} ff=${model.config.dFF} V=${vocabSize} C=${model.config.contextLength}; ` +
  `train batch ${B}×${T}; TF.js ${info.tfjsVersion} backend ${info.name}${info.features.length ? ` (${info.features.join(', ')})` : ''}`);

// ---- TF.js training (one thread, then data-parallel on `threads` threads) and KV-cached sampling,
// with the project's native kernels (native/) and then, as a baseline in the same run, with the
// wasm backend's own kernels only (`setNativeEnabled(false)`, one thread).
const rng = new Rng(1);
const opt = tf.train.adam(1e-3);
const nativeOn = info.features.some(f => f.startsWith('native-gemm'));

async function measureTrain(nThreads: number): Promise<number> {
  const workers = await GradientWorkers.start(nThreads, model, info.name);
  const trainStep = async () => {
    const tokens = Int32Array.from({ length: B * (T + 1) }, () => rng.int(vocabSize));
    const { grads } = await workers.lossAndGrads(model, { tokens, batchSize: B, seqLength: T });
    const norm = tf.tidy(() => Math.sqrt(tf.addN(Object.values(grads).map(g => tf.sum(tf.square(g)))).dataSync()[0]!));
    if (norm > 1) for (const k of Object.keys(grads)) { const g = grads[k]!; grads[k] = tf.mul(g, 1 / norm); g.dispose(); }
    opt.applyGradients(grads as Parameters<typeof opt.applyGradients>[0]);
    tf.dispose(Object.values(grads));
  };
  for (let i = 0; i < 2; i++) await trainStep();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await trainStep();
  const tps = steps * B * T / ((performance.now() - t0) / 1000);
  await workers.close();
  return tps;
}

function measureSample(sb: number): number {
  const once = () => {
    const prompts = Array.from({ length: sb }, () => Array.from({ length: promptLength }, () => rng.int(vocabSize)));
    const s = model.startSession(prompts);
    s.nextLogProbs(); // prefill, not timed
    const t = performance.now();
    s.sample({ maxTokens: sampleTokens, temperature: 1, rng });
    const dt = performance.now() - t;
    s.dispose();
    return dt;
  };
  once();
  // Best of 5: one run is short enough (tens of ms) for a GC pause or a neighbour to double it.
  const dt = Math.min(...Array.from({ length: 5 }, once));
  return sb * sampleTokens / (dt / 1000);
}

const label = nativeOn ? 'tfjs+native' : 'tfjs';
const tfTrain: Record<string, number> = {};
for (const nThreads of [...new Set([1, threads])]) {
  tfTrain[String(nThreads)] = await measureTrain(nThreads);
  log(`  ${label.padEnd(11)} train  ${tfTrain[String(nThreads)]!.toFixed(0).padStart(7)} tokens/s on ${nThreads} thread${nThreads > 1 ? 's' : ''}`);
}
const tfSample: Record<string, number> = {};
for (const sb of sampleBatches) {
  tfSample[String(sb)] = measureSample(sb);
  log(`  ${label.padEnd(11)} sample ${tfSample[String(sb)]!.toFixed(0).padStart(7)} tokens/s at batch ${sb}`);
}
// Baseline: the same model on the wasm backend's own kernels.
let wasmOnly: { train: number; sample: Record<string, number> } | null = null;
if (nativeOn) {
  setNativeEnabled(false);
  try {
    wasmOnly = { train: await measureTrain(1), sample: Object.fromEntries(sampleBatches.map(sb => [String(sb), measureSample(sb)])) };
  } finally {
    setNativeEnabled(true);
  }
  log(`  tfjs-wasm   train  ${wasmOnly.train.toFixed(0).padStart(7)} tokens/s on 1 thread   (wasm kernels only, COLLOQUY_NATIVE=0)`);
  for (const sb of sampleBatches) log(`  tfjs-wasm   sample ${wasmOnly.sample[String(sb)]!.toFixed(0).padStart(7)} tokens/s at batch ${sb}`);
  log(`  native kernels / wasm kernels: train ${(tfTrain['1']! / wasmOnly.train).toFixed(2)}x (1 thread), ` +
    sampleBatches.map(sb => `sample@${sb} ${(tfSample[String(sb)]! / wasmOnly!.sample[String(sb)]!).toFixed(2)}x`).join(', '));
}
opt.dispose();
model.dispose();

// ---- TeacherStudent-v0: env token-steps/s with 16 dialogs
const envSteps: Record<string, number> = {};
let envNote = '';
const envModel = path.resolve(values.model ?? defaultModelDir());
const envCount = 16, envStepCount = Number(values['env-steps'] ?? 400);
if (values['no-env']) envNote = 'skipped (--no-env)';
else if (!existsSync(path.join(envModel, 'model.json'))) envNote = `skipped: no base checkpoint at ${envModel} (run \`colloquy pretrain\` or \`npm start\` once)`;
else {
  const { tokenizer } = await loadDialogModel(envModel);
  const teacher = [...tokenizer.encode(' Can you walk me through how you got that answer?'), tokenizer.special.student];
  const measureEnv = async (): Promise<number> => {
    const envs = makeVec('TeacherStudent-v0', { numEnvs: envCount, kwargs: { model: envModel }, autoresetMode: 'same-step' });
    await envs.reset({ seed: 1 });
    const pos = new Array<number>(envCount).fill(0);
    const act = () => pos.map(p => teacher[p % teacher.length]!);
    const run = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const r = await envs.step(act());
        for (let e = 0; e < envCount; e++) pos[e] = r.terminated[e] || r.truncated[e] ? 0 : pos[e]! + 1;
      }
    };
    await run(40); // warm-up: model load, first replies
    const t0 = performance.now();
    await run(envStepCount);
    const sps = envCount * envStepCount / ((performance.now() - t0) / 1000);
    await envs.close();
    return sps;
  };
  envSteps[label] = await measureEnv();
  log(`  ${label.padEnd(11)} env    ${envSteps[label]!.toFixed(0).padStart(7)} token-steps/s, TeacherStudent-v0 with ${envCount} dialogs (student: ${path.relative(process.cwd(), envModel) || envModel}; a reply every ${teacher.length} teacher tokens)`);
  if (nativeOn) {
    setNativeEnabled(false);
    try { envSteps['tfjs-wasm'] = await measureEnv(); } finally { setNativeEnabled(true); }
    log(`  tfjs-wasm   env    ${envSteps['tfjs-wasm']!.toFixed(0).padStart(7)} token-steps/s   (wasm kernels only)`);
  }
}
if (envNote) log(`  env: ${envNote}`);

// ---- PyTorch reference
interface TorchResult { torch: string; threads: number; params: number; trainTokensPerSec: number; sampleTokensPerSec: Record<string, number> }
let torchRes: TorchResult | null = null;
const torchRuns: TorchResult[] = [];
let torchNote = '';
if (!values['no-torch']) {
  const py = benchPython(log);
  if ('error' in py) {
    torchNote = `PyTorch reference skipped: ${py.error}`;
  } else {
    // Both 1 and `threads` intra-op threads: on a machine shared with other work, OpenMP threads
    // that wait for each other can make 2 threads far slower than 1; the ratios use the faster.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'colloquy-bench-lm-'));
    try {
      for (const nt of [...new Set([1, threads])]) {
        const settings = path.join(dir, `settings-${nt}.json`);
        writeFileSync(settings, JSON.stringify({
          model: { ...file.model, vocabSize }, batchSize: B, seqLength: T, trainSteps: steps, warmupSteps: 2, threads: nt,
          sampleBatches, promptLength, sampleTokens,
        }));
        const r = spawnSync(py.python, [path.resolve('bench/reference/lm_reference.py'), settings], {
          encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(nt), OPENBLAS_NUM_THREADS: String(nt), MKL_NUM_THREADS: String(nt) },
        });
        if (r.status !== 0) { torchNote = `PyTorch reference failed: ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}`; break; }
        torchRuns.push(JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchResult);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    if (torchRuns.length) {
      const best = (f: (r: TorchResult) => number) => torchRuns.reduce((a, r) => (f(r) > f(a) ? r : a));
      const bt = best(r => r.trainTokensPerSec);
      torchRes = {
        torch: bt.torch, threads: bt.threads, params: bt.params, trainTokensPerSec: bt.trainTokensPerSec,
        sampleTokensPerSec: Object.fromEntries(sampleBatches.map(sb => [String(sb), best(r => r.sampleTokensPerSec[String(sb)]!).sampleTokensPerSec[String(sb)]!])),
      };
    }
  }
}

if (torchRes) {
  for (const r of torchRuns) {
    log(`  pytorch train  ${r.trainTokensPerSec.toFixed(0).padStart(7)} tokens/s on ${r.threads} thread${r.threads > 1 ? 's' : ''}   (torch ${r.torch}, ${r.params.toLocaleString('en')} parameters)`);
    for (const sb of sampleBatches) log(`  pytorch sample ${r.sampleTokensPerSec[String(sb)]!.toFixed(0).padStart(7)} tokens/s at batch ${sb} on ${r.threads} thread${r.threads > 1 ? 's' : ''}`);
  }
  log('  ratios against the faster PyTorch setting of each figure:');
  log(`  ratio tfjs/pytorch: train ${Object.entries(tfTrain).map(([k, v]) => `${(v / torchRes!.trainTokensPerSec).toFixed(2)}x (${k} thread${k === '1' ? '' : 's'})`).join(', ')}, ` +
    sampleBatches.map(sb => `sample@${sb} ${(tfSample[String(sb)]! / torchRes!.sampleTokensPerSec[String(sb)]!).toFixed(2)}x`).join(', '));
  const bestTrain = Math.max(...Object.values(tfTrain));
  log(`  best against best: train ${(bestTrain / torchRes.trainTokensPerSec).toFixed(2)}x, ` +
    sampleBatches.map(sb => `sample@${sb} ${(tfSample[String(sb)]! / torchRes!.sampleTokensPerSec[String(sb)]!).toFixed(2)}x`).join(', ') +
    (wasmOnly ? `   (wasm kernels only: train ${(wasmOnly.train / torchRes.trainTokensPerSec).toFixed(2)}x, ` +
      sampleBatches.map(sb => `sample@${sb} ${(wasmOnly!.sample[String(sb)]! / torchRes!.sampleTokensPerSec[String(sb)]!).toFixed(2)}x`).join(', ') + ')' : ''));
} else if (torchNote) log(`  ${torchNote}`);
log(`bench/lm: load average ${load()} at the end`);

if (values.json) {
  console.log(JSON.stringify({
    config: { ...file.model, vocabSize, batchSize: B, seqLength: T }, backend: info,
    tfjs: { native: nativeOn, trainTokensPerSec: tfTrain, sampleTokensPerSec: tfSample },
    tfjsWasmKernelsOnly: wasmOnly ? { trainTokensPerSec: { 1: wasmOnly.train }, sampleTokensPerSec: wasmOnly.sample } : null,
    envTokenStepsPerSec: envSteps, envNote: envNote || undefined,
    pytorch: torchRuns, pytorchBest: torchRes, note: torchNote || undefined,
    loadAverage: os.loadavg(),
    ratio: torchRes ? { train: Object.fromEntries(Object.entries(tfTrain).map(([k, v]) => [k, v / torchRes!.trainTokensPerSec])), sample: Object.fromEntries(sampleBatches.map(sb => [sb, tfSample[String(sb)]! / torchRes!.sampleTokensPerSec[String(sb)]!])) } : null,
  }));
}
