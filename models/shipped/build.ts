/**
 * Rebuilds the shipped base model (`models/shipped/base/`) bit for bit: the shipped corpus (checked
 * against its generator first), configs/models/base.json with `corpus: shipped`, seed 1, one
 * thread, BUILD_EPOCHS epochs and no wall-clock budget (the step count, not the minutes, ends it),
 * then the checkpoint without optimizer state, its metadata without the date and wall-clock time, and
 * SHA256SUMS. `--check` builds into a temporary folder and compares with the committed hashes
 * (exit 1 when they differ). The same backend and kernels give the same bytes (here: wasm with the
 * native AVX2 kernels, see native/README.md); `metadata.json` records which were used.
 *
 *   node bin/run.mjs models/shipped/build.ts [--check] [--out DIR]
 */
import { mkdtemp, mkdir, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../backend.ts';
import { pretrain, DEFAULT_MODEL_CONFIG } from '../pretrain.ts';
import { SHIPPED_FILES, SHIPPED_MODEL_DIR, SHIPPED_SUMS, parseSums, sumsOf } from '../shipped.ts';
import { SHIPPED_CORPUS_FILE } from '../../corpora/readers.ts';
import { generateShippedCorpus, toJsonl } from '../../corpora/shipped/generate.ts';

/** Passes over the shipped corpus's training tokens. */
export const BUILD_EPOCHS = 6;
export const BUILD_SEED = 1;

const { values } = parseArgs({ options: { check: { type: 'boolean', default: false }, out: { type: 'string' }, help: { type: 'boolean', default: false } } });
if (values.help) { console.log('usage: node bin/run.mjs models/shipped/build.ts [--check] [--out DIR]'); process.exit(0); }

if (toJsonl(generateShippedCorpus()) !== await readFile(SHIPPED_CORPUS_FILE, 'utf8')) {
  console.error(`error BAD_CONFIG: ${SHIPPED_CORPUS_FILE} is not what corpora/shipped/generate.ts writes; regenerate it first`);
  process.exit(1);
}
const backend = await initBackend('auto');
console.log(`build: backend ${backend.name} (${backend.features.join(', ')})`);
const work = await mkdtemp(path.join(os.tmpdir(), 'colloquy-shipped-'));
const t0 = Date.now();
await pretrain({
  out: work, configFile: DEFAULT_MODEL_CONFIG, dataDir: null, progressBar: false,
  overrides: { train: { corpus: 'shipped', epochs: BUILD_EPOCHS, minutes: 0, threads: 1, seed: BUILD_SEED } },
});
const out = values.check ? path.join(work, 'shipped') : path.resolve(values.out ?? SHIPPED_MODEL_DIR);
await mkdir(out, { recursive: true });
for (const f of SHIPPED_FILES) {
  if (f === 'metadata.json') {
    // The date and the wall-clock time are the only things that differ between two builds.
    const meta = JSON.parse(await readFile(path.join(work, f), 'utf8')) as Record<string, unknown>;
    delete meta.trainSeconds;
    delete meta.date;
    meta.build = { command: 'node bin/run.mjs models/shipped/build.ts', epochs: BUILD_EPOCHS, seed: BUILD_SEED, threads: 1 };
    await writeFile(path.join(out, f), JSON.stringify(meta, null, 2) + '\n');
  } else await copyFile(path.join(work, f), path.join(out, f));
}
const sums = await sumsOf(out);
console.log(`build: ${((Date.now() - t0) / 60000).toFixed(1)} min\n${sums}`);
if (values.check) {
  const want = parseSums(await readFile(path.join(SHIPPED_MODEL_DIR, SHIPPED_SUMS), 'utf8'), SHIPPED_SUMS);
  const got = parseSums(sums, 'build');
  const differ = SHIPPED_FILES.filter(f => want.get(f) !== got.get(f));
  await rm(work, { recursive: true, force: true });
  if (differ.length) { console.error(`error INTERNAL: rebuilt files differ from ${SHIPPED_MODEL_DIR}: ${differ.join(', ')}`); process.exit(1); }
  console.log(`build: bit for bit the same as ${SHIPPED_MODEL_DIR}`);
} else {
  await writeFile(path.join(out, SHIPPED_SUMS), sums);
  await rm(work, { recursive: true, force: true });
  console.log(`build: wrote ${out}`);
}
