/**
 * Echo-v0: a tiny, fast env for tests and benchmarks of the transport. Each step shows a target
 * action in the observation; the agent is rewarded 1 for echoing it. Observation (Box of
 * `obsSize` ≥ 3 in [0,1], float32 values): [time fraction, target / (nActions-1), last action /
 * (nActions-1), noise...]; noise values are multiples of 1/1024 so that they are short in JSON.
 */
import { Type, type Static } from '@sinclair/typebox';
import { subEnvSeed, type AutoresetMode, type Env, type EnvSpec, type Info, type ResetArgs, type ResetResult, type StepResult, type VectorEnv, type VectorResetArgs, type VectorResetResult, type VectorStepResult } from './core.ts';
import { BadConfig, EnvClosed, InvalidAction, ResetNeeded } from '../core/errors.ts';
import { Box, Discrete } from './spaces.ts';
import { Rng, entropySeed } from '../core/rng.ts';
import { register } from './registry.ts';

export const EchoKwargs = Type.Object({
  obsSize: Type.Integer({ minimum: 3, maximum: 65536, default: 8, description: 'length of the observation vector' }),
  nActions: Type.Integer({ minimum: 2, maximum: 1_000_000, default: 16, description: 'number of discrete actions' }),
  episodeLength: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 32, description: 'steps until the episode terminates' }),
}, { additionalProperties: false });
export type EchoKwargs = Static<typeof EchoKwargs>;

export class EchoEnv implements Env<number[], number> {
  readonly observationSpace: Box;
  readonly actionSpace: Discrete;
  spec: EnvSpec | null = null;
  private rng = new Rng(entropySeed());
  private t = 0;
  private target = 0;
  private last = 0;

  constructor(readonly kwargs: EchoKwargs) {
    this.observationSpace = new Box(0, 1, [kwargs.obsSize], 'float32');
    this.actionSpace = new Discrete(kwargs.nActions);
  }

  private observe(): number[] {
    const { obsSize, nActions, episodeLength } = this.kwargs;
    const obs = new Array<number>(obsSize);
    // The Box is float32: values are rounded to float32, as a float32 array would hold them.
    obs[0] = Math.fround(this.t / episodeLength);
    obs[1] = Math.fround(this.target / (nActions - 1));
    obs[2] = Math.fround(this.last / (nActions - 1));
    for (let i = 3; i < obsSize; i++) obs[i] = this.rng.int(1024) / 1024;
    return obs;
  }

  async reset(args: ResetArgs = {}): Promise<ResetResult<number[]>> { return this.resetSync(args.seed); }
  async step(action: number): Promise<StepResult<number[]>> { return this.stepSync(action); }

  /** reset() without the promise (for EchoVectorEnv). */
  resetSync(seed?: number): ResetResult<number[]> {
    if (seed !== undefined) this.rng = new Rng(seed);
    this.t = 0;
    this.last = 0;
    this.target = this.rng.int(this.kwargs.nActions);
    return { observation: this.observe(), info: {} };
  }

  /** step() without the promise (for EchoVectorEnv). */
  stepSync(action: number): StepResult<number[]> {
    const reward = action === this.target ? 1 : 0;
    this.t++;
    this.last = action;
    this.target = this.rng.int(this.kwargs.nActions);
    const terminated = this.t >= this.kwargs.episodeLength;
    return { observation: this.observe(), reward, terminated, truncated: false, info: {} };
  }

  async close(): Promise<void> {}
}

const ECHO_MAX_EPISODE_STEPS = 1000;

/**
 * Echo-v0's native vector form (what `makeVec('Echo-v0')` builds): exactly the trajectories of N
 * EchoEnvs wrapped by `make` in a SyncVectorEnv (same autoreset modes, time limit, seeding by
 * `seed + i`, errors; tests/env/echo-vector.test.ts compares them), stepped in one synchronous
 * loop, so that the transport benchmarks measure the protocol rather than 64×4 promise hops.
 * Unlike SyncVectorEnv it checks every action before stepping any sub-env.
 */
export class EchoVectorEnv implements VectorEnv<number[], number> {
  readonly singleObservationSpace: Box;
  readonly singleActionSpace: Discrete;
  spec: EnvSpec | null = null;
  private readonly envs: EchoEnv[];
  private readonly observations: number[][];
  /** Steps since each sub-env's reset (the TimeLimit wrapper's count). */
  private readonly elapsed: number[];
  private readonly ended: boolean[];
  private hasReset = false;
  private closed = false;

