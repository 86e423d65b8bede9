/**
 * SyncVectorEnv: N (wrapped) sub-envs stepped together in one call, with Gymnasium's autoreset
 * modes (see `VectorEnv` in core.ts for the exact semantics). "Sync" as in Gymnasium: in this
 * process; the sub-envs' async steps run concurrently so that shared models batch across them.
 */
import { subEnvSeed, type AutoresetMode, type Env, type EnvSpec, type Info, type VectorEnv, type VectorResetArgs, type VectorResetResult, type VectorStepResult } from './core.ts';
import type { Space } from './spaces.ts';
import { BadConfig, EnvClosed, InvalidAction, ResetNeeded } from '../core/errors.ts';

export class SyncVectorEnv<O = unknown, A = unknown> implements VectorEnv<O, A> {
  readonly numEnvs: number;
  readonly singleObservationSpace: Space<O>;
  readonly singleActionSpace: Space<A>;
  spec: EnvSpec | null = null;
  private readonly observations: O[];
  /** Sub-envs whose episode ended on the last step (reset at the next step in next-step mode). */
  private readonly ended: boolean[];
  private hasReset = false;
  private closed = false;

  constructor(readonly envs: Env<O, A>[], readonly autoresetMode: AutoresetMode = 'next-step') {
    if (!envs.length) throw new BadConfig('a vector env needs at least one sub-env');
    this.numEnvs = envs.length;
    this.singleObservationSpace = envs[0]!.observationSpace;
    this.singleActionSpace = envs[0]!.actionSpace;
    this.observations = new Array<O>(envs.length);
    this.ended = new Array<boolean>(envs.length).fill(false);
  }

  async reset(args: VectorResetArgs = {}): Promise<VectorResetResult<O>> {
    if (this.closed) throw new EnvClosed();
    const seeds = this.envs.map((_, i) => subEnvSeed(args.seed, i, this.numEnvs));
    const mask = (args.options as { resetMask?: unknown } | undefined)?.resetMask;
    if (mask !== undefined && (!Array.isArray(mask) || mask.length !== this.numEnvs || mask.some(m => typeof m !== 'boolean'))) {
      throw new BadConfig(`options.resetMask must be ${this.numEnvs} booleans`);
    }
    if (mask && !this.hasReset && (mask as boolean[]).some(m => !m)) throw new ResetNeeded('the first reset must reset every sub-env');
    const { resetMask: _ignored, ...subOptions } = (args.options ?? {}) as Record<string, unknown>;
    const infos: Info[] = new Array(this.numEnvs);
    await Promise.all(this.envs.map(async (env, i) => {
      if (mask && !(mask as boolean[])[i]) { infos[i] = {}; return; }
      const r = await env.reset({
        ...(seeds[i] !== undefined ? { seed: seeds[i] } : {}),
        ...(Object.keys(subOptions).length ? { options: subOptions } : {}),
      });
      this.observations[i] = r.observation;
      this.ended[i] = false;
      infos[i] = r.info;
    }));
    this.hasReset = true;
    return { observations: this.observations.slice(), infos };
  }

  async step(actions: A[]): Promise<VectorStepResult<O>> {
    if (this.closed) throw new EnvClosed();
    if (!this.hasReset) throw new ResetNeeded('step() before reset()');
    if (!Array.isArray(actions) || actions.length !== this.numEnvs) {
      throw new InvalidAction(`expected ${this.numEnvs} actions, got ${Array.isArray(actions) ? actions.length : typeof actions}`);
    }
    const n = this.numEnvs;
    const rewards = new Array<number>(n);
    const terminated = new Array<boolean>(n);
    const truncated = new Array<boolean>(n);
    const infos = new Array<Info>(n);
    if (this.autoresetMode === 'disabled') {
      const i = this.ended.indexOf(true);
      if (i >= 0) throw new ResetNeeded(`sub-env ${i} ended; reset it with options.resetMask (autoresetMode 'disabled')`);
    }
    // Check every action first, so that a bad one leaves every sub-env as it was.
    for (let i = 0; i < n; i++) {
      if (this.ended[i]) continue;
      const why = this.singleActionSpace.explain(actions[i]);
      if (why) throw new InvalidAction(`invalid action for sub-env ${i}: ${why}`);
    }
    // Sub-envs step concurrently (each on its own state and random stream), so that envs sharing a
    // model can batch their work (see batcher.ts); results are placed by index.
    await Promise.all(this.envs.map(async (env, i) => {
      if (this.ended[i]) {
        const r = await env.reset();
        this.observations[i] = r.observation;
        this.ended[i] = false;
        rewards[i] = 0; terminated[i] = false; truncated[i] = false;
        infos[i] = { ...r.info, autoreset: true };
        return;
      }
      const r = await env.step(actions[i]!);
      rewards[i] = r.reward; terminated[i] = r.terminated; truncated[i] = r.truncated;
      if ((r.terminated || r.truncated) && this.autoresetMode === 'same-step') {
        const rr = await env.reset();
        this.observations[i] = rr.observation;
        infos[i] = { ...rr.info, finalObservation: r.observation, finalInfo: r.info };
      } else {
        this.observations[i] = r.observation;
        infos[i] = r.info;
        if (r.terminated || r.truncated) this.ended[i] = true;
      }
    }));
    return { observations: this.observations.slice(), rewards, terminated, truncated, infos };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const e of this.envs) await e.close();
  }
}
