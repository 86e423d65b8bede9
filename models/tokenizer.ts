/**
 * Byte-level BPE tokenizer (GPT-2 style), trained here on the dialog corpus and saved as a Hugging
 * Face `tokenizer.json` that `tokenizers` (Python/Rust) and transformers.js read and encode
 * identically.
 *
 * Pipeline, the same as Hugging Face's for this configuration:
 *   1. added tokens (`<|endoftext|>`, `<|pad|>`, `\n\nStudent:`, `\n\nTeacher:`) are matched
 *      literally, leftmost first, and never go through BPE;
 *   2. the rest is split by the GPT-2 pre-tokenization regex (`PRETOKEN_RE`);
 *   3. each piece is turned into UTF-8 bytes, each byte into one printable character (GPT-2's
 *      byte-to-unicode table: a space is `Ġ`, a newline `Ċ`), and BPE merges are applied by rank
 *      (lowest rank first, leftmost on ties).
 * Decoding concatenates the tokens' bytes and decodes UTF-8. Every byte is in the vocabulary, so
 * `decode(encode(s)) === s` for every well-formed string. Strings are UTF-16 in JS: a lone surrogate
 * (not valid Unicode, not representable in UTF-8) is encoded as U+FFFD's bytes, exactly as
 * `TextEncoder` does, so it decodes to U+FFFD. Decoding an arbitrary id sequence never throws:
 * incomplete or invalid UTF-8 becomes U+FFFD; `TokenStreamDecoder` decodes a stream of ids into
 * complete characters as they arrive (for streaming a reply).
 *
 * Training is the classic BPE trainer over a word-frequency table with incremental pair counts and
 * a lazy max-heap (as in Hugging Face's trainer), so ~2 MB of text trains in seconds.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BadConfig } from '../core/errors.ts';
import { END_OF_TEXT, PAD, SPECIAL_TOKENS, TURN_STUDENT, TURN_TEACHER } from '../core/markers.ts';

// ---------------------------------------------------------------------------------------------
// Constants


/**
 * GPT-2's pre-tokenization regex, exactly as Hugging Face's ByteLevel pre-tokenizer (and
 * transformers.js) writes it: contractions, optional-space + letters, optional-space + digits,
 * optional-space + other symbols, whitespace not followed by a non-space, whitespace.
 */
export const PRETOKEN_RE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's byte → printable character table (bytes that are printable map to themselves). */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const table: string[] = new Array(256);
  for (const b of bs) table[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (table[b] === undefined) table[b] = String.fromCharCode(256 + n++);
  return table;
})();
const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_UNICODE.map((c, b) => [c, b]));

const utf8Encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// The Hugging Face tokenizer.json shape (the parts this module writes and reads)

export interface HfAddedToken {
  id: number; content: string; single_word: boolean; lstrip: boolean; rstrip: boolean;
  normalized: boolean; special: boolean;
}
export interface HfByteLevel { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean }
export interface HfBpeModel {
  type: 'BPE'; dropout: null; unk_token: null; continuing_subword_prefix: null; end_of_word_suffix: null;
  fuse_unk: boolean; byte_fallback: boolean; ignore_merges: boolean;
  vocab: Record<string, number>;
  /** "left right" strings (older and transformers.js-compatible form). */
  merges: string[];
}
export interface HfTokenizerJson {
  version: string;
  truncation: null; padding: null;
  added_tokens: HfAddedToken[];
  normalizer: null;
  pre_tokenizer: HfByteLevel;
  post_processor: null;
  decoder: HfByteLevel;
  model: HfBpeModel;
}

export interface TrainOptions {
  /** Total vocabulary size including the 4 added tokens and the 256 byte tokens (default 4000). */
  vocabSize?: number;
  /** A pair must occur at least this often (counted over the corpus) to be merged (default 2). */
  minFrequency?: number;
  /** Called every few hundred merges with (vocabulary so far, target). */
  onProgress?: (size: number, target: number) => void;
}

export interface DecodeOptions {
  /** Drop `<|endoftext|>` and `<|pad|>` (the turn markers are text and stay). */
  skipSpecial?: boolean;
}

const CACHE_LIMIT = 100_000;

