/**
 * The trusted demonstrator D, with known probabilities.
 *
 * In "don't do anything I mightn't do" the trusted policy is a person, whose probabilities nobody
 * knows. Here D is a teacher language model trained on MathDial (real teacher–student tutoring
 * dialogs), larger or longer-trained than the base; the imitators see only transcripts sampled from
 * D. So KL(π ‖ D) of any agent is exact, token by token, on its own transcripts.
 *
 * - `trainDemonstrator`: D shares the base model's tokenizer (every model of an experiment must
 *   read the same token ids). It is trained by the pretraining code itself (`pretrain`, resuming
 *   from a step-0 checkpoint that holds D's architecture and the shared tokenizer), on the config's
 *   corpora (default MathDial), or starts from the base's weights and trains on (`init: "base"`).
 * - `sampleDemonstrator`: D plays the teacher in the environment (TeacherStudent-v0 with its
 *   student) for N dialogs with fixed seeds; each transcript keeps its exact token ids and the
 *   positions of D's tokens (the imitators' training targets).
 */
import { copyFile, mkdir, writeFile, readFile } from 'node:fs/promises';
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { BadConfig } from '../../core/errors.ts';
import { makeVec, type Kwargs } from '../../env/registry.ts';
import type { VectorEnv } from '../../env/core.ts';
import { loadDialogTokenizer } from '../../env/dialog-model.ts';
import { defaultModelDir } from '../../core/paths.ts';
import type { LMConfig } from '../../configs/models/schema.ts';
import type { TrainConfig } from '../../configs/models/schema.ts';
import { TransformerLM } from '../../models/lm.ts';
import { isCheckpoint, loadCheckpoint, saveCheckpoint } from '../../models/checkpoint.ts';
import { pretrain, type PretrainResult } from '../../models/pretrain.ts';
import { ModelAgent } from '../eval/agents.ts';
import { evaluate } from '../eval/evaluate.ts';
import type { MaskedTranscript } from './fit.ts';

export interface DemonstratorSpec {
  /** Folder of the base model whose tokenizer D shares (and whose weights D starts from with `init: "base"`). */
  baseDir: string;
  /** D's checkpoint folder. */
  out: string;
  /** `scratch`: a fresh model of `model`'s architecture; `base`: a copy of the base's weights. */
  init: 'scratch' | 'base';
  /** Architecture overrides (scratch); vocabulary and BOS come from the tokenizer. */
  model: Partial<LMConfig>;
  /** Pretraining settings (corpus default `mathdial`). */
  train: Partial<TrainConfig>;
  dataDir: string | null;
  log?: (line: string) => void;
}

