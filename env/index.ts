/** The environment core. Importing this module registers every built-in env. */
export * from './core.ts';
export * from './spaces.ts';
export * from '../core/errors.ts';
export * from '../core/rng.ts';
export * from './registry.ts';
export * from './wrappers.ts';
export * from './vector.ts';
export * from './checker.ts';
import './echo.ts';
import './teacher-student.ts';
export { EnvCache, resolveEnvContext, type EnvCacheOptions, type EnvContext, type ResolvedEnvContext } from './context.ts';
export { dialogResetInfo, dialogSpecOf, dialogStepInfo, type DialogInfo, type DialogResetInfo } from './dialog.ts';