// ---------------------------------------------------------------------------------------------

export class BpeTokenizer {
  /** Ids of the added tokens. */
  readonly special: { readonly endOfText: number; readonly pad: number; readonly student: number; readonly teacher: number };

  /** id → vocabulary string (byte-level characters; added tokens: their content). */
  private readonly tokens: string[];
  private readonly tokenIds: Map<string, number>;
  /** id → the bytes it stands for (added tokens: the UTF-8 of their content). */
  private readonly bytes: Uint8Array[];
  private readonly byteToId: Int32Array;
  /** ranks[left] maps right → merge rank; mergeResult[rank] is the merged id. */
  private readonly ranks: Map<number, number>[];
  private readonly merges: [number, number][];
  private readonly mergeResult: Int32Array;
  private readonly added: HfAddedToken[];
  private readonly addedByContent: Map<string, number>;
  private readonly addedRe: RegExp | null;
  private readonly skippable: Set<number>;
  private readonly cache = new Map<string, readonly number[]>();

  private constructor(tokens: string[], merges: [number, number][], added: HfAddedToken[]) {
    this.tokens = tokens;
    this.tokenIds = new Map();
    tokens.forEach((t, id) => { if (t !== undefined) this.tokenIds.set(t, id); });
    this.added = added.slice().sort((a, b) => a.id - b.id);
    this.addedByContent = new Map(this.added.map(t => [t.content, t.id]));
    for (const t of this.added) this.tokenIds.set(t.content, t.id);

    this.bytes = new Array(tokens.length);
    for (let id = 0; id < tokens.length; id++) {
      const t = tokens[id];
      if (t === undefined) { this.bytes[id] = new Uint8Array(0); continue; }
      if (this.added.some(a => a.id === id)) { this.bytes[id] = utf8Encoder.encode(t); continue; }
      const out = new Uint8Array(t.length);
      for (let i = 0; i < t.length; i++) {
        const b = UNICODE_TO_BYTE.get(t[i]!);
        if (b === undefined) throw new BadConfig(`tokenizer: vocabulary entry ${JSON.stringify(t)} (id ${id}) is not byte-level`);
        out[i] = b;
      }
      this.bytes[id] = out;
    }
    this.byteToId = new Int32Array(256).fill(-1);
    for (let b = 0; b < 256; b++) {
      const id = this.tokenIds.get(BYTE_TO_UNICODE[b]!);
      if (id === undefined || this.addedByContent.has(BYTE_TO_UNICODE[b]!)) throw new BadConfig(`tokenizer: byte ${b} has no token; a byte-level vocabulary needs all 256`);
      this.byteToId[b] = id;
    }

    this.merges = merges;
    this.ranks = Array.from({ length: tokens.length }, () => new Map<number, number>());
    this.mergeResult = new Int32Array(merges.length);
    merges.forEach(([a, b], rank) => {
      const merged = this.tokenIds.get(tokens[a]! + tokens[b]!);
      if (merged === undefined) throw new BadConfig(`tokenizer: merge ${rank} (${tokens[a]} ${tokens[b]}) makes a token not in the vocabulary`);
      // The first (lowest-rank) occurrence of a pair wins, as in Hugging Face.
      if (!this.ranks[a]!.has(b)) this.ranks[a]!.set(b, rank);
      this.mergeResult[rank] = merged;
    });

    const find = (content: string): number => {
      const id = this.addedByContent.get(content);
      if (id === undefined) throw new BadConfig(`tokenizer: missing added token ${JSON.stringify(content)}`);
      return id;
    };
    this.special = { endOfText: find(END_OF_TEXT), pad: find(PAD), student: find(TURN_STUDENT), teacher: find(TURN_TEACHER) };
    this.skippable = new Set([this.special.endOfText, this.special.pad]);
    // Longest first so that no added token can shadow a longer one that starts at the same place.
    const contents = this.added.map(t => t.content).sort((a, b) => b.length - a.length);
    this.addedRe = contents.length ? new RegExp(contents.map(escapeRegExp).join('|'), 'g') : null;
  }

  // ------------------------------------------------------------------ training

