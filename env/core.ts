/**
 * The Env contract (Gymnasium semantics).
 *
 * - `reset({seed, options}) → {observation, info}`; `step(action) → {observation, reward,
 *   terminated, truncated, info}`; `close()`.
 * - `terminated`: the dialog really ended (the MDP reached a terminal state, e.g. the student
 *   left). `truncated`: the episode was cut from outside (time limit, token limit, human timeout).
 *   They are never merged into one `done`: bootstrapping from a truncated state is correct, from a
 *   terminated one it is not.
 * - Seeding belongs to reset: the same seed and the same actions give the same trajectory, bit for
 *   bit. A reset without a seed continues the env's own random stream.
 * - All methods are async: dialog envs sample from a language model or wait for a person.
 */
import type { Space } from './spaces.ts';
import { BadConfig } from '../core/errors.ts';

export type Info = Record<string, unknown>;

export interface ResetArgs { seed?: number; options?: Record<string, unknown> }
export interface ResetResult<O = unknown> { observation: O; info: Info }
export interface StepResult<O = unknown> { observation: O; reward: number; terminated: boolean; truncated: boolean; info: Info }

/** What the registry knows about an env id; serialisable (it travels in `make` and `GET /v1/envs`). */
export interface EnvSpec {
  id: string;
  /** Step cap applied by the TimeLimit wrapper (sets `truncated`), or null for none. */
  maxEpisodeSteps: number | null;
  /** The kwargs `make` used (defaults merged with the caller's). */
  kwargs: Record<string, unknown>;
  description: string;
  /** Whether the same seed and actions reproduce a trajectory (false for human students). */
  deterministic: boolean;
  /** Per-turn reward discount suggested to agents (agents may override). */
  rewardThreshold?: number | null;
  /**
   * Present on dialog envs: the env declares that its episodes are teacher–student dialogs whose
   * infos are `DialogInfo` (env/dialog.ts), and how to read them. The server records the sessions
   * of every env that has it (server/storage/recorder.ts), whatever its id.
   */
  dialog?: DialogSpec;
}

/** The dialog capability of an env (`spec.dialog`); serialisable, like the rest of the spec. */
export interface DialogSpec {
  /**
   * `token`: an action is one token id of the model's vocabulary and observations are
   * `{tokens, length, ...}` (the transcript's ids); `utterance`: an action is one teacher utterance
   * (text) and observations are `{text, ...}` (the transcript).
   */
  actionMode: 'token' | 'utterance';
  /** Who writes the student's turns (as the dialog store names it). */
  student: 'human' | 'scripted' | 'simulated';
  /** The episode's token budget, prompt included. */
  maxTokens: number;
  /** The model folder whose tokenizer the transcript uses, as the kwargs name it; null: the base model of the context that made the env. */
  model: string | null;
  /** The reward config (a name in configs/rewards/ or a path). */
  reward: string;
  /** The kind of opening transcript: 'cohen', 'mathdial' or 'custom'. */
  prompt: string;
}

export interface Env<O = unknown, A = unknown> {
  readonly observationSpace: Space<O>;
  readonly actionSpace: Space<A>;
  spec: EnvSpec | null;
  reset(args?: ResetArgs): Promise<ResetResult<O>>;
  step(action: A): Promise<StepResult<O>>;
  /** Free resources. Calling it twice is allowed and does nothing the second time. */
  close(): Promise<void>;
}

/** A wrapper changes one cross-cutting behaviour and forwards the rest. */
export class Wrapper<O = unknown, A = unknown> implements Env<O, A> {
  constructor(readonly env: Env<O, A>) {}
  get observationSpace(): Space<O> { return this.env.observationSpace; }
  get actionSpace(): Space<A> { return this.env.actionSpace; }
  get spec(): EnvSpec | null { return this.env.spec; }
  set spec(s: EnvSpec | null) { this.env.spec = s; }
  reset(args?: ResetArgs): Promise<ResetResult<O>> { return this.env.reset(args); }
  step(action: A): Promise<StepResult<O>> { return this.env.step(action); }
  close(): Promise<void> { return this.env.close(); }
  /** The innermost env. */
  get unwrapped(): Env<O, A> {
    let e: Env<O, A> = this.env;
    while (e instanceof Wrapper) e = e.env;
    return e;
  }
}

/** The innermost env of a wrapper stack (or the env itself). */
export function unwrap<O, A>(env: Env<O, A>): Env<O, A> {
  return env instanceof Wrapper ? env.unwrapped : env;
}

/** Autoreset modes of vector envs, as in Gymnasium 1.x. */
export type AutoresetMode = 'next-step' | 'same-step' | 'disabled';

export interface VectorResetResult<O = unknown> { observations: O[]; infos: Info[] }
export interface VectorStepResult<O = unknown> {
  observations: O[]; rewards: number[]; terminated: boolean[]; truncated: boolean[]; infos: Info[];
}

/**
 * A vector reset's seed, as Gymnasium's: one seed (sub-env i gets `seed + i`) or one per sub-env
 * (null: that sub-env continues its own random stream).
 */
export type VectorSeed = number | readonly (number | null)[];
export interface VectorResetArgs { seed?: VectorSeed; options?: { resetMask?: boolean[] } & Record<string, unknown> }

/** The seed of sub-env i under a vector seed (undefined: none); BadConfig for a list that is not one non-negative integer or null per sub-env. */
export function subEnvSeed(seed: VectorSeed | undefined, i: number, numEnvs: number): number | undefined {
  if (seed === undefined) return undefined;
  if (typeof seed === 'number') return seed + i;
  if (!Array.isArray(seed) || seed.length !== numEnvs) throw new BadConfig(`a list of seeds needs one per sub-env (${numEnvs})`);
  const s = seed[i];
  if (s === null) return undefined;
  if (!Number.isInteger(s) || s < 0) throw new BadConfig(`seed ${i} must be a non-negative integer or null, got ${String(s)}`);
  return s;
}

/**
 * N sub-envs stepped together. `reset({seed})` seeds sub-env i with `seed + i` (or with `seed[i]`
 * for a list of per-env seeds, see `VectorSeed`).
 * Autoreset: in `next-step` mode (default) a sub-env that ended on step t is reset on step t+1,
 * whose action for it is ignored and whose result for it is the reset observation with reward 0,
 * `info.autoreset = true`. In `same-step` mode it is reset within step t: the returned observation
 * is the reset one and `info.finalObservation` / `info.finalInfo` hold the last ones. In `disabled`
 * mode the caller resets ended sub-envs with `reset({options: {resetMask}})`.
 */
export interface VectorEnv<O = unknown, A = unknown> {
  readonly numEnvs: number;
  readonly singleObservationSpace: Space<O>;
  readonly singleActionSpace: Space<A>;
  readonly autoresetMode: AutoresetMode;
  spec: EnvSpec | null;
  reset(args?: VectorResetArgs): Promise<VectorResetResult<O>>;
  step(actions: A[]): Promise<VectorStepResult<O>>;
  close(): Promise<void>;
}
