/**
 * The config of `colloquy eval` (cli/eval.ts): which agents, on how many dialogs of which env, with
 * which KL references. One TypeBox schema is the JSON Schema of an `--config` file, the TypeScript
 * type the command reads and the source of its flags and --help; every field has a default except
 * the agents, which the command line usually gives (`--agent SPEC`, repeatable).
 */
import { Type, type Static } from '@sinclair/typebox';

const Path = (description: string) => Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description });

export const EvalConfigSchema = Type.Object({
  description: Type.Optional(Type.String()),
  agents: Type.Array(Type.String({ minLength: 1, description: 'an agent: base | model:DIR | imitator:DIR | demonstrator[:DIR] | conservative:DIR | checkpoint:DIR' }), {
    default: [], description: 'agents to evaluate: base, model:DIR, imitator:DIR, demonstrator[:DIR], conservative:DIR, checkpoint:DIR',
  }),
  episodes: Type.Integer({ minimum: 1, default: 32, description: 'dialogs per agent' }),
  seed: Type.Integer({ minimum: 0, default: 1000, description: 'first env seed (dialog j: env seed seed + j)' }),
  env: Type.String({ default: 'TeacherStudent-v0', description: 'env id (token mode)' }),
  kwargs: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'env kwargs (token mode), e.g. {"maxTokens":128}' }),
  numEnvs: Type.Integer({ minimum: 1, default: 8, description: 'dialogs run at once' }),
  server: Path('run against this server (ws://host:port/v1/env) instead of in process'),
  token: Path('bearer token for the server (null: $COLLOQUY_TOKEN)'),
  base: Path('the base model (KL reference "base"; null: kwargs.model, else $COLLOQUY_BASE_MODEL or data/models/base)'),
  demonstrator: Path('D (KL reference "demonstrator", perplexity under D, helper of the conservative agent)'),
  ensemble: Path('an imitator ensemble folder: adds the KL references "imitator" and "conservative"'),
  alpha: Type.Union([Type.Number(), Type.Null()], { default: null, description: 'plausible-set threshold for conservative agents / reference (null: the ensemble\'s)' }),
  helpMode: Type.Union([Type.Literal('token'), Type.Literal('turn')], { default: 'turn', description: 'what D writes on a help request: the token, or the rest of the teacher turn' }),
  temperature: Type.Union([Type.Number(), Type.Null()], { default: null, description: 'sampling temperature of model agents (null: 1)' }),
  out: Path('output folder (null: runs/eval/<time>)'),
  shortTurnTokens: Type.Integer({ minimum: 0, default: 4, description: 'N of the "short" turn measure: a teacher turn of at most N content tokens (the marker not counted) is short; "empty" means no word before the marker' }),
  ngramMax: Type.Integer({ minimum: 1, maximum: 10, default: 4, description: 'repeated n-gram rates for n = 1…ngramMax (Cohen et al. count up to 10)' }),
  transcripts: Type.Boolean({ default: false, description: 'keep transcripts (token ids and text) in the rows' }),
  backend: Type.Union(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].map(b => Type.Literal(b)), { default: 'auto', description: 'TensorFlow.js backend (auto: GPU, native, wasm, cpu — the first that works)' }),
}, { additionalProperties: false });
export type EvalConfig = Static<typeof EvalConfigSchema>;

