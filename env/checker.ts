/**
 * checkEnv: a conformance checker in the spirit of Gymnasium's `check_env`. It runs an env built by
 * a factory through the contract: spaces (instances, JSON round trip), return shapes, seed
 * determinism (same seed + same actions ⇒ same trajectory, bit for bit), step-before-reset error,
 * close twice. It throws an `EnvCheckError` listing every failure, and returns a report otherwise.
 */
import type { Env, StepResult } from './core.ts';
import { ColloquyError } from '../core/errors.ts';
import { Rng } from '../core/rng.ts';
import { Space, spaceFromJSON } from './spaces.ts';

export interface CheckEnvOptions {
  seed?: number;
  /** Steps per rollout in the determinism check. */
  maxSteps?: number;
  /** Check seed determinism (default: the env spec's `deterministic`, else true). */
  determinism?: boolean;
}

export interface CheckEnvReport { id: string | null; steps: number; checks: string[] }

export class EnvCheckError extends Error {
  constructor(readonly failures: string[]) {
    super(`env check failed:\n- ${failures.join('\n- ')}`);
    this.name = 'EnvCheckError';
  }
}

function checkSpace(space: unknown, what: string, fails: string[]): void {
  if (!(space instanceof Space)) { fails.push(`${what} is not a Space`); return; }
  const j = JSON.stringify(space.toJSON());
  const back = JSON.stringify(spaceFromJSON(JSON.parse(j)).toJSON());
  if (j !== back) fails.push(`${what} JSON does not round trip: ${j} vs ${back}`);
}

function checkStep(env: Env, r: StepResult, fails: string[], where: string): void {
  if (typeof r !== 'object' || r === null) { fails.push(`${where}: step returned ${String(r)}`); return; }
  if (typeof r.reward !== 'number' || !Number.isFinite(r.reward)) fails.push(`${where}: reward is not a finite number (${String(r.reward)})`);
  if (typeof r.terminated !== 'boolean') fails.push(`${where}: terminated is not a boolean`);
  if (typeof r.truncated !== 'boolean') fails.push(`${where}: truncated is not a boolean`);
  if (typeof r.info !== 'object' || r.info === null || Array.isArray(r.info)) fails.push(`${where}: info is not an object`);
  const why = env.observationSpace.explain(r.observation);
  if (why) fails.push(`${where}: observation outside observationSpace: ${why}`);
}

async function rollout(env: Env, seed: number, maxSteps: number, fails: string[]): Promise<string[]> {
  const trace: string[] = [];
  const r = await env.reset({ seed });
  trace.push(JSON.stringify([r.observation, r.info]));
  const rng = new Rng(seed ^ 0x5bd1e995);
  for (let t = 0; t < maxSteps; t++) {
    const a = env.actionSpace.sample(rng);
    const s = await env.step(a);
    checkStep(env, s, fails, `step ${t}`);
    trace.push(JSON.stringify([a, s.observation, s.reward, s.terminated, s.truncated, s.info]));
    if (s.terminated || s.truncated) break;
  }
  return trace;
}

function firstDiff(a: string[], b: string[]): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `at record ${i}: ${(a[i] ?? '<end>').slice(0, 160)} vs ${(b[i] ?? '<end>').slice(0, 160)}`;
  }
  return '';
}

export async function checkEnv(makeEnv: () => Env | Promise<Env>, opts: CheckEnvOptions = {}): Promise<CheckEnvReport> {
  const seed = opts.seed ?? 42;
  const maxSteps = opts.maxSteps ?? 64;
  const fails: string[] = [];
  const checks: string[] = [];
  const env = await makeEnv();
  const id = env.spec?.id ?? null;

  checkSpace(env.observationSpace, 'observationSpace', fails);
  checkSpace(env.actionSpace, 'actionSpace', fails);
  checks.push('spaces');

  // Step before reset must fail with RESET_NEEDED.
  try {
    await env.step(env.actionSpace.sample(new Rng(seed)));
    fails.push('step() before reset() did not throw');
  } catch (err) {
    if (!(err instanceof ColloquyError) || err.code !== 'RESET_NEEDED') fails.push(`step() before reset() threw ${String(err)} instead of RESET_NEEDED`);
  }
  checks.push('step-before-reset');

  // Reset return shape.
  const r = await env.reset({ seed });
  if (typeof r !== 'object' || r === null || typeof r.info !== 'object' || r.info === null) fails.push('reset must return {observation, info}');
  else {
    const why = env.observationSpace.explain(r.observation);
    if (why) fails.push(`reset observation outside observationSpace: ${why}`);
  }
  checks.push('reset-shape');

  // Seed determinism: same env twice, and a second env, with the same seed and actions.
  const a = await rollout(env, seed, maxSteps, fails);
  const steps = a.length - 1;
  checks.push('step-shape');
  const deterministic = opts.determinism ?? env.spec?.deterministic ?? true;
  if (deterministic) {
    const b = await rollout(env, seed, maxSteps, fails);
    if (a.join('\n') !== b.join('\n')) fails.push(`same seed on the same env gave different trajectories ${firstDiff(a, b)}`);
    const env2 = await makeEnv();
    const c = await rollout(env2, seed, maxSteps, fails);
    if (a.join('\n') !== c.join('\n')) fails.push(`same seed on a new env gave a different trajectory ${firstDiff(a, c)}`);
    const d = await rollout(env2, seed + 1, maxSteps, fails);
    if (a.join('\n') === d.join('\n') && steps > 0) checks.push('note: seed+1 gave the same trajectory (no randomness?)');
    await env2.close();
    checks.push('determinism');
  }

  // Close twice.
  try { await env.close(); await env.close(); } catch (err) { fails.push(`close() twice threw ${String(err)}`); }
  checks.push('close-twice');

  if (fails.length) throw new EnvCheckError([...new Set(fails)]);
  return { id, steps, checks };
}
