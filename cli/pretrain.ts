/**
 * `colloquy pretrain`: train the tokenizer (unless resuming) and the base language model on
 * teacher–student dialogs, with a progress bar, validation perplexity on held-out dialogs every
 * epoch, and a resumable checkpoint (model.json + weights + tokenizer + config + metadata +
 * optimizer state). Also exports `ensureBaseModel`, which `npm start` calls.
 *
 * Without a data dir (no --data-dir, no $COLLOQUY_DATA_DIR, no ../shared/data) the corpora of the
 * config that need one (mathdial, dailydialog, bridge) are left out and it trains on the shipped corpus,
 * saying so; a corpus asked for by name (--corpus, --set train.corpus) is never dropped.
 */
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { initBackend, BACKENDS, type BackendChoice } from '../models/backend.ts';
import { corpusNeedsDataDir, resolveDataDir } from '../corpora/readers.ts';
import { pretrain, readModelFile, DEFAULT_MODEL_CONFIG, type PretrainOptions } from '../models/pretrain.ts';
import { DEFAULT_MODEL_DIR } from '../core/paths.ts';
import { ModelFileSchema } from '../configs/models/schema.ts';
import { helpText, parseCommandLine, type CommandSpec } from './args.ts';

export { ensureBaseModel, type EnsureBaseModelOptions } from '../models/pretrain.ts';

/** The command line: flags of config fields take their check and help from ModelFileSchema. */
export const PRETRAIN_COMMAND: CommandSpec = {
  command: 'colloquy pretrain',
  summary: `Trains the byte-level BPE tokenizer and the base transformer LM, then writes a checkpoint folder. The model config file is read first (default ${path.relative(process.cwd(), DEFAULT_MODEL_CONFIG)}; fields: configs/models/schema.ts); --set and the flags override it.`,
  schema: ModelFileSchema,
  defaults: () => readModelFile(undefined),
  set: 'model.dModel=64',
  flags: [
    { name: 'corpus', field: 'train.corpus', metavar: 'LIST' },
    { name: 'data-dir', type: 'string', metavar: 'DIR', describe: 'data folder (default $COLLOQUY_DATA_DIR or ../shared/data; without one, the corpora that need it are left out and the shipped corpus is used)' },
    { name: 'out', type: 'string', metavar: 'DIR', describe: `checkpoint folder (default ${path.relative(process.cwd(), DEFAULT_MODEL_DIR) || DEFAULT_MODEL_DIR})` },
    { name: 'config', type: 'string', metavar: 'FILE', describe: `model + training config (default ${path.relative(process.cwd(), DEFAULT_MODEL_CONFIG)})` },
    { name: 'minutes', field: 'train.minutes' },
    { name: 'epochs', field: 'train.epochs' },
    { name: 'batch-size', field: 'train.batchSize' },
    { name: 'seq-length', field: 'train.seqLength' },
    { name: 'lr', field: 'train.learningRate' },
    { name: 'vocab-size', field: 'tokenizer.vocabSize' },
    { name: 'seed', field: 'train.seed' },
    { name: 'threads', field: 'train.threads' },
    { name: 'resume', type: 'boolean', describe: 'continue the run in --out (weights, optimizer state, step, tokenizer)' },
    { name: 'backend', type: 'string', choices: BACKENDS, metavar: 'NAME', describe: `TensorFlow.js backend: ${BACKENDS.join(', ')} (default auto)` },
    { name: 'no-progress', type: 'boolean', describe: 'log lines instead of a progress bar' },
  ],
};

/** Corpora read from the data dir (the others are shipped or named files). */
const needsDataDir = corpusNeedsDataDir;

/** A corpus list without the corpora that need a data dir (`shipped` when none is left); null when nothing is dropped. */
export function corpusWithoutDataDir(spec: string): string | null {
  const names = spec.split(',').map(s => s.trim()).filter(Boolean);
  if (!names.some(needsDataDir)) return null;
  const kept = names.filter(n => !needsDataDir(n));
  return kept.length ? kept.join(',') : 'shipped';
}

export async function run(argv: string[]): Promise<number> {
  const cl = parseCommandLine(PRETRAIN_COMMAND, argv);
  if (cl.help) { console.log(helpText(PRETRAIN_COMMAND)); return 0; }
  const values = cl.values as { 'data-dir'?: string; out?: string; config?: string; resume?: boolean; backend?: BackendChoice; 'no-progress'?: boolean };
  const out = path.resolve(values.out ?? DEFAULT_MODEL_DIR);
  const configFile = values.config ? path.resolve(values.config) : undefined;
  const overrides = cl.overrides() as NonNullable<PretrainOptions['overrides']>;
  const dataDir = resolveDataDir(values['data-dir']);
  if (dataDir === null && overrides.train?.corpus === undefined) {
    // The config's corpora (a resumed run's own config); keep those that need no data dir.
    const saved = path.join(out, 'config.json');
    const corpus = values.resume && existsSync(saved)
      ? String((JSON.parse(readFileSync(saved, 'utf8')) as { train?: { corpus?: unknown } }).train?.corpus ?? '')
      : readModelFile(configFile).train.corpus;
    const use = corpusWithoutDataDir(corpus);
    if (use !== null) {
      console.log(`pretrain: no data dir (--data-dir, $COLLOQUY_DATA_DIR, ../shared/data): training on '${use}' instead of '${corpus}'`);
      overrides.train = { ...overrides.train, corpus: use };
    }
  }
  const info = await initBackend(values.backend ?? 'auto');
  console.log(`pretrain: TensorFlow.js backend ${info.name} (${info.tfBackend}${info.features.length ? ', ' + info.features.join(', ') : ''}), tfjs ${info.tfjsVersion}`);
  await pretrain({
    out, configFile, overrides, dataDir,
    resume: values.resume === true,
    progressBar: values['no-progress'] ? false : undefined,
  });
  return 0;
}
