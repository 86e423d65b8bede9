/**
 * Wrappers stacked by `make`, one cross-cutting rule each, innermost first: PassiveEnvChecker
 * (first reset/step outputs against the spaces), TimeLimit (the only wrapper that sets `truncated`
 * for the step cap), OrderEnforcing (no step before reset, after the end, or after close).
 */
import { Wrapper, type Env, type ResetArgs, type ResetResult, type StepResult } from './core.ts';
import { ColloquyError, EnvClosed, InvalidAction, ResetNeeded } from '../core/errors.ts';

/** Checks the env's own outputs once (first reset, first step); throws INTERNAL on a contract breach. */
export class PassiveEnvChecker<O, A> extends Wrapper<O, A> {
  private checkedReset = false;
  private checkedStep = false;

  override async reset(args?: ResetArgs): Promise<ResetResult<O>> {
    const r = await this.env.reset(args);
    if (!this.checkedReset) {
      this.checkedReset = true;
      if (typeof r !== 'object' || r === null || !('observation' in r) || typeof r.info !== 'object' || r.info === null) {
        throw new ColloquyError('INTERNAL', 'env.reset must return {observation, info}');
      }
      const why = this.observationSpace.explain(r.observation);
      if (why) throw new ColloquyError('INTERNAL', `reset observation outside observationSpace: ${why}`);
    }
    return r;
  }

  override async step(action: A): Promise<StepResult<O>> {
    const r = await this.env.step(action);
    if (!this.checkedStep) {
      this.checkedStep = true;
      if (typeof r.reward !== 'number' || !Number.isFinite(r.reward)) throw new ColloquyError('INTERNAL', `step reward must be a finite number, got ${String(r.reward)}`);
      if (typeof r.terminated !== 'boolean' || typeof r.truncated !== 'boolean') throw new ColloquyError('INTERNAL', 'step terminated/truncated must be booleans');
      if (typeof r.info !== 'object' || r.info === null) throw new ColloquyError('INTERNAL', 'step info must be an object');
      const why = this.observationSpace.explain(r.observation);
      if (why) throw new ColloquyError('INTERNAL', `step observation outside observationSpace: ${why}`);
    }
    return r;
  }
}

/**
 * Enforces reset before step, validates actions against the action space (INVALID_ACTION), and
 * refuses steps after the episode ended (RESET_NEEDED) or after close (CLOSED).
 */
export class OrderEnforcing<O, A> extends Wrapper<O, A> {
  private hasReset = false;
  private ended = false;
  private closed = false;

  override async reset(args?: ResetArgs): Promise<ResetResult<O>> {
    if (this.closed) throw new EnvClosed();
    const r = await this.env.reset(args);
    this.hasReset = true;
    this.ended = false;
    return r;
  }

  override async step(action: A): Promise<StepResult<O>> {
    if (this.closed) throw new EnvClosed();
    if (!this.hasReset) throw new ResetNeeded('step() before reset()');
    if (this.ended) throw new ResetNeeded('step() after the episode ended; call reset()');
    const why = this.actionSpace.explain(action);
    if (why) throw new InvalidAction(`invalid action: ${why}`);
    const r = await this.env.step(action);
    if (r.terminated || r.truncated) this.ended = true;
    return r;
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.env.close();
  }
}

/** Truncates the episode after `maxEpisodeSteps` steps, recording `info.truncatedBy = 'time-limit'`. */
export class TimeLimit<O, A> extends Wrapper<O, A> {
  private elapsed = 0;
  constructor(env: Env<O, A>, readonly maxEpisodeSteps: number) {
    super(env);
    if (!Number.isInteger(maxEpisodeSteps) || maxEpisodeSteps <= 0) throw new ColloquyError('BAD_CONFIG', 'maxEpisodeSteps must be a positive integer');
  }
  override async reset(args?: ResetArgs): Promise<ResetResult<O>> {
    this.elapsed = 0;
    return this.env.reset(args);
  }
  override async step(action: A): Promise<StepResult<O>> {
    const r = await this.env.step(action);
    this.elapsed++;
    if (this.elapsed >= this.maxEpisodeSteps && !r.terminated && !r.truncated) {
      return { ...r, truncated: true, info: { ...r.info, truncatedBy: 'time-limit' } };
    }
    return r;
  }
}
