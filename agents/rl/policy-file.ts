/**
 * `checkpoint/agent.json`: everything needed to rebuild a trained RL policy as it acted in
 * training, written beside the weights by both trainers (issue 12, item 3). `colloquy eval
 * --agent checkpoint:RUN` (agents/eval/rl-agent.ts) reads it, so the evaluated policy is the trained
 * one: the same base model (checked by the hash of its weights), the same KL reference (kl-budget
 * mixes its proposal with it token by token, so its actions depend on it), and kl-budget's
 * `targetHorizon`, `budgetAccounting` and budget.
 *
 * The KL reference is described, not stored: `base` (the base model itself), `model` (another LM
 * checkpoint folder), or `conservative` (an imitator ensemble folder, the plausible members and
 * whether it was renormalised over the vocabulary, as kl-budget needs). A reference given to a
 * trainer without a description (`TrainContext.referenceSpec`) is recorded as `unrecorded`, and a
 * kl-budget checkpoint trained against one cannot be rebuilt without it (eval refuses, coded).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { BadConfig } from '../../core/errors.ts';
import { rename, writeFile } from 'node:fs/promises';

export const POLICY_FILE = 'agent.json';
export const POLICY_FORMAT = 'colloquy-rl-policy' as const;

export type ReferenceSpec =
  | { kind: 'base'; name: string }
  | { kind: 'model'; dir: string; name: string }
  | { kind: 'conservative'; ensemble: string; members: number[]; normalise: boolean; name: string }
  | { kind: 'unrecorded'; name: string };

interface PolicyFileCommon {
  format: typeof POLICY_FORMAT;
  version: 1;
  /** Update after which the checkpoint was written. */
  update: number;
  /** The base model folder (the KL prior by default; kl-budget's features) and the sha256 of its weights.bin. */
  baseModel: string;
  baseModelSha256: string | null;
  reference: ReferenceSpec;
}

export type PolicyFile =
  | PolicyFileCommon & { algo: 'ppo-kl'; trainLayers: number | 'all' }
  | PolicyFileCommon & {
    algo: 'kl-budget';
    criticHidden: number;
    targetHorizon: number | null;
    budgetAccounting: 'exact' | 'sampled';
    /** The budget episodes started from this checkpoint get (the ramp's value at its step). */
    budget: number;
  };

/** sha256 of a model folder's weights.bin (null when it has none). */
export function weightsSha256(modelDir: string): string | null {
  const f = path.join(modelDir, 'weights.bin');
  return existsSync(f) ? createHash('sha256').update(readFileSync(f)).digest('hex') : null;
}

export async function writePolicyFile(checkpointDir: string, p: PolicyFile): Promise<void> {
  // Written whole, then renamed into place (run.ts's writeAtomic; run.ts imports this file's types).
  const file = path.join(checkpointDir, POLICY_FILE), tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(p, null, 2) + '\n');
  await rename(tmp, file);
}

/** The checkpoint's agent.json, or null for a checkpoint written before it existed. */
export function readPolicyFile(checkpointDir: string): PolicyFile | null {
  const f = path.join(checkpointDir, POLICY_FILE);
  if (!existsSync(f)) return null;
  const p = JSON.parse(readFileSync(f, 'utf8')) as PolicyFile;
  if (p.format !== POLICY_FORMAT) throw new BadConfig(`${f} is not a ${POLICY_FORMAT} file`);
  if (p.algo !== 'ppo-kl' && p.algo !== 'kl-budget') throw new BadConfig(`${f}: unknown algo '${String((p as { algo?: unknown }).algo)}'`);
  return p;
}

/**
 * The reference a trainer records: the base model when it was given none (or the base itself),
 * else the caller's description of it, else `unrecorded` under the reference's name.
 */
export function recordedReference(ctx: { reference?: unknown; base: unknown; referenceSpec?: ReferenceSpec }, referenceName: string): ReferenceSpec {
  if (ctx.reference === undefined || ctx.reference === ctx.base) return { kind: 'base', name: 'base' };
  if (ctx.referenceSpec) {
    if (ctx.referenceSpec.name !== referenceName) throw new BadConfig(`referenceSpec names '${ctx.referenceSpec.name}' but the reference is '${referenceName}'`);
    return ctx.referenceSpec;
  }
  return { kind: 'unrecorded', name: referenceName };
}