  /**
   * Train on texts. Added tokens inside the texts are cut out first (they never merge with their
   * neighbours). Deterministic: the same texts (in any order) and options give the same tokenizer.
   */
  static train(texts: Iterable<string>, opts: TrainOptions = {}): BpeTokenizer {
    const vocabSize = opts.vocabSize ?? 4000;
    const minFrequency = Math.max(1, opts.minFrequency ?? 2);
    const base = SPECIAL_TOKENS.length + 256;
    if (!Number.isInteger(vocabSize) || vocabSize < base) throw new BadConfig(`tokenizer: vocabSize must be an integer ≥ ${base} (4 added tokens + 256 bytes), got ${vocabSize}`);

    // Word-frequency table over pre-tokens.
    const wordCounts = new Map<string, number>();
    const specialRe = new RegExp(SPECIAL_TOKENS.map(escapeRegExp).join('|'), 'g');
    for (const text of texts) {
      for (const section of text.split(specialRe)) {
        if (!section) continue;
        const pieces = section.match(PRETOKEN_RE);
        if (!pieces) continue;
        for (const p of pieces) wordCounts.set(p, (wordCounts.get(p) ?? 0) + 1);
      }
    }

    // Initial vocabulary: added tokens 0..3, then the 256 bytes in byte order.
    const tokens: string[] = [...SPECIAL_TOKENS];
    for (let b = 0; b < 256; b++) tokens.push(BYTE_TO_UNICODE[b]!);
    const ids = new Map<string, number>();
    for (let b = 0; b < 256; b++) ids.set(BYTE_TO_UNICODE[b]!, SPECIAL_TOKENS.length + b);

    // Words as id arrays, sorted so that the result does not depend on the order of the texts.
    const entries = [...wordCounts.entries()].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    const words: number[][] = new Array(entries.length);
    const freqs = new Float64Array(entries.length);
    entries.forEach(([w, c], i) => {
      const bs = utf8Encoder.encode(w);
      const arr = new Array<number>(bs.length);
      for (let j = 0; j < bs.length; j++) arr[j] = SPECIAL_TOKENS.length + bs[j]!;
      words[i] = arr; freqs[i] = c;
    });

    // Pair statistics. A pair (a, b) is keyed a * K + b.
    const K = vocabSize;
    const counts = new Map<number, number>();
    const where = new Map<number, Set<number>>();
    for (let w = 0; w < words.length; w++) {
      const word = words[w]!; const f = freqs[w]!;
      for (let j = 0; j + 1 < word.length; j++) {
        const key = word[j]! * K + word[j + 1]!;
        counts.set(key, (counts.get(key) ?? 0) + f);
        let s = where.get(key); if (!s) where.set(key, s = new Set()); s.add(w);
      }
    }
    const heap = new PairHeap();
    for (const [key, c] of counts) heap.push(c, key);

    const merges: [number, number][] = [];
    const delta = new Map<number, number>();
    while (tokens.length < vocabSize && heap.size > 0) {
      const top = heap.pop()!;
      const current = counts.get(top.key) ?? 0;
      if (current !== top.count) { if (current > 0) heap.push(current, top.key); continue; }
      if (current < minFrequency) break;
      const a = Math.floor(top.key / K), b = top.key % K;
      const str = tokens[a]! + tokens[b]!;
      let x = ids.get(str);
      if (x === undefined) { x = tokens.length; tokens.push(str); ids.set(str, x); }
      merges.push([a, b]);

      delta.clear();
      const add = (key: number, v: number) => delta.set(key, (delta.get(key) ?? 0) + v);
      for (const w of where.get(top.key) ?? []) {
        const word = words[w]!; const f = freqs[w]!;
        const out: number[] = [];
        let changed = false;
        for (let j = 0; j < word.length;) {
          if (j + 1 < word.length && word[j] === a && word[j + 1] === b) {
            changed = true;
            if (out.length) { const p = out[out.length - 1]!; add(p * K + a, -f); add(p * K + x, f); }
            add(top.key, -f);
            if (j + 2 < word.length) { const n = word[j + 2]!; add(b * K + n, -f); add(x * K + n, f); }
            out.push(x); j += 2;
          } else { out.push(word[j]!); j++; }
        }
        if (!changed) continue;
        words[w] = out;
        for (let j = 0; j + 1 < out.length; j++) {
          if (out[j] !== x && out[j + 1] !== x) continue;
          const key = out[j]! * K + out[j + 1]!;
          let s = where.get(key); if (!s) where.set(key, s = new Set()); s.add(w);
        }
      }
      where.delete(top.key);
      for (const [key, d] of delta) {
        if (d === 0) continue;
        const c = (counts.get(key) ?? 0) + d;
        if (c <= 0) counts.delete(key); else counts.set(key, c);
        if (d > 0) heap.push(c, key);
      }
      if (opts.onProgress && merges.length % 250 === 0) opts.onProgress(tokens.length, vocabSize);
    }
    opts.onProgress?.(tokens.length, vocabSize);

    const added: HfAddedToken[] = SPECIAL_TOKENS.map((content, id) => ({
      id, content, single_word: false, lstrip: false, rstrip: false, normalized: false,
      // The turn markers are text (kept by decode with skip-special); the other two are control tokens.
      special: content === END_OF_TEXT || content === PAD,
    }));
    return new BpeTokenizer(tokens, merges, added);
  }

