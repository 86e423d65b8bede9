/**
 * Echo-v0: a tiny, fast env for tests and benchmarks of the transport. Each step shows a target
 * action in the observation; the agent is rewarded 1 for echoing it. Observation (Box of
 * `obsSize` ≥ 3 in [0,1]): [time fraction, target / (nActions-1), last action / (nActions-1),
 * noise...]; noise values are multiples of 1/1024 so that they are short in JSON.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { Env, EnvSpec, ResetArgs, ResetResult, StepResult } from './core.ts';
import { Box, Discrete } from './spaces.ts';
import { Rng, entropySeed } from './rng.ts';
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
    obs[0] = this.t / episodeLength;
    obs[1] = this.target / (nActions - 1);
    obs[2] = this.last / (nActions - 1);
    for (let i = 3; i < obsSize; i++) obs[i] = this.rng.int(1024) / 1024;
    return obs;
  }

  async reset(args: ResetArgs = {}): Promise<ResetResult<number[]>> {
    if (args.seed !== undefined) this.rng = new Rng(args.seed);
    this.t = 0;
    this.last = 0;
    this.target = this.rng.int(this.kwargs.nActions);
    return { observation: this.observe(), info: {} };
  }

  async step(action: number): Promise<StepResult<number[]>> {
    const reward = action === this.target ? 1 : 0;
    this.t++;
    this.last = action;
    this.target = this.rng.int(this.kwargs.nActions);
    const terminated = this.t >= this.kwargs.episodeLength;
    return { observation: this.observe(), reward, terminated, truncated: false, info: {} };
  }

  async close(): Promise<void> {}
}

register({
  id: 'Echo-v0',
  entryPoint: kwargs => new EchoEnv(kwargs as EchoKwargs),
  kwargsSchema: EchoKwargs,
  maxEpisodeSteps: 1000,
  description: 'Echo the target action shown in the observation; reward 1 when echoed. For tests and transport benchmarks.',
  deterministic: true,
});
