/**
 * `colloquy train`: train a token-level RL agent (ppo-kl or kl-budget) on a dialog env, over the
 * wire (`--server ws://…`) or in process (`--local`, the default without --server). Writes the run
 * folder: config.json, metrics.jsonl, samples.jsonl (transcripts) and checkpoint/ (resumable).
 */
import { parseArgs } from 'node:util';
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { BadConfig } from '../core/errors.ts';
import type { VectorEnv } from '../env/core.ts';
import { initBackend, BACKENDS, type BackendChoice } from '../models/backend.ts';
import { loadConfig, deepMerge } from '../core/config.ts';
import { ALGOS, KlBudgetConfigSchema, PpoKlConfigSchema, resolveAgentConfig, type Algo } from '../configs/agents/schema.ts';
import { PROJECT_ROOT, defaultModelDir } from '../core/paths.ts';

const USAGE = `usage: colloquy train --algo ppo-kl|kl-budget [options]

Trains a token-level RL agent with KL control to the base model on a dialog env (default
TeacherStudent-v0), N dialogs in parallel, and writes metrics.jsonl, samples.jsonl and checkpoints
to the run folder.

  ppo-kl      PPO on a trainable copy of the base LM + value head; reward − β·KL (k1 | k3 | exact),
              β fixed or adaptive (Ziegler et al.); γ per dialog turn, GAE λ over tokens
  kl-budget   Cohen et al. (2024): a KL budget per episode, the policy a mixture of a learned
              proposal and the base policy solved per token to a KL target; PPO (γ = 1, clip 0.1)
  batch-kl    offline, from logged chats (--data FILE.jsonl): see colloquy train --algo batch-kl --help

options:
  --algo NAME          ${ALGOS.join(' | ')} (default: the config's, else ppo-kl)
  --config FILE        agent config (default configs/agents/<algo>.json)
  --server URL         train against a Colloquy server (ws://host:port/v1/env)
  --token T            bearer token for --server (default $COLLOQUY_TOKEN)
  --local              run the env in this process (the default without --server)
  --model DIR          the base model (KL prior; default: fetched from --server, else data/models/base)
  --out DIR            run folder (default runs/<algo>-<time>)
  --resume             continue the run in --out from its checkpoint
  --minutes X          wall-clock budget (overrides the config)
  --updates N          number of updates (overrides the config)
  --num-envs N         dialogs in parallel (overrides the config)
  --seed N             seed (overrides the config)
  --kwargs JSON        env kwargs merged into the config's (e.g. '{"reward":"jaques"}')
  --set JSON           any config fields, deep-merged (e.g. '{"kl":{"target":6}}')
  --backend NAME       ${BACKENDS.join(', ')} (default auto: the GPU backend when present)
  --no-progress        log lines instead of a progress bar
  --curves DIR         print a run's learning curves and write DIR/learning-curves.svg (no training)
  -h, --help           this help`;

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x)) throw new BadConfig(`--${name} must be a number, got '${v}'`);
  return x;
}

function json(name: string, v: string | undefined): Record<string, unknown> | undefined {
  if (v === undefined) return undefined;
  let x: unknown;
  try { x = JSON.parse(v); } catch (err) { throw new BadConfig(`--${name} is not JSON: ${(err as Error).message}`); }
  if (!x || typeof x !== 'object' || Array.isArray(x)) throw new BadConfig(`--${name} must be a JSON object`);
  return x as Record<string, unknown>;
}

export async function run(argv: string[]): Promise<number> {
  // batch-kl learns offline from logged chats, with its own options (cli/train-batch-kl.ts).
  if (argv.some((a, i) => a === '--algo=batch-kl' || (a === '--algo' && argv[i + 1] === 'batch-kl'))) return (await import('./train-batch-kl.ts')).run(argv);
  const { values } = parseArgs({
    args: argv,
    options: {
      algo: { type: 'string' }, config: { type: 'string' }, server: { type: 'string' }, token: { type: 'string' }, local: { type: 'boolean' },
      model: { type: 'string' }, out: { type: 'string' }, resume: { type: 'boolean' }, minutes: { type: 'string' }, updates: { type: 'string' },
      'num-envs': { type: 'string' }, seed: { type: 'string' }, kwargs: { type: 'string' }, set: { type: 'string' },
      backend: { type: 'string' }, 'no-progress': { type: 'boolean' }, curves: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help) { console.log(USAGE); return 0; }
  if (values.curves) {
    const { writeCurves } = await import('../agents/rl/curves.ts');
    console.log(await writeCurves(path.resolve(values.curves)));
    console.log(`train: learning curves in ${path.join(path.resolve(values.curves), 'learning-curves.svg')}`);
    return 0;
  }
  if (values.server && values.local) throw new BadConfig('give either --server or --local');
  if (values.algo !== undefined && !(ALGOS as readonly string[]).includes(values.algo)) throw new BadConfig(`--algo must be one of ${ALGOS.join(', ')}`);

  // ---- config: file (default per algo) ← CLI overrides, validated once
  const algo0 = values.algo as Algo | undefined;
  const file = values.config ?? path.join(PROJECT_ROOT, 'configs', 'agents', `${algo0 ?? 'ppo-kl'}.json`);
  const overrides: Record<string, unknown> = deepMerge({}, json('set', values.set) ?? {}) as Record<string, unknown>;
  if (values.minutes !== undefined) overrides.minutes = num('minutes', values.minutes);
  if (values.updates !== undefined) overrides.updates = num('updates', values.updates);
  if (values['num-envs'] !== undefined) overrides.numEnvs = num('num-envs', values['num-envs']);
  if (values.seed !== undefined) overrides.seed = num('seed', values.seed);
  const kw = json('kwargs', values.kwargs);
  if (kw) overrides.env = deepMerge(overrides.env ?? {}, { kwargs: kw });
  // Read the file without validation first to learn its algo, then validate with the right schema.
  const raw = loadConfig(algo0 === 'kl-budget' ? KlBudgetConfigSchema : PpoKlConfigSchema, file, { ...overrides, ...(algo0 ? { algo: algo0 } : {}) });
  const config = resolveAgentConfig(raw, algo0);

  const backend = (values.backend ?? 'auto') as BackendChoice;
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new BadConfig(`--backend must be one of ${BACKENDS.join(', ')}`);
  const info = await initBackend(backend);
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
    envs, base, baseDir, tokenizer, out, resume: values.resume === true,
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
    console.log(`train: ${res.updates} updates in ${(res.seconds / 60).toFixed(1)} min; last reward ${last?.['env/reward_mean']?.toFixed(3) ?? '-'}, KL ${last?.['objective/kl_exact']?.toFixed(2) ?? '-'}; checkpoint ${res.checkpoint}`);
  } finally {
    await envs.close();
  }
  return 0;
}