  constructor(readonly numEnvs: number, kwargs: EchoKwargs, readonly autoresetMode: AutoresetMode = 'next-step', private readonly maxEpisodeSteps: number | null = ECHO_MAX_EPISODE_STEPS) {
    this.envs = Array.from({ length: numEnvs }, () => new EchoEnv(kwargs));
    this.singleObservationSpace = this.envs[0]!.observationSpace;
    this.singleActionSpace = this.envs[0]!.actionSpace;
    this.observations = new Array<number[]>(numEnvs);
    this.elapsed = new Array<number>(numEnvs).fill(0);
    this.ended = new Array<boolean>(numEnvs).fill(false);
  }

  async reset(args: VectorResetArgs = {}): Promise<VectorResetResult<number[]>> {
    if (this.closed) throw new EnvClosed();
    const seeds = this.envs.map((_, i) => subEnvSeed(args.seed, i, this.numEnvs));
    const mask = (args.options as { resetMask?: unknown } | undefined)?.resetMask;
    if (mask !== undefined && (!Array.isArray(mask) || mask.length !== this.numEnvs || mask.some(m => typeof m !== 'boolean'))) {
      throw new BadConfig(`options.resetMask must be ${this.numEnvs} booleans`);
    }
    if (mask && !this.hasReset && (mask as boolean[]).some(m => !m)) throw new ResetNeeded('the first reset must reset every sub-env');
    const infos: Info[] = new Array(this.numEnvs);
    for (let i = 0; i < this.numEnvs; i++) {
      if (mask && !(mask as boolean[])[i]) { infos[i] = {}; continue; }
      const r = this.envs[i]!.resetSync(seeds[i]);
      this.observations[i] = r.observation;
      this.elapsed[i] = 0;
      this.ended[i] = false;
      infos[i] = r.info;
    }
    this.hasReset = true;
    return { observations: this.observations.slice(), infos };
  }

  async step(actions: number[]): Promise<VectorStepResult<number[]>> {
    if (this.closed) throw new EnvClosed();
    if (!this.hasReset) throw new ResetNeeded('step() before reset()');
    const n = this.numEnvs;
    if (!Array.isArray(actions) || actions.length !== n) {
      throw new InvalidAction(`expected ${n} actions, got ${Array.isArray(actions) ? actions.length : typeof actions}`);
    }
    if (this.autoresetMode === 'disabled') {
      const i = this.ended.indexOf(true);
      if (i >= 0) throw new ResetNeeded(`sub-env ${i} ended; reset it with options.resetMask (autoresetMode 'disabled')`);
    }
    const space = this.singleActionSpace;
    for (let i = 0; i < n; i++) {
      if (!this.ended[i] && !space.contains(actions[i])) throw new InvalidAction(`invalid action: ${space.explain(actions[i])}`);
    }
    const rewards = new Array<number>(n);
    const terminated = new Array<boolean>(n);
    const truncated = new Array<boolean>(n);
    const infos = new Array<Info>(n);
    const max = this.maxEpisodeSteps;
    for (let i = 0; i < n; i++) {
      const env = this.envs[i]!;
      if (this.ended[i]) { // next-step autoreset
        const r = env.resetSync();
        this.observations[i] = r.observation;
        this.elapsed[i] = 0;
        this.ended[i] = false;
        rewards[i] = 0; terminated[i] = false; truncated[i] = false;
        infos[i] = { ...r.info, autoreset: true };
        continue;
      }
      let r = env.stepSync(actions[i]!);
      if (max !== null && ++this.elapsed[i]! >= max && !r.terminated && !r.truncated) {
        r = { ...r, truncated: true, info: { ...r.info, truncatedBy: 'time-limit' } };
      }
      rewards[i] = r.reward; terminated[i] = r.terminated; truncated[i] = r.truncated;
      if ((r.terminated || r.truncated) && this.autoresetMode === 'same-step') {
        const rr = env.resetSync();
        this.elapsed[i] = 0;
        this.observations[i] = rr.observation;
        infos[i] = { ...rr.info, finalObservation: r.observation, finalInfo: r.info };
      } else {
        this.observations[i] = r.observation;
        infos[i] = r.info;
        if (r.terminated || r.truncated) this.ended[i] = true;
      }
    }
    return { observations: this.observations.slice(), rewards, terminated, truncated, infos };
  }

  async close(): Promise<void> { this.closed = true; }
}

register({
  id: 'Echo-v0',
  entryPoint: kwargs => new EchoEnv(kwargs as EchoKwargs),
  vectorEntryPoint: (numEnvs, kwargs, autoresetMode) => new EchoVectorEnv(numEnvs, kwargs as EchoKwargs, autoresetMode),
  kwargsSchema: EchoKwargs,
  maxEpisodeSteps: ECHO_MAX_EPISODE_STEPS,
  description: 'Echo the target action shown in the observation; reward 1 when echoed. For tests and transport benchmarks.',
  deterministic: true,
});
