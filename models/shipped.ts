/**
 * The reproducible base model (`models/shipped/base/`): pretrained on the shipped corpus by
 * `node bin/run.mjs models/shipped/build.ts` (fixed seed, one thread, a fixed number of steps, so
 * the same command on the same backend rebuilds it bit for bit), ≤ 10 MB without optimizer state.
 * The repository keeps only `SHA256SUMS` (the `sha256sum` format: the hashes the build must give);
 * the checkpoint itself is a build output, git-ignored. Once built, `installShippedModel` checks
 * each hash before it copies the checkpoint into place, so `npm start` serves in seconds instead of
 * pretraining for minutes.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ColloquyError } from '../core/errors.ts';
import { PROJECT_ROOT } from '../core/paths.ts';

/** The shipped checkpoint folder. */
export const SHIPPED_MODEL_DIR = path.join(PROJECT_ROOT, 'models', 'shipped', 'base');
/** The hash list inside it. */
export const SHIPPED_SUMS = 'SHA256SUMS';
/** The checkpoint files the shipped model has (no optimizer state), in the order SHA256SUMS lists them. */
export const SHIPPED_FILES = ['config.json', 'metadata.json', 'model.json', 'tokenizer.json', 'weights.bin'] as const;

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The `sha256sum` text of the files of a folder. */
export async function sumsOf(dir: string, files: readonly string[] = SHIPPED_FILES): Promise<string> {
  const lines: string[] = [];
  for (const f of files) lines.push(`${sha256(await readFile(path.join(dir, f)))}  ${f}`);
  return lines.join('\n') + '\n';
}

/** Parse `sha256sum` text into file → hash. */
export function parseSums(text: string, where: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (!m) throw new ColloquyError('BAD_CONFIG', `${where}: not a sha256sum line: ${line.slice(0, 80)}`);
    out.set(m[2]!, m[1]!);
  }
  return out;
}

/** Whether the shipped checkpoint has been built here (a fresh clone has only its SHA256SUMS). */
export function hasShippedModel(dir = SHIPPED_MODEL_DIR): boolean {
  return existsSync(path.join(dir, SHIPPED_SUMS)) && existsSync(path.join(dir, 'model.json'));
}

/**
 * Check every file of the shipped checkpoint against SHA256SUMS; throws BAD_CONFIG naming the
 * first file that differs or is missing. Returns the hashes.
 */
export async function verifyShippedModel(dir = SHIPPED_MODEL_DIR): Promise<Map<string, string>> {
  const sumsFile = path.join(dir, SHIPPED_SUMS);
  const sums = parseSums(await readFile(sumsFile, 'utf8').catch(() => { throw new ColloquyError('NOT_FOUND', `${sumsFile} is missing`); }), sumsFile);
  for (const f of SHIPPED_FILES) {
    const want = sums.get(f);
    if (!want) throw new ColloquyError('BAD_CONFIG', `${sumsFile} lists no hash for ${f}`);
    const data = await readFile(path.join(dir, f)).catch(() => { throw new ColloquyError('NOT_FOUND', `shipped model file ${path.join(dir, f)} is missing`); });
    const got = sha256(data);
    if (got !== want) {
      throw new ColloquyError('BAD_CONFIG', `shipped model file ${path.join(dir, f)} has SHA-256 ${got.slice(0, 12)}…, not ${want.slice(0, 12)}… as ${SHIPPED_SUMS} says (rebuild it: node bin/run.mjs models/shipped/build.ts)`);
    }
  }
  return sums;
}

/** Verify the shipped checkpoint and copy it into `dest` (atomically: a temp folder, then rename). */
export async function installShippedModel(dest: string, from = SHIPPED_MODEL_DIR): Promise<void> {
  await verifyShippedModel(from);
  const tmp = `${dest}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  for (const f of [...SHIPPED_FILES, SHIPPED_SUMS]) await copyFile(path.join(from, f), path.join(tmp, f));
  // The copy is checked too (a full disk or a bad copy is caught here, not at the first dialog).
  await verifyShippedModel(tmp);
  await mkdir(path.dirname(dest), { recursive: true });
  await rm(dest, { recursive: true, force: true });
  await rename(tmp, dest);
}
