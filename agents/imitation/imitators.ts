/**
 * Imitators of the demonstrator, trained only on transcripts sampled from D (maximum likelihood on
 * D's tokens; see fit.ts), and the ensemble folder that holds them.
 *
 * - Member 0 is the single imitator — the usual "Bayesian" base policy: all of D's training
 *   transcripts, seed `seed`.
 * - Members 1 … K−1 differ by seed and (with `bootstrap`) by a bootstrap resample of the transcripts.
 * - Every member's mean NLL per D-token on held-out D transcripts gives the posterior weights
 *   w_k ∝ exp(−s·NLL_k) and the plausible set M = {k : w_k ≥ α·max w} (ensemble.ts).
 *
 * Folder: `ensemble.json` (members, NLLs, weights, plausible set, settings) and `member-<k>/`
 * checkpoints (each with the shared tokenizer, so any of them loads on its own as a model).
 */
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BadConfig } from '../../core/errors.ts';
import type { LMConfig, TrainConfig } from '../../configs/models/schema.ts';
import { TransformerLM } from '../../models/lm.ts';
import { loadCheckpoint, saveCheckpoint } from '../../models/checkpoint.ts';
import { ensemblePosterior, type EnsembleSettings } from './ensemble.ts';
import { bootstrapResample, fitMasked, maskedNll, type MaskedTranscript } from './fit.ts';
import { ConservativeReference, ModelReference } from './reference.ts';

export const ENSEMBLE_FORMAT = 'colloquy-imitator-ensemble';

export interface ImitatorMember {
  dir: string;
  seed: number;
  bootstrap: boolean;
  heldOutNll: number;
  steps: number;
  seconds: number;
  /** This member is D itself (the realizable case: `ImitatorSpec.demonstratorDir`). */
  demonstrator?: boolean;
}

export interface EnsembleFile {
  format: typeof ENSEMBLE_FORMAT;
  version: 1;
  members: ImitatorMember[];
  settings: EnsembleSettings;
  weights: number[];
  plausible: number[];
  /** Index of the single imitator (the base policy). */
  single: number;
  trainTranscripts: number;
  heldOutTranscripts: number;
  /** Held-out NLL per token of D on the same transcripts (its entropy rate there). */
  demonstratorHeldOutNll?: number;
}

export interface ImitatorSpec {
  /** Ensemble folder to write. */
  out: string;
  /** Members (K ≥ 1; member 0 is the single imitator). */
  k: number;
  /** Resample D's transcripts for members 1…K−1. */
  bootstrap: boolean;
  /** Seed of member 0; member k uses seed + k. */
  seed: number;
  /** Architecture (vocabulary and BOS from the tokenizer); ignored with `initDir`. */
  model: Partial<LMConfig>;
  /** A checkpoint (of the shared tokenizer's vocabulary) every member starts from instead of a fresh `model`. */
  initDir?: string;
  train: Partial<TrainConfig>;
  settings: EnsembleSettings;
  /** Shared tokenizer (the tokenizer.json object) and its vocabulary / BOS. */
  tokenizer: { json: unknown; vocabSize: number; bos: number };
  /** D, to record its own held-out NLL beside the members'. */
  demonstrator?: TransformerLM;
  /**
   * D's checkpoint folder: D joins the ensemble as its last member (`member-d`, its held-out NLL
   * its weight) — the realizable case of Cohen, Hutter & Nanda, in which D is one of the models
   * the posterior ranges over. Needs `demonstrator`.
   */
  demonstratorDir?: string;
  log?: (line: string) => void;
}

