/**
 * What an env gets from whoever makes it, instead of process-wide settings:
 *
 *   modelDir     the base model of the dialog envs whose kwargs name no `model`
 *                (default: core/paths.ts `defaultModelDir()`: $COLLOQUY_BASE_MODEL, else data/models/base)
 *   humanLobby   where `student: "human"` dialogs meet people (a server's chat lobby); without one,
 *                such a dialog fails at its first reset with BAD_CONFIG
 *   cache        loaded things that the envs made with this context share (see `EnvCache`)
 *   checkpoint   the folder of a checkpoint that kwargs name (`model`, `student.checkpoint`);
 *                default: the name is the folder (a server maps its ids, server/resources.ts)
 *
 * `make(id, kwargs, ctx)` and `makeVec(id, opts, ctx)` resolve it once and hand it to the env's
 * entry point. A server holds one per app (server/app.ts), so two servers in one process never see
 * each other's model folder, lobby or students.
 */
import path from 'node:path';
import { defaultModelDir } from '../core/paths.ts';
import { createScorer, type ScorerSpec } from '../rewards/sentiment.ts';
import type { SentimentScorer } from '../rewards/types.ts';
import type { HumanLobby } from './human.ts';
import type { LmStudent } from './students.ts';

export interface EnvContext {
  /** Base model folder of dialog envs whose kwargs name none. */
  modelDir?: string;
  /** The lobby human students talk to (null or absent: none). */
  humanLobby?: HumanLobby | null;
  /** Shared loaded things; absent: a new cache for this `make` / `makeVec` call (freed when its envs close). */
  cache?: EnvCache;
  /** The folder of a checkpoint named in kwargs (absent: the name is the folder). */
  checkpoint?: (name: string) => string;
}

/** An EnvContext with every field decided (what entry points receive). */
export interface ResolvedEnvContext {
  readonly modelDir: string;
  readonly humanLobby: HumanLobby | null;
  readonly cache: EnvCache;
  readonly checkpoint: (name: string) => string;
}

/**
 * Fill in the defaults. The result is a snapshot: changing `ctx` later does not change the envs
 * already made with it (their cache, an object, is still shared).
 */
export function resolveEnvContext(ctx: EnvContext = {}): ResolvedEnvContext {
  return {
    modelDir: path.resolve(ctx.modelDir ?? defaultModelDir()),
    humanLobby: ctx.humanLobby ?? null,
    cache: ctx.cache ?? new EnvCache({ disposeWhenUnused: true }),
    checkpoint: ctx.checkpoint ?? (name => name),
  };
}

export interface EnvCacheOptions {
  /**
   * Dispose the loaded scorers when the last env that used them closes (the cache a `make` call
   * makes for itself). A server's cache lives as long as the server and is disposed by it.
   */
  disposeWhenUnused?: boolean;
}

/**
 * Loaded things shared by the envs of one context — never by the whole process:
 *
 * - sentiment scorers, one per scorer spec: a classifier or ONNX model takes seconds and memory to
 *   load, so the dialog envs of one context (every sub-env of a vector env, every session of a
 *   server) load it once. The reward objects built on them are per env (their z-score statistics
 *   are that env's own); scorers are pure functions of the text.
 * - model students, one per student model and temperature: their batcher gathers the replies that
 *   all dialogs of the context ask for in the same tick into one batched sampling call.
 *
 * The language models themselves are loaded through env/dialog-model.ts, which keeps one per
 * checkpoint folder (immutable weights, keyed by absolute path, so sharing them carries no
 * configuration from one context to another).
 */
export class EnvCache {
  private readonly scorers = new Map<string, Promise<SentimentScorer>>();
  private readonly students = new Map<string, LmStudent>();
  private users = 0;

  constructor(private readonly opts: EnvCacheOptions = {}) {}

  /** The scorer of a spec, loaded on first use. A failed load is not kept. */
  scorer(spec: ScorerSpec): Promise<SentimentScorer> {
    const key = JSON.stringify(spec, Object.keys(spec).sort());
    let p = this.scorers.get(key);
    if (!p) {
      p = createScorer(spec);
      this.scorers.set(key, p);
      p.catch(() => { if (this.scorers.get(key) === p) this.scorers.delete(key); });
    }
    return p;
  }

  /** The model student under `key` (made by `create` the first time). */
  lmStudent(key: string, create: () => LmStudent): LmStudent {
    let s = this.students.get(key);
    if (!s) { s = create(); this.students.set(key, s); }
    return s;
  }

  /** An env starts using the cache; it calls `release` once when it closes. */
  retain(): void { this.users++; }

  async release(): Promise<void> {
    this.users = Math.max(0, this.users - 1);
    if (this.users === 0 && this.opts.disposeWhenUnused) await this.dispose();
  }

  /** Dispose every loaded scorer and forget the students (later requests load afresh). */
  async dispose(): Promise<void> {
    const scorers = [...this.scorers.values()];
    this.scorers.clear();
    this.students.clear();
    for (const p of scorers) {
      try { await (await p).dispose?.(); } catch { /* a failed load has nothing to dispose */ }
    }
  }
}
