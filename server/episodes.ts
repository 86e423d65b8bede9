/**
 * What the protocol knows of a session's episodes, from the results it passes on: per sub-env the
 * episode index, its steps, whether it has ended, and the seed it was reset with. It answers the
 * `state` op, and tells the step check which sub-envs a next-step autoreset is about to reset (their
 * actions are ignored, as Gymnasium's, so they are not checked against the action space).
 */
import type { AutoresetMode, VectorStepResult } from '../env/core.ts';

export class EpisodeTracker {
  hasReset = false;
  resets = 0;
  steps = 0;
  readonly episode: number[];
  readonly episodeSteps: number[];
  readonly ended: boolean[];
  readonly seeds: (number | null)[];

  constructor(readonly numEnvs: number, readonly autoresetMode: AutoresetMode) {
    this.episode = new Array<number>(numEnvs).fill(-1);
    this.episodeSteps = new Array<number>(numEnvs).fill(0);
    this.ended = new Array<boolean>(numEnvs).fill(false);
    this.seeds = new Array<number | null>(numEnvs).fill(null);
  }

  /** Whether the next step ignores sub-env i's action (next-step mode resets it instead). */
  ignoresAction(i: number): boolean {
    return this.autoresetMode === 'next-step' && this.ended[i]!;
  }

  /** A reset went through: `seeds[i]` as sub-env i got it, `mask` the sub-envs it reset (null: all). */
  onReset(seeds: readonly (number | undefined)[], mask: readonly boolean[] | null): void {
    this.hasReset = true;
    this.resets++;
    for (let i = 0; i < this.numEnvs; i++) {
      if (mask && !mask[i]) continue;
      this.startEpisode(i, seeds[i] ?? null);
    }
  }

  /** A step went through with this result. */
  onStep(r: VectorStepResult): void {
    this.steps++;
    for (let i = 0; i < this.numEnvs; i++) {
      if (this.ignoresAction(i)) { this.startEpisode(i, null); continue; }
      this.episodeSteps[i]!++;
      if (r.terminated[i] || r.truncated[i]) {
        if (this.autoresetMode === 'same-step') this.startEpisode(i, null);
        else this.ended[i] = true;
      }
    }
  }

  private startEpisode(i: number, seed: number | null): void {
    this.episode[i]!++;
    this.episodeSteps[i] = 0;
    this.ended[i] = false;
    this.seeds[i] = seed;
  }
}
