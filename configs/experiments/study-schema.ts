/**
 * The pieces every study config shares (`configs/experiments/*-schema.ts`, read by `colloquy study`):
 * the backend choice, the dialog env in token mode, the fixed-seed evaluation, and the env checks.
 */
import { Type } from '@sinclair/typebox';
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

/** A study runs its env in token mode and sets the episode length itself (its episodeTokens). */
export function checkStudyEnv(kwargs: Record<string, unknown>, what: string): void {
  if ((kwargs.actionMode ?? 'token') !== 'token') throw new BadConfig(`${what}: env.kwargs.actionMode must be "token"`);
  if (kwargs.maxTokens !== undefined) throw new BadConfig(`${what}: set the episode length in episodeTokens, not env.kwargs.maxTokens`);
}
