/**
 * `colloquy train --algo batch-kl --data FILE.jsonl`: offline KL-control Q-learning (Ψ-learning,
 * Way Off-Policy) from logged chats, e.g. the output of `colloquy export`. Writes the run folder
 * (config.json, metrics.jsonl, checkpoint/); the checkpoint is an LM checkpoint whose sampling is
 * the learnt policy, so `colloquy eval --agent checkpoint:RUN` and hosted agents run it as is.
 * See agents/batch-kl.ts. (Also runnable directly: node bin/run.mjs cli/train-batch-kl.ts ...)
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, BACKENDS, type BackendChoice } from '../models/backend.ts';
import { loadConfig } from '../core/config.ts';
import { BatchKlConfigSchema } from '../configs/agents/batch-kl.ts';
import { trainBatchKl } from '../agents/batch-kl.ts';
import { METRICS as M, UPDATE_KEY } from '../agents/metrics.ts';
import { helpText, parseCommandLine, reportError, type CommandSpec } from './args.ts';
import { PROJECT_ROOT } from '../core/paths.ts';

/** The command line: flags of config fields take their check and help from BatchKlConfigSchema. */
export const BATCH_KL_COMMAND: CommandSpec = {
  command: 'colloquy train --algo batch-kl',
  usage: '--data FILE.jsonl [options]',
  summary: 'Offline learning from logged chats (Jaques et al. 2019, "Way Off-Policy"): token-level KL-control Q-learning to the base model (Ψ-learning; target = min over M dropout samples of each sample\'s scalar target; the utterance\'s reward, z-scored by the run\'s statistics, on each of its tokens; γ per turn). The result is an LM checkpoint whose softmax is the learnt policy. A --config file is read first (fields: configs/agents/batch-kl.ts); --set and the flags override it.',
  schema: BatchKlConfigSchema,
  set: 'rewardOn=last-token',
  flags: [
    { name: 'algo', type: 'string', choices: ['batch-kl'], describe: 'batch-kl (this command)' },
    { name: 'data', field: 'data', path: true, metavar: 'FILE', note: 'required' },
    { name: 'model', field: 'base', path: true, metavar: 'DIR' },
    { name: 'out', field: 'out', path: true, metavar: 'DIR' },
    { name: 'config', type: 'string', metavar: 'FILE', describe: 'JSON config (fields of configs/agents/batch-kl.ts)' },
    { name: 'steps', field: 'steps' },
    { name: 'kl-coef', field: 'klCoef', metavar: 'C' },
    { name: 'gamma', field: 'gamma', metavar: 'G' },
    { name: 'reward-key', field: 'rewardKey', metavar: 'K' },
    { name: 'reward-norm', field: 'rewardNorm' },
    { name: 'reward-offset', field: 'rewardOffset' },
    { name: 'kl-term', field: 'klTerm' },
    { name: 'lr', field: 'learningRate' },
    { name: 'samples', field: 'targetSamples', metavar: 'M' },
    { name: 'seed', field: 'seed' },
    { name: 'backend', type: 'string', choices: BACKENDS, metavar: 'NAME', describe: `TensorFlow.js backend: ${BACKENDS.join(', ')} (default auto)` },
  ],
};

export async function run(argv: string[]): Promise<number> {
  const cl = parseCommandLine(BATCH_KL_COMMAND, argv);
  if (cl.help) { console.log(helpText(BATCH_KL_COMMAND)); return 0; }
  const values = cl.values as { config?: string; backend?: BackendChoice };
  const cfg = loadConfig(BatchKlConfigSchema, values.config, cl.overrides());
  const info = await initBackend(values.backend ?? 'auto');
  console.log(`batch-kl: TensorFlow.js backend ${info.name}`);
  const r = await trainBatchKl(cfg, {
    defaultBase: path.join(PROJECT_ROOT, 'data', 'models', 'base'),
    log: line => console.log(line),
    onMetrics: m => console.log(`batch-kl: step ${m[UPDATE_KEY]} td_loss ${m[M.tdLoss].toFixed(4)} q ${m[M.qMean].toFixed(3)} KL(π‖p) ${m[M.kl].toFixed(4)} entropy ${m[M.policyEntropy].toFixed(3)} (${m[M.elapsedSeconds].toFixed(0)} s)`),
  });
  console.log(`batch-kl: ${r.steps} steps in ${r.seconds.toFixed(1)} s; policy checkpoint ${path.relative(process.cwd(), r.checkpoint) || r.checkpoint} (evaluate: colloquy eval --agent checkpoint:${path.relative(process.cwd(), r.out) || r.out})`);
  return 0;
}

// `node bin/run.mjs cli/train-batch-kl.ts ...` runs it directly.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  run(process.argv.slice(2)).then(code => { process.exitCode = code; }, err => { process.exitCode = reportError(err, process.argv.includes('--debug')); });
}
