/**
 * The shared data sets (`../shared/data` beside the checkout, or `$COLLOQUY_DATA_DIR`) for tests
 * that need them. They are not in the repository: a checkout without them skips those tests with
 * the reason in the title and a console note (`describeWithData`, `itWithData`), instead of failing
 * on a missing file or passing without having looked.
 *
 * COLLOQUY_TEST_NO_DATA=1 makes the tests behave as if the data were absent (to check the skips).
 */
import { existsSync } from 'node:fs';
import { describe, it } from 'vitest';
import path from 'node:path';
import { resolveDataDir } from '../../corpora/readers.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';

/** The data directory, or null when absent (or hidden by COLLOQUY_TEST_NO_DATA). */
export const SHARED_DATA: string | null = process.env.COLLOQUY_TEST_NO_DATA ? null : resolveDataDir();

/** A path inside the data directory (the default location when there is none, for messages). */
export function dataPath(...parts: string[]): string {
  return path.join(SHARED_DATA ?? path.resolve(PROJECT_ROOT, '..', 'shared', 'data'), ...parts);
}

/** Whether every one of these files (relative to the data directory) is there. */
export function hasData(...files: string[]): boolean {
  return SHARED_DATA !== null && files.every(f => existsSync(path.join(SHARED_DATA!, f)));
}

const noted = new Set<string>();

/**
 * The title of a test or suite that needs these data files: as given when they are there, else
 * with the reason it is skipped appended (and the same said once on the console).
 */
export function needsData(title: string, ...files: string[]): string {
  if (hasData(...files)) return title;
  const missing = SHARED_DATA === null ? 'no data directory (../shared/data or COLLOQUY_DATA_DIR)' : `missing ${files.filter(f => !existsSync(path.join(SHARED_DATA!, f))).join(', ')} in ${SHARED_DATA}`;
  const reason = `[skipped: needs ${files.join(', ') || 'the data directory'}; ${missing}]`;
  if (!noted.has(title)) { noted.add(title); console.warn(`${title} ${reason}`); }
  return `${title} ${reason}`;
}

/** A suite that needs these data files (relative to the data directory): skipped, saying why, without them. */
export function describeWithData(title: string, files: string[], fn: () => void): void {
  describe.skipIf(!hasData(...files))(needsData(title, ...files), fn);
}

/** A test that needs these data files: skipped, saying why, without them. */
export function itWithData(title: string, files: string[], fn: () => unknown, timeoutMs?: number): void {
  it.skipIf(!hasData(...files))(needsData(title, ...files), fn as () => Promise<void>, timeoutMs);
}
