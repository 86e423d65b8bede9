/**
 * `colloquy eval`: run agents on N dialogs with fixed seeds (in process, or against a server with
 * --server) and write per-dialog rows (JSONL + CSV) and a summary with 95% bootstrap intervals.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { initBackend, type BackendChoice } from '../models/backend.ts';
import { loadConfig } from '../core/config.ts';
import { EvalConfigSchema } from '../configs/eval/schema.ts';
import { ConservativeReference } from '../agents/imitation/reference.ts';
import { loadEnsemble, type LoadedEnsemble } from '../agents/imitation/imitators.ts';
import { evalAgents, openVecEnv, printSummaryTable, type AgentRun } from '../agents/eval/run.ts';
import { loadModel } from '../agents/eval/load.ts';
import type { EvalReference } from '../agents/eval/evaluate.ts';
import { PROJECT_ROOT, defaultModelDir } from '../core/paths.ts';
import { helpText, parseCommandLine, UsageError, type CommandSpec } from './args.ts';

/** The command line: flags of config fields take their check and help from EvalConfigSchema. */
export const EVAL_COMMAND: CommandSpec = {
  command: 'colloquy eval',
  usage: '--agent SPEC [--agent SPEC ...] [options]',
  summary: 'Runs each agent on N dialogs of a token-mode dialog env with fixed seeds (dialog j: env seed SEED + j) and writes, per agent, one row per dialog (JSONL and CSV) and a summary: mean reward with a 95% bootstrap interval, exact KL per token and per episode to the base and to the demonstrator (and per token, kept in the rows), empty teacher turns (no word before the marker) and short ones (<= N content tokens, --short-turn-tokens), repeated n-grams, help requests, turn lengths, distinct-1/2, perplexity under D, sentiment of the student\'s replies. A --config file (fields: configs/eval/schema.ts) is read first; --set and the flags override it.',
  schema: EvalConfigSchema,
  set: 'kwargs.maxTokens=128',
  flags: [
    { name: 'agent', field: 'agents', multiple: true, metavar: 'SPEC' },
    { name: 'config', type: 'string', metavar: 'FILE', describe: 'JSON eval config (fields of configs/eval/schema.ts)' },
    { name: 'episodes', field: 'episodes' },
    { name: 'seed', field: 'seed', metavar: 'S' },
    { name: 'env', field: 'env', metavar: 'ID' },
    { name: 'kwargs', field: 'kwargs' },
    { name: 'num-envs', field: 'numEnvs' },
    { name: 'server', field: 'server', metavar: 'URL' },
    { name: 'token', field: 'token', metavar: 'T' },
    { name: 'base', field: 'base', metavar: 'DIR' },
    { name: 'demonstrator', field: 'demonstrator', metavar: 'DIR' },
    { name: 'ensemble', field: 'ensemble', metavar: 'DIR' },
    { name: 'alpha', field: 'alpha' },
    { name: 'help-mode', field: 'helpMode', metavar: 'M' },
    { name: 'temperature', field: 'temperature' },
    { name: 'out', field: 'out', metavar: 'DIR' },
    { name: 'short-turn-tokens', field: 'shortTurnTokens', metavar: 'N' },
    { name: 'ngram-max', field: 'ngramMax', metavar: 'N' },
    { name: 'transcripts', field: 'transcripts' },
    { name: 'backend', field: 'backend', metavar: 'NAME' },
  ],
  footer: `agents (SPEC):
  base                 the env's base model
  model:DIR            a language-model checkpoint
  imitator:DIR         the single imitator of an ensemble folder (or a checkpoint)
  demonstrator[:DIR]   the demonstrator D (default --demonstrator)
  conservative:DIR     the conservative baseline of an ensemble folder; D writes on help requests
  checkpoint:DIR       an RL run folder (colloquy train / compare: config.json + checkpoint/), acting
                       as in training, or any LM checkpoint folder`,
};

export async function run(argv: string[]): Promise<number> {
  const cl = parseCommandLine(EVAL_COMMAND, argv);
  if (cl.help) { console.log(helpText(EVAL_COMMAND)); return 0; }
  const values = loadConfig(EvalConfigSchema, cl.values.config as string | undefined, cl.overrides());
  const { agents, episodes, seed, numEnvs, kwargs, helpMode } = values;
  if (!agents.length) throw new UsageError('give at least one --agent SPEC (see colloquy eval --help)');
  const alpha = values.alpha ?? undefined;
  const info = await initBackend(values.backend as BackendChoice);
  console.log(`eval: TensorFlow.js backend ${info.name} (${info.tfBackend})`);

  const baseDir = path.resolve(values.base ?? (typeof kwargs.model === 'string' ? kwargs.model : defaultModelDir()));
  const envId = values.env;
  const out = path.resolve(values.out ?? path.join(PROJECT_ROOT, 'runs', 'eval', new Date().toISOString().replace(/[:.]/g, '-')));
  mkdirSync(out, { recursive: true });

  const base = await loadModel(baseDir);
  const demonstrator = values.demonstrator ? await loadModel(values.demonstrator) : null;
  let ensemble: LoadedEnsemble | null = null;
  const references: EvalReference[] = [{ name: 'base', ref: base }];
  if (demonstrator) references.push({ name: 'demonstrator', ref: demonstrator });
  if (values.ensemble) {
    ensemble = await loadEnsemble(path.resolve(values.ensemble), alpha !== undefined ? { alpha } : undefined);
    references.push({ name: 'imitator', ref: ensemble.single }, { name: 'conservative', ref: new ConservativeReference(ensemble.models, ensemble.file.plausible) });
  }

  const runs: AgentRun[] = agents.map(spec => ({ spec }));
  try {
    const results = await evalAgents({
      runs, references, baseDir, demonstrator, episodes, seed,
      // An RL run with saved reward statistics is scored with them, unless --kwargs names the reward
      // for every agent (over the wire, the server must allow that file: its reward roots).
      runReward: kwargs.reward === undefined,
      openEnv: reward => openVecEnv({ env: envId, kwargs: reward ? { ...kwargs, reward } : kwargs, numEnvs, server: values.server ?? undefined, token: values.token ?? process.env.COLLOQUY_TOKEN }),
      agentContext: { helpMode, alpha, temperature: values.temperature ?? undefined, maxTokens: typeof kwargs.maxTokens === 'number' ? kwargs.maxTokens : 256 },
      out, transcripts: values.transcripts, shortTurnTokens: values.shortTurnTokens, ngramMax: values.ngramMax,
      log: line => console.log(line),
    });
    writeFileSync(path.join(out, 'summary.json'), JSON.stringify({
      env: envId, kwargs, episodes, seed, numEnvs, shortTurnTokens: values.shortTurnTokens, server: values.server ?? null, base: baseDir, demonstrator: values.demonstrator ?? null,
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
