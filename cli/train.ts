/**
 * `colloquy train`: train a token-level RL agent (ppo-kl or kl-budget) on a dialog env, over the
 * wire (`--server ws://…`) or in process (`--local`, the default without --server). Writes the run
 * folder: config.json, metrics.jsonl, samples.jsonl (transcripts) and checkpoint/ (resumable).
 */
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { BadConfig } from '../core/errors.ts';
import type { VectorEnv } from '../env/core.ts';
import { initBackend, BACKENDS, type BackendChoice } from '../models/backend.ts';
import { loadConfig } from '../core/config.ts';
import { ALGOS, KlBudgetConfigSchema, PpoKlConfigSchema, resolveAgentConfig, type Algo } from '../configs/agents/schema.ts';
import { PROJECT_ROOT, defaultModelDir } from '../core/paths.ts';
import { METRICS as M } from '../agents/metrics.ts';
import { helpText, parseCommandLine, type CommandSpec } from './args.ts';
import { loadCheckpoint } from '../models/checkpoint.ts';
import type { TransformerLM } from '../models/lm.ts';
import { ConservativeReference, ModelReference, type ReferencePolicy } from '../agents/imitation/reference.ts';
import { loadEnsemble } from '../agents/imitation/imitators.ts';
import type { ReferenceSpec } from '../agents/rl/policy-file.ts';

/** The command line: flags of config fields take their check and help from the agent config schema. */
export const TRAIN_COMMAND: CommandSpec = {
  command: 'colloquy train',
  usage: '--algo ppo-kl|kl-budget [options]',
  summary: 'Trains a token-level RL agent with KL control to the base model on a dialog env (default TeacherStudent-v0), N dialogs in parallel, and writes metrics.jsonl, samples.jsonl and checkpoints to the run folder. The agent config file is read first (fields: configs/agents/schema.ts); --set and the flags override it.',
  schema: PpoKlConfigSchema,
  // The defaults shown are ppo-kl's (configs/agents/ppo-kl.json).
  defaults: () => loadConfig(PpoKlConfigSchema, path.join(PROJECT_ROOT, 'configs', 'agents', 'ppo-kl.json')),
  set: 'kl.target=6',
  flags: [
    { name: 'algo', type: 'string', choices: [...ALGOS, 'batch-kl'], metavar: 'ALGO', describe: `${ALGOS.join(' | ')} (default: the config's, else ppo-kl); batch-kl: see colloquy train --algo batch-kl --help` },
    { name: 'config', type: 'string', metavar: 'FILE', describe: 'agent config (default configs/agents/<algo>.json)' },
    { name: 'server', type: 'string', metavar: 'URL', describe: 'train against a Colloquy server (ws://host:port/v1/env)' },
    { name: 'token', type: 'string', metavar: 'T', describe: 'bearer token for --server (default $COLLOQUY_TOKEN)' },
    { name: 'local', type: 'boolean', describe: 'run the env in this process (the default without --server)' },
    { name: 'model', type: 'string', metavar: 'DIR', describe: 'the base model (KL prior; default: fetched from --server, else data/models/base)' },
    { name: 'reference', type: 'string', metavar: 'SPEC', describe: 'KL reference: base (default), model:DIR (another LM checkpoint), or conservative:DIR (the conservative reference of an imitator ensemble folder; renormalised over the vocabulary for kl-budget); recorded in checkpoint/agent.json so that eval rebuilds it' },
    { name: 'out', type: 'string', metavar: 'DIR', describe: 'run folder (default runs/<algo>-<time>)' },
    { name: 'resume', type: 'boolean', describe: 'continue the run in --out from its checkpoint' },
    { name: 'steps', field: 'steps' },
    { name: 'minutes', field: 'minutes' },
    { name: 'updates', field: 'updates' },
    { name: 'num-envs', field: 'numEnvs' },
    { name: 'seed', field: 'seed' },
    { name: 'kwargs', field: 'env.kwargs', note: 'merged into the config\'s, e.g. \'{"reward":"jaques"}\'' },
    { name: 'backend', type: 'string', choices: BACKENDS, metavar: 'NAME', describe: `TensorFlow.js backend: ${BACKENDS.join(', ')} (default auto: the GPU backend when present)` },
    { name: 'no-progress', type: 'boolean', describe: 'log lines instead of a progress bar' },
    { name: 'curves', type: 'string', metavar: 'DIR', describe: 'print a run\'s learning curves and write DIR/learning-curves.svg (no training)' },
  ],
  footer: `algorithms:
  ppo-kl      PPO on a trainable copy of the base LM + value head; reward − β·KL (k1 | k3 | exact),
              β fixed or adaptive (Ziegler et al.); γ per dialog turn, GAE λ over tokens
  kl-budget   Cohen et al. (2024): a KL budget per episode, the policy a mixture of a learned
              proposal and the base policy solved per token to a KL target; PPO (γ = 1, clip 0.1)
  batch-kl    offline, from logged chats (--data FILE.jsonl): see colloquy train --algo batch-kl --help`,
};

