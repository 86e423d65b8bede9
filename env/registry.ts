/**
 * The env registry: versioned ids (`Name-vN`), `make(id, kwargs, ctx)` that stacks the standard
 * wrappers, `makeVec` for N sub-envs, and "did you mean" on a lookup failure. What an env needs
 * from its maker (base model folder, human lobby, shared loaded models) comes in the explicit
 * context `ctx` (env/context.ts), never from process-wide settings.
 */
import type { TSchema } from '@sinclair/typebox';
import type { AutoresetMode, DialogSpec, Env, EnvSpec, VectorEnv } from './core.ts';
import { BadConfig, NameNotFound } from '../core/errors.ts';
import { OrderEnforcing, PassiveEnvChecker, TimeLimit } from './wrappers.ts';
import { SyncVectorEnv } from './vector.ts';
import { validateConfig } from '../core/config.ts';
import { resolveEnvContext, type EnvContext, type ResolvedEnvContext } from './context.ts';

export type Kwargs = Record<string, unknown>;

export interface EnvRegistration {
  /** Versioned id, e.g. `TeacherStudent-v0`. */
  id: string;
  /** Builds the raw env from validated kwargs (defaults filled) and its maker's context. */
  entryPoint: (kwargs: Kwargs, ctx: ResolvedEnvContext) => Env;
  /**
   * Builds a vector env natively (e.g. batching a language model across dialogs). When absent,
   * `makeVec` steps N wrapped envs together (all made with the same context).
   */
  vectorEntryPoint?: (numEnvs: number, kwargs: Kwargs, autoresetMode: AutoresetMode, ctx: ResolvedEnvContext) => VectorEnv;
  /** TypeBox schema of the kwargs (validated at `make`; defaults filled from it). */
  kwargsSchema?: TSchema;
  /** Step cap for the TimeLimit wrapper, or null for none. */
  maxEpisodeSteps?: number | null;
  description: string;
  /** False when trajectories cannot be reproduced from a seed (e.g. a human student); may depend on the kwargs. */
  deterministic?: boolean | ((kwargs: Kwargs) => boolean);
  /** Declares the dialog capability (`spec.dialog`, env/dialog.ts) for these kwargs; absent: not a dialog env. */
  dialog?: (kwargs: Kwargs) => DialogSpec;
}

const ID_RE = /^([A-Za-z][\w.:-]*?)-v(\d+)$/;
const entries = new Map<string, EnvRegistration>();

/** Register an env id. Registering the same id twice is an error (use a new version). */
export function register(reg: EnvRegistration): void {
  if (!ID_RE.test(reg.id)) throw new BadConfig(`env id '${reg.id}' must look like Name-vN`);
  if (entries.has(reg.id)) throw new BadConfig(`env id '${reg.id}' is already registered`);
  entries.set(reg.id, reg);
}

/** Remove an id (tests). */
export function unregister(id: string): boolean { return entries.delete(id); }

export function registeredIds(): string[] { return [...entries.keys()].sort(); }
/** Whether an env id is registered (a Map lookup: safe for any client-chosen string). */
export function isRegistered(id: string): boolean { return entries.has(id); }

function lookup(id: string): EnvRegistration {
  const reg = entries.get(id);
  if (!reg) throw new NameNotFound(String(id), suggest(String(id)) ?? undefined);
  return reg;
}

function resolveKwargs(reg: EnvRegistration, kwargs: Kwargs | undefined): Kwargs {
  if (kwargs !== undefined && (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs))) {
    throw new BadConfig(`kwargs for ${reg.id} must be an object`);
  }
  return reg.kwargsSchema ? validateConfig(reg.kwargsSchema, kwargs ?? {}, `kwargs for ${reg.id}`) as Kwargs : { ...(kwargs ?? {}) };
}

