/**
 * `colloquy pretrain`: train the tokenizer (unless resuming) and the base language model on
 * teacher–student dialogs, with a progress bar, validation perplexity on held-out dialogs every
 * epoch, and a resumable checkpoint (model.json + weights + tokenizer + config + metadata +
 * optimizer state). Also exports `ensureBaseModel`, which `npm start` calls.
 */
import { parseArgs } from 'node:util';
import path from 'node:path';
import { BadConfig } from '../core/errors.ts';
import { initBackend, BACKENDS, type BackendChoice } from '../models/backend.ts';
import { resolveDataDir } from '../corpora/readers.ts';
import { pretrain, DEFAULT_MODEL_CONFIG, type PretrainOptions } from '../models/pretrain.ts';
import { DEFAULT_MODEL_DIR } from '../core/paths.ts';
import type { TrainConfig } from '../configs/models/schema.ts';

export { ensureBaseModel, type EnsureBaseModelOptions } from '../models/pretrain.ts';

const USAGE = `usage: colloquy pretrain [options]

Trains the byte-level BPE tokenizer and the base transformer LM, then writes a checkpoint folder.

options:
  --corpus LIST        comma-separated corpora: shipped, mathdial, dailydialog[:split], chat:FILE.jsonl
                       (default from the config: mathdial,shipped)
  --data-dir DIR       data folder (default $COLLOQUY_DATA_DIR or ../shared/data)
  --out DIR            checkpoint folder (default ${path.relative(process.cwd(), DEFAULT_MODEL_DIR) || DEFAULT_MODEL_DIR})
  --config FILE        model + training config (default ${path.relative(process.cwd(), DEFAULT_MODEL_CONFIG)})
  --minutes X          wall-clock budget in minutes (0: none; default from the config: 10)
  --epochs X           passes over the training tokens (default from the config)
  --batch-size N       sequences per step
  --seq-length N       tokens per sequence
  --lr X               peak learning rate
  --vocab-size N       tokenizer vocabulary size (default from the config: 4000)
  --seed N             seed of initialisation and batch order
  --threads N          threads computing gradients (data-parallel; default from the config: 2)
  --resume             continue the run in --out (weights, optimizer state, step, tokenizer)
  --backend NAME       TensorFlow.js backend: ${BACKENDS.join(', ')} (default auto)
  --no-progress        log lines instead of a progress bar
  -h, --help           this help`;

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x)) throw new BadConfig(`--${name} must be a number, got '${v}'`);
  return x;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      corpus: { type: 'string' }, 'data-dir': { type: 'string' }, out: { type: 'string' }, config: { type: 'string' },
      minutes: { type: 'string' }, epochs: { type: 'string' }, 'batch-size': { type: 'string' }, 'seq-length': { type: 'string' },
      lr: { type: 'string' }, 'vocab-size': { type: 'string' }, seed: { type: 'string' }, threads: { type: 'string' }, resume: { type: 'boolean' },
      backend: { type: 'string' }, 'no-progress': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try { parsed = parse(argv); } catch (err) { console.error(`colloquy pretrain: ${(err as Error).message}\n\n${USAGE}`); return 2; }
  const { values } = parsed;
  if (values.help) { console.log(USAGE); return 0; }
  const backend = (values.backend ?? 'auto') as BackendChoice;
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new BadConfig(`--backend must be one of ${BACKENDS.join(', ')}`);
  const info = await initBackend(backend);
  console.log(`pretrain: TensorFlow.js backend ${info.name} (${info.tfBackend}${info.features.length ? ', ' + info.features.join(', ') : ''}), tfjs ${info.tfjsVersion}`);

  const train: Partial<TrainConfig> = {};
  if (values.corpus) train.corpus = values.corpus;
  const set = <K extends keyof TrainConfig>(k: K, v: TrainConfig[K] | undefined) => { if (v !== undefined) train[k] = v; };
  set('minutes', num('minutes', values.minutes));
  set('epochs', num('epochs', values.epochs));
  set('batchSize', num('batch-size', values['batch-size']));
  set('seqLength', num('seq-length', values['seq-length']));
  set('learningRate', num('lr', values.lr));
  set('seed', num('seed', values.seed));
  set('threads', num('threads', values.threads));
  const overrides: PretrainOptions['overrides'] = { train };
  const vocab = num('vocab-size', values['vocab-size']);
  if (vocab !== undefined) overrides.tokenizer = { vocabSize: vocab };
  await pretrain({
    out: path.resolve(values.out ?? DEFAULT_MODEL_DIR),
    configFile: values.config ? path.resolve(values.config) : undefined,
    overrides,
    dataDir: resolveDataDir(values['data-dir']),
    resume: values.resume === true,
    progressBar: values['no-progress'] ? false : undefined,
  });
  return 0;
}
