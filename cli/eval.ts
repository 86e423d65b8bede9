/**
 * `colloquy eval`: run agents on N dialogs with fixed seeds (in process, or against a server with
 * --server) and write per-dialog rows (JSONL + CSV) and a summary with 95% bootstrap intervals.
 */
import { parseArgs } from 'node:util';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BadConfig } from '../core/errors.ts';
import { initBackend, BACKENDS, type BackendChoice } from '../models/backend.ts';
import { ConservativeReference } from '../agents/imitation/reference.ts';
import { loadEnsemble, type LoadedEnsemble } from '../agents/imitation/imitators.ts';
import { evalAgents, openVecEnv, printSummaryTable, type AgentRun } from '../agents/eval/run.ts';
import { loadModel } from '../agents/eval/load.ts';
import type { EvalReference } from '../agents/eval/evaluate.ts';
import type { HelpMode } from '../agents/imitation/conservative.ts';
import { PROJECT_ROOT, defaultModelDir } from '../core/paths.ts';

const USAGE = `usage: colloquy eval --agent SPEC [--agent SPEC ...] [options]

Runs each agent on N dialogs of a token-mode dialog env with fixed seeds (dialog j: env seed
SEED + j) and writes, per agent, one row per dialog (JSONL and CSV) and a summary: mean reward with a
95% bootstrap interval, exact KL per token and per episode to the base and to the demonstrator,
empty teacher turns (<= 4 tokens), help requests, turn lengths, distinct-1/2, perplexity under D,
sentiment of the student's replies.

agents (SPEC):
  base                 the env's base model
  model:DIR            a language-model checkpoint
  imitator:DIR         the single imitator of an ensemble folder (or a checkpoint)
  demonstrator[:DIR]   the demonstrator D (default --demonstrator)
  conservative:DIR     the conservative baseline of an ensemble folder; D writes on help requests
  checkpoint:DIR       an RL run folder (colloquy train / compare: config.json + checkpoint/), acting
                       as in training, or any LM checkpoint folder

options:
  --episodes N         dialogs per agent (default 32)
  --seed S             first env seed (default 1000)
  --env ID             env id (default TeacherStudent-v0)
  --kwargs JSON        env kwargs (token mode), e.g. '{"maxTokens":128}'
  --num-envs N         dialogs run at once (default 8)
  --server URL         run against a server (ws://host:port/v1/env) instead of in process
  --token T            bearer token for --server
  --base DIR           the base model (KL reference 'base'; default: kwargs.model or data/models/base)
  --demonstrator DIR   D (KL reference 'demonstrator', perplexity under D, helper of the conservative agent)
  --ensemble DIR       an imitator ensemble: adds the KL references 'imitator' and 'conservative'
  --alpha X            plausible-set threshold for conservative agents / reference (default: the ensemble's)
  --help-mode M        what D writes on a help request: token | turn (default turn)
  --temperature X      sampling temperature of model agents (default 1)
  --out DIR            output folder (default runs/eval/<time>)
  --transcripts        keep transcripts (token ids and text) in the rows
  --backend NAME       ${BACKENDS.join(', ')} (default auto)
  -h, --help           this help`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      agent: { type: 'string', multiple: true }, episodes: { type: 'string' }, seed: { type: 'string' }, env: { type: 'string' },
      kwargs: { type: 'string' }, 'num-envs': { type: 'string' }, server: { type: 'string' }, token: { type: 'string' },
      base: { type: 'string' }, demonstrator: { type: 'string' }, ensemble: { type: 'string' }, alpha: { type: 'string' },
      'help-mode': { type: 'string' }, temperature: { type: 'string' }, out: { type: 'string' }, transcripts: { type: 'boolean' },
      backend: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help) { console.log(USAGE); return 0; }
  const agents = values.agent ?? [];
  if (!agents.length) { console.error(`colloquy eval: give at least one --agent\n\n${USAGE}`); return 2; }
  const int = (name: string, v: string | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    const x = Number(v);
    if (!Number.isInteger(x) || x < 0) throw new BadConfig(`--${name} must be a non-negative integer, got '${v}'`);
    return x;
  };
  const num = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const x = Number(v);
    if (!Number.isFinite(x)) throw new BadConfig(`--${name} must be a number, got '${v}'`);
    return x;
  };
  const episodes = int('episodes', values.episodes, 32);
  if (episodes < 1) throw new BadConfig('--episodes must be at least 1');
  const seed = int('seed', values.seed, 1000);
  const numEnvs = Math.max(1, int('num-envs', values['num-envs'], 8));
  let kwargs: Record<string, unknown> = {};
  if (values.kwargs) {
    try { kwargs = JSON.parse(values.kwargs) as Record<string, unknown>; } catch (err) { throw new BadConfig(`--kwargs is not JSON: ${(err as Error).message}`); }
    if (!kwargs || typeof kwargs !== 'object' || Array.isArray(kwargs)) throw new BadConfig('--kwargs must be a JSON object');
  }
  const helpMode = (values['help-mode'] ?? 'turn') as HelpMode;
  if (helpMode !== 'token' && helpMode !== 'turn') throw new BadConfig('--help-mode must be token or turn');
  const backend = (values.backend ?? 'auto') as BackendChoice;
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new BadConfig(`--backend must be one of ${BACKENDS.join(', ')}`);
  const info = await initBackend(backend);
  console.log(`eval: TensorFlow.js backend ${info.name} (${info.tfBackend})`);

  const baseDir = path.resolve(values.base ?? (typeof kwargs.model === 'string' ? kwargs.model : defaultModelDir()));
  const envId = values.env ?? 'TeacherStudent-v0';
  const out = path.resolve(values.out ?? path.join(PROJECT_ROOT, 'runs', 'eval', new Date().toISOString().replace(/[:.]/g, '-')));
  mkdirSync(out, { recursive: true });

  const base = await loadModel(baseDir);
  const demonstrator = values.demonstrator ? await loadModel(values.demonstrator) : null;
  let ensemble: LoadedEnsemble | null = null;
  const references: EvalReference[] = [{ name: 'base', ref: base }];
  if (demonstrator) references.push({ name: 'demonstrator', ref: demonstrator });
  if (values.ensemble) {
    const alpha = num('alpha', values.alpha);
    ensemble = await loadEnsemble(path.resolve(values.ensemble), alpha !== undefined ? { alpha } : undefined);
    references.push({ name: 'imitator', ref: ensemble.single }, { name: 'conservative', ref: new ConservativeReference(ensemble.models, ensemble.file.plausible) });
  }

  const runs: AgentRun[] = agents.map(spec => ({ spec }));
  try {
    const results = await evalAgents({
      runs, references, baseDir, demonstrator, episodes, seed,
      openEnv: () => openVecEnv({ env: envId, kwargs, numEnvs, server: values.server, token: values.token ?? process.env.COLLOQUY_TOKEN }),
      agentContext: { helpMode, alpha: num('alpha', values.alpha), temperature: num('temperature', values.temperature), maxTokens: typeof kwargs.maxTokens === 'number' ? kwargs.maxTokens : 256 },
      out, transcripts: values.transcripts === true,
      log: line => console.log(line),
    });
    writeFileSync(path.join(out, 'summary.json'), JSON.stringify({
      env: envId, kwargs, episodes, seed, numEnvs, server: values.server ?? null, base: baseDir, demonstrator: values.demonstrator ?? null,
      ensemble: values.ensemble ?? null, backend: info.name, summaries: results.map(r => r.summary),
    }, null, 2) + '\n');
    console.log('');
    printSummaryTable(results.map(r => r.summary), references.map(r => r.name), line => console.log(line));
    console.log(`\neval: rows and summary in ${out}`);
    appendFileSync(path.join(out, 'command.txt'), `colloquy eval ${argv.map(a => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n`);
  } finally {
    ensemble?.dispose();
  }
  return 0;
}