/** Train D (or reuse the checkpoint in `out` when it is complete and `reuse` is set). */
export async function trainDemonstrator(spec: DemonstratorSpec, opts: { reuse?: boolean } = {}): Promise<{ dir: string; result: PretrainResult | null }> {
  const log = spec.log ?? (() => {});
  const out = path.resolve(spec.out);
  if (opts.reuse && existsSync(path.join(out, 'demonstrator.json')) && (await isCheckpoint(out))) {
    log(`demonstrator: reusing ${out}`);
    return { dir: out, result: null };
  }
  const tokFile = path.join(spec.baseDir, 'tokenizer.json');
  if (!existsSync(tokFile)) throw new BadConfig(`demonstrator: no tokenizer at ${tokFile} (the base model must exist first)`);
  const tokenizer = JSON.parse(await readFile(tokFile, 'utf8')) as unknown;
  const tok = loadDialogTokenizer(spec.baseDir);
  let model: TransformerLM;
  if (spec.init === 'base') {
    model = (await loadCheckpoint(spec.baseDir)).model;
  } else {
    model = TransformerLM.create({ ...spec.model, vocabSize: tok.vocabSize, bosTokenId: tok.special.endOfText }, spec.train.seed ?? 1);
  }
  const C = model.config.contextLength;
  const train = { corpus: 'mathdial', seqLength: Math.min(256, C), ...spec.train };
  // A step-0 checkpoint with D's architecture and the shared tokenizer; `pretrain --resume` trains it.
  await mkdir(out, { recursive: true });
  await saveCheckpoint(model, out, {
    tokenizer,
    trainConfig: { description: 'the demonstrator D', model: model.config, tokenizer: { vocabSize: Math.max(260, tok.vocabSize), minFrequency: 2 }, train },
    metadata: { step: 0, tokensSeen: 0, trainSeconds: 0, role: 'demonstrator' },
  });
  model.dispose();
  log(`demonstrator: training ${out} (${spec.init === 'base' ? 'from the base weights' : 'from scratch'}) on ${train.corpus}`);
  const result = await pretrain({ out, resume: true, overrides: { train }, dataDir: spec.dataDir, log, progressBar: false });
  await writeFile(path.join(out, 'demonstrator.json'), JSON.stringify({
    role: 'demonstrator', baseDir: path.resolve(spec.baseDir), init: spec.init, train, valPerplexity: result.valPerplexity,
    valPerplexityByCorpus: result.valPerplexityByCorpus, steps: result.steps, seconds: result.seconds, numParams: result.numParams,
  }, null, 2) + '\n');
  return { dir: out, result };
}

export interface SampleSpec {
  /** D (a loaded model). */
  demonstrator: TransformerLM;
  /** Env id and kwargs (token mode); the env's base model supplies the tokenizer and the student. */
  env: string;
  kwargs: Kwargs;
  episodes: number;
  seed: number;
  numEnvs: number;
  /** JSONL file of the transcripts (one `{dialog, envSeed, tokens, targets, reward}` per line). */
  out: string;
  /** A vector env to use instead of making one (e.g. a remote one); must have autoreset "disabled". */
  vecEnv?: VectorEnv;
  log?: (line: string) => void;
}

export interface DemoTranscript extends MaskedTranscript { dialog: number; envSeed: number; reward: number }

/** D plays `episodes` dialogs; its transcripts (exact tokens, D's positions as targets) go to `out`. */
export async function sampleDemonstrator(spec: SampleSpec): Promise<DemoTranscript[]> {
  const env = spec.vecEnv ?? makeVec(spec.env, { numEnvs: spec.numEnvs, kwargs: { ...spec.kwargs, actionMode: 'token' }, autoresetMode: 'disabled' });
  const tokenizer = loadDialogTokenizer(typeof spec.kwargs.model === 'string' ? spec.kwargs.model : defaultModelDir());
  const out: DemoTranscript[] = [];
  try {
    const rows = await evaluate({
      env, agent: new ModelAgent(spec.demonstrator, 'demonstrator'), episodes: spec.episodes, seed: spec.seed, tokenizer, transcripts: true,
      log: spec.log,
    });
    for (const r of rows) out.push({ dialog: r.dialog, envSeed: r.envSeed, tokens: r.tokens!, targets: r.agentPositions!, reward: r.reward });
  } finally {
    if (!spec.vecEnv) await env.close();
  }
  await mkdir(path.dirname(path.resolve(spec.out)), { recursive: true });
  await writeFile(spec.out, out.map(t => JSON.stringify(t)).join('\n') + '\n');
  return out;
}

/** Read transcripts written by `sampleDemonstrator`. */
export async function readTranscripts(file: string): Promise<DemoTranscript[]> {
  const out: DemoTranscript[] = [];
  const rl = readline.createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of rl) if (line.trim()) out.push(JSON.parse(line) as DemoTranscript);
  return out;
}

/** Copy the shared tokenizer into a checkpoint folder that lacks one. */
export async function copyTokenizer(fromDir: string, toDir: string): Promise<void> {
  await copyFile(path.join(fromDir, 'tokenizer.json'), path.join(toDir, 'tokenizer.json'));
}