  // ------------------------------------------------------------------ (de)serialisation

  /** Read a Hugging Face tokenizer.json object (byte-level BPE, as written by `toJSON`). */
  static fromJSON(obj: unknown): BpeTokenizer {
    const o = obj as Partial<HfTokenizerJson> | null;
    if (!o || typeof o !== 'object') throw new BadConfig('tokenizer.json: not an object');
    const model = o.model;
    if (!model || model.type !== 'BPE' || typeof model.vocab !== 'object' || !Array.isArray(model.merges)) {
      throw new BadConfig('tokenizer.json: model must be {type: "BPE", vocab, merges}');
    }
    if (model.continuing_subword_prefix || model.end_of_word_suffix || model.byte_fallback || model.dropout) {
      throw new BadConfig('tokenizer.json: only plain byte-level BPE is supported (no prefixes, suffixes, byte fallback or dropout)');
    }
    const pre = o.pre_tokenizer;
    if (!pre || pre.type !== 'ByteLevel' || pre.add_prefix_space || pre.use_regex === false) {
      throw new BadConfig('tokenizer.json: pre_tokenizer must be ByteLevel with use_regex and without add_prefix_space');
    }
    if (o.normalizer) throw new BadConfig('tokenizer.json: normalizers are not supported');
    const tokens: string[] = [];
    for (const [tok, id] of Object.entries(model.vocab)) {
      if (!Number.isInteger(id) || id < 0) throw new BadConfig(`tokenizer.json: bad id for ${JSON.stringify(tok)}`);
      if (tokens[id] !== undefined) throw new BadConfig(`tokenizer.json: id ${id} used twice`);
      tokens[id] = tok;
    }
    const added = (o.added_tokens ?? []).map(t => ({
      id: t.id, content: t.content, single_word: !!t.single_word, lstrip: !!t.lstrip, rstrip: !!t.rstrip,
      normalized: !!t.normalized, special: !!t.special,
    }));
    for (const t of added) {
      if (t.lstrip || t.rstrip || t.single_word) throw new BadConfig(`tokenizer.json: added token ${JSON.stringify(t.content)}: lstrip/rstrip/single_word are not supported`);
      if (tokens[t.id] !== undefined && tokens[t.id] !== t.content) throw new BadConfig(`tokenizer.json: added token id ${t.id} clashes with ${JSON.stringify(tokens[t.id])}`);
      tokens[t.id] = t.content;
    }
    for (let i = 0; i < tokens.length; i++) if (tokens[i] === undefined) throw new BadConfig(`tokenizer.json: ids are not contiguous (no token ${i})`);
    const idOf = new Map(tokens.map((t, i) => [t, i]));
    for (const t of added) idOf.set(t.content, t.id);
    const merges: [number, number][] = (model.merges as unknown[]).map((m, rank) => {
      const pair = typeof m === 'string' ? splitMerge(m) : Array.isArray(m) && m.length === 2 ? m as [string, string] : null;
      const a = pair ? idOf.get(pair[0]) : undefined, b = pair ? idOf.get(pair[1]) : undefined;
      if (a === undefined || b === undefined) throw new BadConfig(`tokenizer.json: merge ${rank} (${JSON.stringify(m)}) names unknown tokens`);
      return [a, b];
    });
    return new BpeTokenizer(tokens, merges, added);
  }