/** The `algo` of a config file, when it names one (then it picks the schema). */
function fileAlgo(file: string): Algo | undefined {
  try {
    const a = (JSON.parse(readFileSync(file, 'utf8')) as { algo?: unknown }).algo;
    return (ALGOS as readonly unknown[]).includes(a) ? a as Algo : undefined;
  } catch { return undefined; } // unreadable: loadConfig says why
}

export async function run(argv: string[]): Promise<number> {
  // batch-kl learns offline from logged chats, with its own options (cli/train-batch-kl.ts).
  if (argv.some((a, i) => a === '--algo=batch-kl' || (a === '--algo' && argv[i + 1] === 'batch-kl'))) return (await import('./train-batch-kl.ts')).run(argv);
  const cl = parseCommandLine(TRAIN_COMMAND, argv);
  if (cl.help) { console.log(helpText(TRAIN_COMMAND)); return 0; }
  const values = cl.values as {
    algo?: Algo; config?: string; server?: string; token?: string; local?: boolean; model?: string; reference?: string; out?: string; resume?: boolean;
    backend?: BackendChoice; 'no-progress'?: boolean; curves?: string;
  };
  if (values.curves) {
    const { writeCurves } = await import('../agents/rl/curves.ts');
    console.log(await writeCurves(path.resolve(values.curves)));
    console.log(`train: learning curves in ${path.join(path.resolve(values.curves), 'learning-curves.svg')}`);
    return 0;
  }
  if (values.server && values.local) throw new BadConfig('give either --server or --local');

  // ---- config: file (default per algo) ← --set ← flags, validated once with the algo's schema
  const file = values.config ?? path.join(PROJECT_ROOT, 'configs', 'agents', `${values.algo ?? 'ppo-kl'}.json`);
  const algo: Algo = values.algo ?? fileAlgo(file) ?? 'ppo-kl';
  const schema = algo === 'kl-budget' ? KlBudgetConfigSchema : PpoKlConfigSchema;
  const raw = loadConfig(schema, file, { ...cl.overrides(schema), algo });
  const config = resolveAgentConfig(raw, algo);

  const info = await initBackend(values.backend ?? 'auto');
  console.log(`train: ${config.algo}, TensorFlow.js backend ${info.name} (${info.tfBackend}${info.features.length ? `, ${info.features.join(', ')}` : ''})`);

  // ---- the base model: given, fetched from the server, or the local default
  const { loadDialogModel } = await import('../env/dialog-model.ts');
  const token = values.token ?? process.env.COLLOQUY_TOKEN;
  let baseDir: string;
  if (values.model) baseDir = path.resolve(values.model);
  else if (values.server) {
    const { fetchModel } = await import('../models/remote.ts');
    const host = values.server.replace(/^wss?:\/\//, '').replace(/[^\w.-]+/g, '_');
    baseDir = path.join(PROJECT_ROOT, 'data', 'models', 'remote', host);
    const r = await fetchModel(values.server, baseDir, token ? { token } : {});
    console.log(`train: base model from ${values.server} in ${baseDir} (${r.downloaded} files downloaded, ${r.reused} reused)`);
  } else baseDir = typeof config.env.kwargs.model === 'string' ? path.resolve(config.env.kwargs.model) : defaultModelDir();
  if (!existsSync(path.join(baseDir, 'model.json'))) throw new BadConfig(`no base model at ${baseDir}; run 'colloquy pretrain' (or pass --model DIR)`);
  const { lm: base, tokenizer } = await loadDialogModel(baseDir);

  const ref = await klReference(values.reference ?? 'base', config.algo);

  // ---- envs: N dialogs, autoreset in the same step (every step is a real step)
  let envs: VectorEnv<unknown, unknown>;
  if (values.server) {
    const { connectVectorEnv } = await import('../agents/client.ts');
    envs = await connectVectorEnv(values.server, { env: config.env.id, kwargs: config.env.kwargs, numEnvs: config.numEnvs, autoresetMode: 'same-step', ...(token ? { token } : {}) });
  } else {
    const { makeVec } = await import('../env/index.ts');
    const kwargs = values.model ? { ...config.env.kwargs, model: baseDir } : config.env.kwargs;
    envs = makeVec(config.env.id, { numEnvs: config.numEnvs, kwargs, autoresetMode: 'same-step' });
  }

  const out = path.resolve(values.out ?? path.join(PROJECT_ROOT, 'runs', `${config.algo}-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  const ctx = {
    envs, base, baseDir, tokenizer, out, resume: values.resume === true, ...ref.ctx,
    progressBar: values['no-progress'] ? false : undefined,
    // The base folder may be re-pretrained later: its weights' hash says which model a run used.
    meta: { backend: info.name, server: values.server ?? null, argv, baseModelSha256: createHash('sha256').update(readFileSync(path.join(baseDir, 'weights.bin'))).digest('hex') },
  };
  console.log(`train: run folder ${out}`);
  try {
    const res = config.algo === 'ppo-kl'
      ? await (await import('../agents/rl/ppo-kl.ts')).trainPpoKl(config, ctx)
      : await (await import('../agents/rl/kl-budget.ts')).trainKlBudget(config, ctx);
    const last = res.history[res.history.length - 1];
    const { writeCurves } = await import('../agents/rl/curves.ts');
    await writeCurves(out);
    console.log(`train: ${res.updates} updates, ${res.envSteps} env steps in ${(res.seconds / 60).toFixed(1)} min${res.stoppedBy === 'minutes' ? ' (stopped by --minutes before the budget of --steps)' : ''}; last reward ${last?.[M.rewardMean]?.toFixed(3) ?? '-'}, KL ${last?.[M.klExact]?.toFixed(2) ?? '-'}; checkpoint ${res.checkpoint}`);
  } finally {
    await envs.close();
    ref.dispose();
  }
  return 0;
}

/** The KL reference of --reference, with the description checkpoint/agent.json records. */
async function klReference(spec: string, algo: Algo): Promise<{ ctx: { reference?: ReferencePolicy | TransformerLM; referenceSpec?: ReferenceSpec }; dispose: () => void }> {
  const i = spec.indexOf(':');
  const kind = i < 0 ? spec : spec.slice(0, i), dir = i < 0 ? '' : path.resolve(spec.slice(i + 1));
  if (kind === 'base' && !dir) return { ctx: {}, dispose: () => {} };
  if (kind === 'model' && dir) {
    const m = (await loadCheckpoint(dir)).model;
    const reference = new ModelReference(m, `model:${path.basename(dir)}`);
    return { ctx: { reference, referenceSpec: { kind: 'model', dir, name: reference.name } }, dispose: () => m.dispose() };
  }
  if (kind === 'conservative' && dir) {
    const ens = await loadEnsemble(dir);
    const normalise = algo === 'kl-budget';
    const reference = new ConservativeReference(ens.models, ens.file.plausible, undefined, { normalise });
    return { ctx: { reference, referenceSpec: { kind: 'conservative', ensemble: dir, members: [...ens.file.plausible], normalise, name: reference.name } }, dispose: () => ens.dispose() };
  }
  throw new BadConfig(`--reference ${spec}: expected base, model:DIR or conservative:DIR`);
}
