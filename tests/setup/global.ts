/**
 * Global setup: a tiny base model checkpoint that the dialog envs use as their default model in
 * tests (COLLOQUY_BASE_MODEL), so that `checkEnv` can run over every registered env.
 */
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default async function setup(): Promise<() => void> {
  const { initBackend } = await import('../../models/backend.ts');
  await initBackend('auto');
  const { buildTinyModel } = await import('../helpers/tiny-model.ts');
  const dir = path.join(os.tmpdir(), `colloquy-test-base-${process.pid}`);
  await buildTinyModel({ dir });
  process.env.COLLOQUY_BASE_MODEL = dir;
  // Servers built by tests record dialogs in memory unless a test names a database file.
  process.env.COLLOQUY_DB ??= ':memory:';
  return () => rmSync(dir, { recursive: true, force: true });
}