  static async load(file: string): Promise<BpeTokenizer> {
    let text: string;
    try { text = await readFile(file, 'utf8'); } catch (err) {
      throw new BadConfig(`tokenizer: cannot read ${file}: ${(err as Error).message}`);
    }
    let obj: unknown;
    try { obj = JSON.parse(text); } catch (err) { throw new BadConfig(`tokenizer: ${file} is not JSON: ${(err as Error).message}`); }
    return BpeTokenizer.fromJSON(obj);
  }

  /** The Hugging Face tokenizer.json object. */
  toJSON(): HfTokenizerJson {
    const vocab: Record<string, number> = {};
    this.tokens.forEach((t, id) => { vocab[t] = id; });
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: this.added.map(t => ({ ...t })),
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: false,
        vocab,
        merges: this.merges.map(([a, b]) => `${this.tokens[a]} ${this.tokens[b]}`),
      },
    };
  }

  /**
   * The tokenizer_config.json that Hugging Face loaders (transformers, transformers.js'
   * `AutoTokenizer.from_pretrained`) want beside tokenizer.json.
   */
  hfConfig(): Record<string, unknown> {
    return {
      tokenizer_class: 'GPT2Tokenizer',
      bos_token: END_OF_TEXT, eos_token: END_OF_TEXT, unk_token: END_OF_TEXT, pad_token: PAD,
      add_prefix_space: false,
      add_bos_token: false,
      clean_up_tokenization_spaces: false,
      model_max_length: 1_000_000,
    };
  }

  /** Write tokenizer.json to `file`. */
  async save(file: string): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify(this.toJSON()) + '\n');
  }

  /** Write `tokenizer.json` and `tokenizer_config.json` into `dir` (a loadable Hugging Face tokenizer folder). */
  async saveDir(dir: string): Promise<void> {
    await this.save(path.join(dir, 'tokenizer.json'));
    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(this.hfConfig(), null, 2) + '\n');
  }

  // ------------------------------------------------------------------ vocabulary

  get vocabSize(): number { return this.tokens.length; }
  /** Number of merges (rank order). */
  get numMerges(): number { return this.merges.length; }

  /** The vocabulary string of an id (byte-level characters, e.g. `Ġthe`; added tokens as written). */
  idToToken(id: number): string | undefined { return this.tokens[id]; }
  tokenToId(token: string): number | undefined { return this.tokenIds.get(token); }
  /** True for added tokens (`<|endoftext|>`, `<|pad|>` and the two turn markers). */
  isAdded(id: number): boolean { return this.added.some(t => t.id === id); }
  /** The raw bytes of a token (a copy). */
  tokenBytes(id: number): Uint8Array { this.checkId(id); return this.bytes[id]!.slice(); }
  /** A token's text for display: its bytes decoded alone (a partial UTF-8 character shows as U+FFFD). */
  tokenText(id: number): string { this.checkId(id); return decodeBytes(this.bytes[id]!); }

  // ------------------------------------------------------------------ encoding

  /** Encode text; added tokens (turn markers, `<|endoftext|>`, `<|pad|>`) in the text are matched literally. */
  encode(text: string): number[] {
    const out: number[] = [];
    const re = this.addedRe;
    if (!re) { this.encodeOrdinaryInto(text, out); return out; }
    re.lastIndex = 0;
    let last = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (m.index > last) this.encodeOrdinaryInto(text.slice(last, m.index), out);
      out.push(this.addedByContent.get(m[0])!);
      last = m.index + m[0].length;
    }
    if (last < text.length) this.encodeOrdinaryInto(last === 0 ? text : text.slice(last), out);
    return out;
  }

  /**
   * Encode text with BPE only: added-token strings in it are treated as ordinary text (use it for
   * untrusted text, e.g. what a human types, so that it cannot forge a turn marker).
   */
  encodeOrdinary(text: string): number[] {
    const out: number[] = [];
    this.encodeOrdinaryInto(text, out);
    return out;
  }

  private encodeOrdinaryInto(text: string, out: number[]): void {
    const pieces = text.match(PRETOKEN_RE);
    if (!pieces) return;
    const cache = this.cache;
    for (const p of pieces) {
      let ids = cache.get(p);
      if (ids === undefined) {
        ids = this.bpe(p);
        if (cache.size >= CACHE_LIMIT) cache.clear();
        cache.set(p, ids);
      }
      for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
    }
  }

  /** BPE of one pre-token: merges by rank, lowest first, leftmost on ties (Hugging Face's order). */
  private bpe(piece: string): number[] {
    let ids: number[];
    let ascii = true;
    for (let i = 0; i < piece.length; i++) if (piece.charCodeAt(i) > 127) { ascii = false; break; }
    if (ascii) {
      ids = new Array(piece.length);
      for (let i = 0; i < piece.length; i++) ids[i] = this.byteToId[piece.charCodeAt(i)]!;
    } else {
      const bs = utf8Encoder.encode(piece);
      ids = new Array(bs.length);
      for (let i = 0; i < bs.length; i++) ids[i] = this.byteToId[bs[i]!]!;
    }
    return ids.length > 64 ? this.mergeLong(ids) : this.mergeShort(ids);
  }

  private rankOf(a: number, b: number): number {
    const r = this.ranks[a]!.get(b);
    return r === undefined ? Infinity : r;
  }

  /** Quadratic merge loop; fast for the short words that make up almost all text. */
  private mergeShort(ids: number[]): number[] {
    if (ids.length < 2) return ids;
    const pr: number[] = new Array(ids.length - 1);
    for (let i = 0; i + 1 < ids.length; i++) pr[i] = this.rankOf(ids[i]!, ids[i + 1]!);
    for (;;) {
      let best = Infinity, at = -1;
      for (let i = 0; i < pr.length; i++) if (pr[i]! < best) { best = pr[i]!; at = i; }
      if (at < 0) return ids;
      ids.splice(at, 2, this.mergeResult[best]!);
      pr.splice(at, 1);
      if (at > 0) pr[at - 1] = this.rankOf(ids[at - 1]!, ids[at]!);
      if (at < pr.length) pr[at] = this.rankOf(ids[at]!, ids[at + 1]!);
    }
  }

  /** Heap-based merge loop (linked list + priority queue keyed by (rank, position)) for long words. */
  private mergeLong(ids: number[]): number[] {
    const n = ids.length;
    const tok = Int32Array.from(ids);
    const next = new Int32Array(n), prev = new Int32Array(n);
    for (let i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
    const alive = new Uint8Array(n).fill(1);
    const heap = new MinHeap();
    const push = (i: number) => {
      const j = next[i]!;
      if (j < 0) return;
      const r = this.rankOf(tok[i]!, tok[j]!);
      if (r !== Infinity) heap.push(r * n + i);
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    while (heap.size > 0) {
      const key = heap.pop();
      const i = key % n, r = (key - i) / n;
      if (!alive[i]) continue;
      const j = next[i]!;
      if (j < 0 || this.rankOf(tok[i]!, tok[j]!) !== r) continue; // stale
      tok[i] = this.mergeResult[r]!;
      alive[j] = 0;
      next[i] = next[j]!;
      if (next[j]! >= 0) prev[next[j]!] = i;
      if (prev[i]! >= 0) push(prev[i]!);
      push(i);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]!) out.push(tok[i]!);
    return out;
  }

  // ------------------------------------------------------------------ decoding

  /**
   * Decode ids to text. Never throws on a valid id: incomplete or invalid UTF-8 (e.g. a prefix of
   * a token sequence that ends inside a multi-byte character) becomes U+FFFD.
   */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      this.checkId(id);
      if (opts.skipSpecial && this.skippable.has(id)) continue;
      total += this.bytes[id]!.length;
    }
    const buf = new Uint8Array(total);
    let o = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (opts.skipSpecial && this.skippable.has(id)) continue;
      buf.set(this.bytes[id]!, o); o += this.bytes[id]!.length;
    }
    return decodeBytes(buf);
  }

  /** The bytes of an id, without copying (for the stream decoder). */
  rawBytes(id: number): Uint8Array { this.checkId(id); return this.bytes[id]!; }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.tokens.length) {
      throw new RangeError(`tokenizer: token id ${id} is outside the vocabulary [0, ${this.tokens.length})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Streaming decode

/**
 * Decodes token ids as they arrive, returning only complete characters: bytes of a character split
 * across tokens are held until the character is complete. The concatenation of everything `push`
 * and `flush` return equals `tokenizer.decode(allIds)`.
 */
export class TokenStreamDecoder {
  private decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  constructor(private readonly tokenizer: BpeTokenizer, private readonly opts: DecodeOptions = {}) {}

  /** Feed one id or several; returns the newly completed text (possibly ''). */
  push(ids: number | ArrayLike<number>): string {
    const list = typeof ids === 'number' ? [ids] : ids;
    let out = '';
    for (let i = 0; i < list.length; i++) {
      const id = list[i]!;
      if (this.opts.skipSpecial && (id === this.tokenizer.special.endOfText || id === this.tokenizer.special.pad)) continue;
      out += this.decoder.decode(this.tokenizer.rawBytes(id), { stream: true });
    }
    return out;
  }

  /** End of stream: returns what is left (an incomplete character becomes U+FFFD) and resets. */
  flush(): string {
    const out = this.decoder.decode();
    this.decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
    return out;
  }
}

/** Yield the complete text each id adds, then the remainder; joined, it equals `tokenizer.decode(ids)`. */
export function* decodeIncremental(tokenizer: BpeTokenizer, ids: Iterable<number>, opts: DecodeOptions = {}): Generator<string, void, undefined> {
  const d = new TokenStreamDecoder(tokenizer, opts);
  for (const id of ids) yield d.push(id);
  const rest = d.flush();
  if (rest) yield rest;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function decodeBytes(bytes: Uint8Array): string {
  // ignoreBOM: a leading U+FEFF is text, not a byte-order mark to strip (exact round trip).
  return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(bytes);
}

function escapeRegExp(s: string): string { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

function splitMerge(m: string): [string, string] | null {
  const i = m.indexOf(' ');
  return i > 0 && i < m.length - 1 && m.indexOf(' ', i + 1) < 0 ? [m.slice(0, i), m.slice(i + 1)] : null;
}

/** Max-heap of (count, key): highest count first, smaller key (pair ids) first on ties. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number { return this.counts.length; }
  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!, cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }
  private swap(i: number, j: number): void {
    const c = this.counts[i]!; this.counts[i] = this.counts[j]!; this.counts[j] = c;
    const k = this.keys[i]!; this.keys[i] = this.keys[j]!; this.keys[j] = k;
  }
  push(count: number, key: number): void {
    this.counts.push(count); this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) { const p = (i - 1) >> 1; if (!this.above(i, p)) break; this.swap(i, p); i = p; }
  }
  pop(): { count: number; key: number } | undefined {
    const n = this.counts.length;
    if (!n) return undefined;
    const top = { count: this.counts[0]!, key: this.keys[0]! };
    this.swap(0, n - 1); this.counts.pop(); this.keys.pop();
    const m = n - 1;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let best = i;
      if (l < m && this.above(l, best)) best = l;
      if (r < m && this.above(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best); i = best;
    }
    return top;
  }
}

/** Min-heap of numbers. */
class MinHeap {
  private a: number[] = [];
  get size(): number { return this.a.length; }
  push(v: number): void {
    const a = this.a; a.push(v);
    let i = a.length - 1;
    while (i > 0) { const p = (i - 1) >> 1; if (a[p]! <= v) break; a[i] = a[p]!; i = p; }
    a[i] = v;
  }
  pop(): number {
    const a = this.a; const top = a[0]!; const last = a.pop()!;
    const n = a.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let c = l;
        if (l >= n) break;
        if (r < n && a[r]! < a[l]!) c = r;
        if (a[c]! >= last) break;
        a[i] = a[c]!; i = c;
      }
      a[i] = last;
    }
    return top;
  }
}
