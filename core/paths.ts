/**
 * The project's folders, named once. Everything that needs the project root, the runtime data
 * folder or the default base model imports it from here; nothing resolves these against the
 * current directory.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (this file is core/paths.ts). */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The configs/ folder: JSON configs and their TypeBox schemas. */
export const CONFIG_DIR = path.join(PROJECT_ROOT, 'configs');
/** The runtime folder (git-ignored): models, the database, remote model caches. */
export const DATA_DIR = path.join(PROJECT_ROOT, 'data');
/** The default base model checkpoint, relative to the project root (as configs spell it). */
export const DEFAULT_MODEL_DIR_REL = 'data/models/base';
/** The default base model checkpoint: the dialog envs' student and tokenizer, the KL prior. */
export const DEFAULT_MODEL_DIR = path.join(PROJECT_ROOT, DEFAULT_MODEL_DIR_REL);

/** The base model folder a command uses when none is given: `$COLLOQUY_BASE_MODEL`, else data/models/base. */
export function defaultModelDir(): string {
  const env = process.env.COLLOQUY_BASE_MODEL;
  return env ? path.resolve(env) : DEFAULT_MODEL_DIR;
}

/** A path from a config file: absolute as given, else relative to the project root. */
export function projectPath(p: string): string {
  return path.isAbsolute(p) ? p : path.join(PROJECT_ROOT, p);
}
