/**
 * `colloquy train --algo batch-kl --data FILE.jsonl`: offline KL-control Q-learning (Ψ-learning,
 * Way Off-Policy) from logged chats, e.g. the output of `colloquy export`. Writes the run folder
 * (config.json, metrics.jsonl, checkpoint/); the checkpoint is an LM checkpoint whose sampling is
 * the learnt policy, so `colloquy eval --agent checkpoint:RUN` and hosted agents run it as is.
 * See agents/batch-kl.ts. (Also runnable directly: node bin/run.mjs cli/train-batch-kl.ts ...)
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BadConfig } from '../core/errors.ts';
import { initBackend, BACKENDS, type BackendChoice } from '../models/backend.ts';
import { loadConfig } from '../core/config.ts';
import { BatchKlConfigSchema, trainBatchKl, type BatchKlConfig } from '../agents/batch-kl.ts';
import { PROJECT_ROOT } from '../core/paths.ts';

const USAGE = `usage: colloquy train --algo batch-kl --data FILE.jsonl [options]

Offline learning from logged chats (Jaques et al. 2019, "Way Off-Policy"): token-level KL-control
Q-learning to the base model (Ψ-learning; target = min over M dropout samples of a target network;
the utterance's reward on each of its tokens; γ per turn). The result is an LM checkpoint whose
softmax is the learnt policy.

options:
  --data FILE          logged chats: colloquy export output (or chat JSONL with rewards) (required)
  --model DIR          base model: KL prior and starting point (default $COLLOQUY_BASE_MODEL or data/models/base)
  --out DIR            run folder (default runs/batch-kl-<time>)
  --config FILE        JSON config (fields of BatchKlConfigSchema in agents/batch-kl.ts)
  --steps N            gradient steps (default 500)
  --kl-coef C          rewards enter as r/C (default 0.5)
  --gamma G            discount per teacher turn (default 0.9)
  --reward-key K       "total" or a logged reward component (default total)
  --reward-offset X    r <- (r - X) * scale (default 0)
  --lr X               learning rate (default 3e-4)
  --samples M          dropout samples of the target (default 5)
  --seed N             seed
  --set JSON           any config fields
  --backend NAME       ${BACKENDS.join(', ')} (default auto)
  -h, --help           this help`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      algo: { type: 'string' }, data: { type: 'string' }, model: { type: 'string' }, out: { type: 'string' }, config: { type: 'string' },
      steps: { type: 'string' }, 'kl-coef': { type: 'string' }, gamma: { type: 'string' }, 'reward-key': { type: 'string' },
      'reward-offset': { type: 'string' }, lr: { type: 'string' }, samples: { type: 'string' }, seed: { type: 'string' },
      set: { type: 'string' }, backend: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help) { console.log(USAGE); return 0; }
  if (values.algo !== undefined && values.algo !== 'batch-kl') throw new BadConfig(`this command trains --algo batch-kl, not '${values.algo}'`);
  const o: Record<string, unknown> = {};
  if (values.set) {
    try { Object.assign(o, JSON.parse(values.set) as Record<string, unknown>); } catch (err) { throw new BadConfig(`--set is not JSON: ${(err as Error).message}`); }
  }
  const num = (flag: string, v: string | undefined, key: keyof BatchKlConfig) => {
    if (v === undefined) return;
    const x = Number(v);
    if (!Number.isFinite(x)) throw new BadConfig(`--${flag} must be a number, got '${v}'`);
    o[key] = x;
  };
  if (values.data) o.data = path.resolve(values.data);
  if (values.model) o.base = path.resolve(values.model);
  if (values.out) o.out = path.resolve(values.out);
  if (values['reward-key']) o.rewardKey = values['reward-key'];
  num('steps', values.steps, 'steps'); num('kl-coef', values['kl-coef'], 'klCoef'); num('gamma', values.gamma, 'gamma');
  num('reward-offset', values['reward-offset'], 'rewardOffset'); num('lr', values.lr, 'learningRate');
  num('samples', values.samples, 'targetSamples'); num('seed', values.seed, 'seed');
  const cfg = loadConfig(BatchKlConfigSchema, values.config, o);
  const backend = (values.backend ?? 'auto') as BackendChoice;
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new BadConfig(`--backend must be one of ${BACKENDS.join(', ')}`);
  const info = await initBackend(backend);
  console.log(`batch-kl: TensorFlow.js backend ${info.name}`);
  const r = await trainBatchKl(cfg, {
    defaultBase: path.join(PROJECT_ROOT, 'data', 'models', 'base'),
    log: line => console.log(line),
    onMetrics: m => console.log(`batch-kl: step ${m.step} td_loss ${m['losses/td_loss'].toFixed(4)} q ${m['charts/q_mean'].toFixed(3)} KL(π‖p) ${m['objective/kl'].toFixed(4)} entropy ${m['policy/entropy'].toFixed(3)} (${m['charts/seconds'].toFixed(0)} s)`),
  });
  console.log(`batch-kl: ${r.steps} steps in ${r.seconds.toFixed(1)} s; policy checkpoint ${path.relative(process.cwd(), r.checkpoint) || r.checkpoint} (evaluate: colloquy eval --agent checkpoint:${path.relative(process.cwd(), r.out) || r.out})`);
  return 0;
}

// `node bin/run.mjs cli/train-batch-kl.ts ...` runs it directly.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  run(process.argv.slice(2)).then(code => { process.exitCode = code; }, err => { console.error(err instanceof BadConfig ? `batch-kl: ${err.message}` : err); process.exitCode = 1; });
}
