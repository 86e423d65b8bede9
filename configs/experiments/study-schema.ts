/**
 * The pieces every study config shares (`configs/experiments/*-schema.ts`, read by `colloquy study`):
 * the backend choice, the dialog env in token mode, the fixed-seed evaluation, and the env checks.
 */
import { Type, type Static } from '@sinclair/typebox';
import { BadConfig } from '../../core/errors.ts';

export const StudyBackend = Type.Union(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].map(b => Type.Literal(b)), { default: 'auto', description: 'TensorFlow.js backend (auto: GPU, native, wasm, cpu — the first that works)' });

/** The dialog env of every run and evaluation; `kwargs` says which kwargs the study sets itself. */
export const StudyEnv = (kwargs: string) => Type.Object({
  id: Type.String({ default: 'TeacherStudent-v0', description: 'dialog env id (token mode)' }),
  kwargs: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: kwargs }),
}, { additionalProperties: false, default: {} });

/** The fixed-seed evaluation: `episodes` dialogs (default `n`) from `seed`, `numEnvs` at once. */
export const StudyEval = (n: number, episodes: string, seed: string) => Type.Object({
  episodes: Type.Integer({ minimum: 1, default: n, description: episodes }),
  seed: Type.Integer({ minimum: 0, default: 1000000, description: seed }),
  numEnvs: Type.Integer({ minimum: 1, default: 16, description: 'dialogs at once' }),
}, { additionalProperties: false, default: {} });

/**
 * People as judges of a study's agents (issue 13, study 4): which agents' evaluation dialogs to pair
 * for `/judge`, by their rows files in the study's output folder, and how many pairs. `colloquy
 * study` adds the pairs after the evaluations (a rerun adds none twice) and its report shows the
 * judgements people have given so far: win rates with 95% intervals over pairs.
 */
export const StudyJudge = Type.Object({
  study: Type.String({ pattern: '^[A-Za-z0-9._-]{1,100}$', description: 'the judging study the pairs belong to (its name on /judge?study=NAME and in judge-export)' }),
  pairs: Type.Array(Type.Object({
    a: Type.String({ description: 'one agent\'s evaluation rows, relative to the study\'s output folder (e.g. "eval/kl-budget_B=20_T=256_s1.jsonl")' }),
    b: Type.String({ description: 'the other agent\'s evaluation rows (the same env seeds)' }),
  }, { additionalProperties: false }), { minItems: 1, description: 'agent pairs to judge' }),
  count: Type.Integer({ minimum: 1, default: 50, description: 'at most this many dialog pairs per agent pair (in env-seed order)' }),
  questions: Type.Array(Type.String(), { default: ['better', 'complex'], description: 'question ids (better: "Which teacher is better?", complex: "Which teacher is more complex or unpredictable?")' }),
  db: Type.Union([Type.String(), Type.Null()], { default: null, description: 'the database (null: $COLLOQUY_DB, else data/colloquy.db, the server\'s default)' }),
}, { additionalProperties: false });
export type StudyJudgeConfig = Static<typeof StudyJudge>;

/** A study runs its env in token mode and sets the episode length itself (its episodeTokens). */
export function checkStudyEnv(kwargs: Record<string, unknown>, what: string): void {
  if ((kwargs.actionMode ?? 'token') !== 'token') throw new BadConfig(`${what}: env.kwargs.actionMode must be "token"`);
  if (kwargs.maxTokens !== undefined) throw new BadConfig(`${what}: set the episode length in episodeTokens, not env.kwargs.maxTokens`);
}