/** Train the K imitators on D's transcripts and write the ensemble folder. */
export async function trainImitators(spec: ImitatorSpec, train: readonly MaskedTranscript[], heldOut: readonly MaskedTranscript[]): Promise<EnsembleFile> {
  if (!(spec.k >= 1)) throw new BadConfig('imitators: k must be ≥ 1');
  const log = spec.log ?? (() => {});
  await mkdir(spec.out, { recursive: true });
  const members: ImitatorMember[] = [];
  for (let k = 0; k < spec.k; k++) {
    const seed = spec.seed + k;
    const boot = spec.bootstrap && k > 0;
    const data = boot ? bootstrapResample(train, seed * 1009 + 7) : train;
    const model = spec.initDir ? (await loadCheckpoint(spec.initDir)).model
      : TransformerLM.create({ ...spec.model, vocabSize: spec.tokenizer.vocabSize, bosTokenId: spec.tokenizer.bos }, seed);
    if (model.config.vocabSize !== spec.tokenizer.vocabSize) {
      model.dispose();
      throw new BadConfig(`imitators: ${spec.initDir} has a vocabulary of ${model.config.vocabSize}, the shared tokenizer ${spec.tokenizer.vocabSize}`);
    }
    const name = `imitator ${k}${boot ? ' (bootstrap)' : ''}`;
    log(`${name}: ${model.numParams.toLocaleString('en')} parameters${spec.initDir ? ` from ${spec.initDir}` : ''}, ${data.length} transcripts, seed ${seed}`);
    const fit = await fitMasked(model, data, { train: { ...spec.train, seed }, heldOut, log, name });
    const dir = path.join(spec.out, `member-${k}`);
    await saveCheckpoint(model, dir, {
      tokenizer: spec.tokenizer.json,
      metadata: { role: 'imitator', member: k, seed, bootstrap: boot, heldOutNll: fit.heldOutNll, step: fit.steps, trainSeconds: fit.seconds, history: fit.history },
    });
    model.dispose();
    members.push({ dir: `member-${k}`, seed, bootstrap: boot, heldOutNll: fit.heldOutNll, steps: fit.steps, seconds: fit.seconds });
  }
  const demonstratorNll = spec.demonstrator ? maskedNll(spec.demonstrator, heldOut).nll : undefined;
  if (spec.demonstratorDir) {
    if (demonstratorNll === undefined) throw new BadConfig('imitators: demonstratorDir needs the demonstrator model');
    const dir = path.join(spec.out, 'member-d');
    await mkdir(dir, { recursive: true });
    // The checkpoint without optimizer state: what loadCheckpoint reads.
    for (const f of await readdir(spec.demonstratorDir)) {
      if (!f.startsWith('optimizer')) await copyFile(path.join(spec.demonstratorDir, f), path.join(dir, f));
    }
    members.push({ dir: 'member-d', seed: -1, bootstrap: false, heldOutNll: demonstratorNll, steps: 0, seconds: 0, demonstrator: true });
    log(`imitators: D itself joins the ensemble as member ${members.length - 1} (held-out NLL ${demonstratorNll.toFixed(3)})`);
  }
  const { weights, members: plausible } = ensemblePosterior(members.map(m => m.heldOutNll), spec.settings);
  const file: EnsembleFile = {
    format: ENSEMBLE_FORMAT, version: 1, members, settings: spec.settings, weights, plausible, single: 0,
    trainTranscripts: train.length, heldOutTranscripts: heldOut.length,
    ...(demonstratorNll !== undefined ? { demonstratorHeldOutNll: demonstratorNll } : {}),
  };
  await writeFile(path.join(spec.out, 'ensemble.json'), JSON.stringify(file, null, 2) + '\n');
  log(`imitators: held-out NLL ${members.map(m => m.heldOutNll.toFixed(3)).join(', ')}${file.demonstratorHeldOutNll !== undefined ? ` (D itself: ${file.demonstratorHeldOutNll.toFixed(3)})` : ''}; ` +
    `weights ${weights.map(w => w.toFixed(3)).join(', ')}; plausible set {${plausible.join(', ')}} (α = ${spec.settings.alpha}, s = ${spec.settings.posteriorScale})`);
  return file;
}

export interface LoadedEnsemble {
  dir: string;
  file: EnsembleFile;
  models: TransformerLM[];
  /** The single imitator (member `file.single`). */
  single: TransformerLM;
  /** The conservative reference over the plausible set. */
  conservative: ConservativeReference;
  singleReference: ModelReference;
  dispose(): void;
}

export async function isEnsemble(dir: string): Promise<boolean> {
  return existsSync(path.join(dir, 'ensemble.json'));
}

/**
 * Load an ensemble folder. `settings` recomputes the weights and plausible set from the stored
 * NLLs (to try another α without retraining).
 */
export async function loadEnsemble(dir: string, settings?: Partial<EnsembleSettings>): Promise<LoadedEnsemble> {
  const file = JSON.parse(await readFile(path.join(dir, 'ensemble.json'), 'utf8')) as EnsembleFile;
  if (file.format !== ENSEMBLE_FORMAT) throw new BadConfig(`${dir}/ensemble.json is not a ${ENSEMBLE_FORMAT} file`);
  if (settings && (settings.alpha !== undefined || settings.posteriorScale !== undefined)) {
    const s = { ...file.settings, ...settings };
    const post = ensemblePosterior(file.members.map(m => m.heldOutNll), s);
    Object.assign(file, { settings: s, weights: post.weights, plausible: post.members });
  }
  const models: TransformerLM[] = [];
  for (const m of file.members) models.push((await loadCheckpoint(path.join(dir, m.dir))).model);
  const single = models[file.single]!;
  return {
    dir, file, models, single,
    conservative: new ConservativeReference(models, file.plausible),
    singleReference: new ModelReference(single, 'imitator'),
    dispose: () => { for (const m of models) m.dispose(); },
  };
}
