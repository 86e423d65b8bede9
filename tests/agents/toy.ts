/**
 * A toy task for the RL agents' tests: a tiny base model briefly pretrained on toy dialogs in
 * which the teacher says one of a few short utterances, and a scripted student (the env's
 * `student: "scripted"`) that replies happily only when the teacher's utterance contains "yes".
 * The base policy says "yes" in about a sixth of its turns; an agent that learns says it always.
 */
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BpeTokenizer } from '../../models/tokenizer.ts';
import { TransformerLM } from '../../models/lm.ts';
import { saveCheckpoint } from '../../models/checkpoint.ts';
import { Rng } from '../../core/rng.ts';
import { TURN_STUDENT, TURN_TEACHER } from '../../core/markers.ts';

export const TOY_PROMPT = `A chat.${TURN_STUDENT} hi${TURN_TEACHER}`;
export const TOY_TEACHER = [' ok', ' hmm', ' wow', ' right', ' yes', ' nice'];
export const TOY_TRIGGER = 'yes';
export const TOY_STUDENT_HAPPY = ' great, thanks!';
export const TOY_STUDENT_PLAIN = ' i see.';

/** Env kwargs of the toy task (the model folder is added by the caller). */
export function toyKwargs(model: string, maxTokens = 48): Record<string, unknown> {
  return {
    model, prompt: { text: TOY_PROMPT }, student: 'scripted', maxTokens,
    scripted: { rules: [{ contains: TOY_TRIGGER, reply: TOY_STUDENT_HAPPY }], default: TOY_STUDENT_PLAIN },
  };
}

function toyDialog(rng: Rng, turns: number): string {
  let s = TOY_PROMPT;
  for (let t = 0; t < turns; t++) {
    const u = TOY_TEACHER[rng.int(TOY_TEACHER.length)]!;
    s += u + TURN_STUDENT + (u.includes(TOY_TRIGGER) ? TOY_STUDENT_HAPPY : TOY_STUDENT_PLAIN) + TURN_TEACHER;
  }
  return s;
}

/** Build (once per folder) the toy base model: tokenizer + a 1-block transformer trained for a few seconds. */
export async function buildToyModel(dir = path.join(os.tmpdir(), `colloquy-rl-toy-${process.env.VITEST_POOL_ID ?? process.pid}`)): Promise<string> {
  if (existsSync(path.join(dir, 'model.json'))) return dir;
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(1);
  const texts = Array.from({ length: 200 }, () => toyDialog(rng, 6));
  const tokenizer = BpeTokenizer.train(texts, { vocabSize: 300 });
  const T = 64;
  const model = TransformerLM.create({ vocabSize: tokenizer.vocabSize, dModel: 32, nLayers: 1, nHeads: 2, dFF: 64, contextLength: T }, 1);
  const stream = texts.flatMap(t => tokenizer.encode(t));
  const opt: tf.Optimizer = tf.train.adam(1e-2);
  const B = 8;
  for (let step = 0; step < 120; step++) {
    const tokens = new Int32Array(B * (T + 1));
    for (let b = 0; b < B; b++) {
      const s = rng.int(stream.length - T - 1);
      tokens.set(stream.slice(s, s + T + 1), b * (T + 1));
    }
    const { value, grads } = tf.variableGrads(() => model.loss({ tokens, batchSize: B, seqLength: T }), model.variables);
    opt.applyGradients(grads);
    tf.dispose([value, ...Object.values(grads)]);
  }
  opt.dispose();
  await saveCheckpoint(model, dir, { tokenizer: tokenizer.toJSON() });
  model.dispose();
  return dir;
}
