/**
 * The config of batch-kl, offline KL-control Q-learning from logged chats (agents/batch-kl.ts,
 * `colloquy train --algo batch-kl`): one TypeBox schema that is the JSON Schema of a `--config`
 * file, the TypeScript type the trainer reads and the source of the command's flags and --help.
 */
import { Type, type Static } from '@sinclair/typebox';
import { validateConfig } from '../../core/config.ts';

export const BatchKlConfigSchema = Type.Object({
  data: Type.String({ minLength: 1, description: 'logged chats: JSONL from `colloquy export` (messages + rewards + metadata.prompt), or plain chat JSONL with rewards' }),
  base: Type.Union([Type.String(), Type.Null()], { default: null, description: 'base model checkpoint (the KL prior and the starting point); null: $COLLOQUY_BASE_MODEL or data/models/base' }),
  out: Type.Union([Type.String(), Type.Null()], { default: null, description: 'run folder (config.json, metrics.jsonl, checkpoint/); null: runs/batch-kl-<time>' }),
  prompt: Type.Union([Type.String(), Type.Null()], { default: null, description: 'opening transcript for records without metadata.prompt (null: none; the first turn starts the transcript)' }),
  klCoef: Type.Number({ exclusiveMinimum: 0, default: 0.5, description: 'c: rewards enter as r/c; larger c stays closer to the base model' }),
  gamma: Type.Number({ minimum: 0, maximum: 1, default: 0.9, description: 'discount per teacher turn (1 between the tokens of an utterance)' }),
  rewardKey: Type.String({ default: 'total', description: '"total" or the name of a logged reward component' }),
  rewardNorm: Type.Union([Type.Literal('zscore'), Type.Literal('center'), Type.Literal('none')], { default: 'zscore', description: 'normalise the logged utterance rewards with their mean (and s.d.) over this run\'s data, computed once and frozen (saved in config.json and the checkpoint): an un-centred reward on every token (≈ 0.5 with VADER) pays the agent to never hand the turn back' }),
  rewardOffset: Type.Number({ default: 0, description: 'after rewardNorm: r ← (r − offset)·scale' }),
  rewardScale: Type.Number({ default: 1, description: 'see rewardOffset' }),
  klTerm: Type.Union([Type.Literal('prior'), Type.Literal('log-ratio')], { default: 'prior', description: 'the KL control in the target: prior = Ψ-learning\'s log p(a|s) (Sequence Tutor; the fixed point is the KL-regularised optimum), log-ratio = Way Off-Policy\'s KL-control reward log p(a|s) − log π(a|s) (in units of c: their c·(log p − log q)), π the current network\'s policy' }),
  rewardOn: Type.Union([Type.Literal('every-token'), Type.Literal('last-token')], { default: 'every-token', description: 'the utterance reward on every token of the utterance (Way Off-Policy) or on its last token' }),
  steps: Type.Integer({ minimum: 1, default: 500, description: 'gradient steps' }),
  batchWindows: Type.Integer({ minimum: 1, default: 8, description: 'transcript windows per minibatch' }),
  learningRate: Type.Number({ exclusiveMinimum: 0, default: 3e-4, description: 'Adam learning rate' }),
  gradClip: Type.Number({ minimum: 0, default: 1, description: 'clip the global gradient norm (0: off)' }),
  huberDelta: Type.Number({ exclusiveMinimum: 0, default: 1, description: 'Huber loss threshold on the TD error' }),
  tau: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.01, description: 'Polyak rate of the target network per step' }),
  dropout: Type.Number({ minimum: 0, maximum: 0.9, default: 0.1, description: 'dropout of the Q-network (training and the M target samples)' }),
  targetSamples: Type.Integer({ minimum: 1, default: 5, description: 'M: dropout samples of the target network; the target is the minimum over samples of each one\'s scalar target r/c + … + γ·log Σ exp Ψ (Jaques et al.)' }),
  seed: Type.Integer({ default: 1, description: 'minibatch order and dropout masks' }),
  maxDialogs: Type.Integer({ minimum: 0, default: 0, description: 'use at most this many dialogs (0: all)' }),
  logEvery: Type.Integer({ minimum: 1, default: 25, description: 'metrics line every N steps' }),
  checkpointEvery: Type.Integer({ minimum: 0, default: 0, description: 'also save the policy every N gradient steps as checkpoint-STEP/ beside the final checkpoint/ (0: only the final): points along training for a reward–KL curve' }),
}, { additionalProperties: false });
export type BatchKlConfig = Static<typeof BatchKlConfigSchema>;

export function resolveBatchKlConfig(value: unknown): BatchKlConfig {
  return validateConfig(BatchKlConfigSchema, value, 'batch-kl config');
}