function specOf(reg: EnvRegistration, kwargs: Kwargs): EnvSpec {
  return {
    id: reg.id,
    maxEpisodeSteps: reg.maxEpisodeSteps ?? null,
    kwargs,
    description: reg.description,
    deterministic: typeof reg.deterministic === 'function' ? reg.deterministic(kwargs) : reg.deterministic ?? true,
    ...(reg.dialog ? { dialog: reg.dialog(kwargs) } : {}),
  };
}

/** The spec of a registered id with its default kwargs. */
export function getSpec(id: string): EnvSpec {
  const reg = lookup(id);
  return specOf(reg, resolveKwargs(reg, {}));
}

/** Specs of every registered env, sorted by id. */
export function listSpecs(): EnvSpec[] { return registeredIds().map(getSpec); }

/** Wrap a raw env the way `make` does. */
export function wrapEnv(env: Env, spec: EnvSpec): Env {
  env.spec = spec;
  let out: Env = new PassiveEnvChecker(env);
  if (spec.maxEpisodeSteps !== null) out = new TimeLimit(out, spec.maxEpisodeSteps);
  // Outermost, so that it sees the time limit's truncation and refuses steps after it.
  return new OrderEnforcing(out);
}

/**
 * Build an env by id: validated kwargs, then PassiveEnvChecker → TimeLimit → OrderEnforcing.
 * `ctx`: what the env gets from its maker (env/context.ts; defaults: the default base model, no
 * human lobby, a cache of its own).
 */
export function make(id: string, kwargs?: Kwargs, ctx?: EnvContext): Env {
  const reg = lookup(id);
  const kw = resolveKwargs(reg, kwargs);
  return wrapEnv(reg.entryPoint(kw, resolveEnvContext(ctx)), specOf(reg, kw));
}

export interface MakeVecOptions { numEnvs?: number; kwargs?: Kwargs; autoresetMode?: AutoresetMode }

/** Build a vector env of `numEnvs` sub-envs (native when the env provides one), all with the context `ctx` (see `make`). */
export function makeVec(id: string, opts: MakeVecOptions = {}, ctx?: EnvContext): VectorEnv {
  const reg = lookup(id);
  const numEnvs = opts.numEnvs ?? 1;
  if (!Number.isInteger(numEnvs) || numEnvs < 1) throw new BadConfig(`numEnvs must be a positive integer, got ${String(numEnvs)}`);
  const mode = opts.autoresetMode ?? 'next-step';
  if (!['next-step', 'same-step', 'disabled'].includes(mode)) throw new BadConfig(`unknown autoresetMode '${String(mode)}'`);
  const kw = resolveKwargs(reg, opts.kwargs);
  const spec = specOf(reg, kw);
  // One context for every sub-env: they share its cache (one student batcher, one loaded scorer).
  const c = resolveEnvContext(ctx);
  if (reg.vectorEntryPoint) {
    const v = reg.vectorEntryPoint(numEnvs, kw, mode, c);
    v.spec = spec;
    return v;
  }
  const envs: Env[] = [];
  for (let i = 0; i < numEnvs; i++) envs.push(wrapEnv(reg.entryPoint(kw, c), spec));
  const v = new SyncVectorEnv(envs, mode);
  v.spec = spec;
  return v;
}

/** The registered id nearest to `id` (same name at another version first, then edit distance). */
export function suggest(id: string): string | null {
  const ids = registeredIds();
  if (!ids.length) return null;
  const name = id.replace(/-v\d*$/, '').toLowerCase();
  const sameName = ids.filter(x => x.replace(/-v\d+$/, '').toLowerCase() === name);
  if (sameName.length) return sameName[sameName.length - 1]!;
  let best: string | null = null; let bestD = Infinity;
  for (const cand of ids) {
    const d = editDistance(id.toLowerCase(), cand.toLowerCase());
    if (d < bestD) { bestD = d; best = cand; }
  }
  return best !== null && bestD <= Math.max(2, Math.floor(best.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  if (a.length > 200 || b.length > 200) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
