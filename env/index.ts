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
export { setDefaultModelDir, defaultModelDir } from './dialog-model.ts';
