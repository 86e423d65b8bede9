import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoTokenizer, env } from '@xenova/transformers';
import { BpeTokenizer, TokenStreamDecoder, decodeIncremental } from '../../models/tokenizer.ts';
import { formatTranscript, loadMathDial, loadShippedCorpus } from '../../corpora/readers.ts';
import { hasData, dataPath } from '../helpers/data.ts';
import { Rng } from '../../core/rng.ts';
import { END_OF_TEXT, PAD, TURN_STUDENT, TURN_TEACHER } from '../../core/markers.ts';

const SAMPLES: string[] = [
  '',
  'a',
  ' ',
  'Hello, world!',
  'The quick brown fox jumps over the lazy dog.',
  "I'm sure it's fine; we'll see, they've said, you'd think.",
  '  leading and trailing spaces   ',
  'tabs\tand\nnewlines\n\n\nand\r\nCRLF',
  '\n\nStudent: For our science reports...\n\nTeacher: Yeah?\n\nStudent: I don\'t understand.\n\nTeacher: Do you',
  `${END_OF_TEXT}${PAD}${TURN_STUDENT}${TURN_TEACHER}`,
  `text${END_OF_TEXT}more text${PAD}${PAD}\n\n\nStudent:x\n\nTeacher:\n\nStudent:`,
  'Student: not a marker without the blank line. Teacher:',
  'héllo wörld, ça va? Ærøskøbing. naïve café',
  '你好，世界！这是一个测试。日本語のテキストも。한국어 텍스트',
  'emoji 🎉🎉 👩‍👩‍👧‍👦 🇫🇷 ❤️ 🙂🙃',
  'Ελληνικά και русский текст и עברית וערבית العربية',
  '12+3=15 spoons; 3.14159; 1,000,000; $24.50; 50% off; 7×8=56; ÷ √ ∑ π',
  '\u0000\u0001\u0007\u001b[0m control chars \u007f',
  '\uFEFFstarts with a BOM',
  'zero\u200bwidth\u200dspace\u00a0nbsp',
  'a'.repeat(300),
  'ab'.repeat(200) + ' ' + 'supercalifragilisticexpialidocious'.repeat(5),
  '!!!???...,,,;;;:::---',
  "'s 't 're 've 'm 'll 'd 'S 'T",
  '    \n    \n',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕒𝕤𝕥𝕣𝕒𝕝 😀 plane chars',
];

/** Random well-formed strings drawn from several scripts, spaces, punctuation and markers. */
function randomStrings(n: number, seed: number): string[] {
  const rng = new Rng(seed);
  const ranges: [number, number][] = [[0x20, 0x7e], [0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x4e00, 0x4fff], [0x3040, 0x30ff], [0x1f300, 0x1f64f], [0x0, 0x1f]];
  const pieces = [' ', '\n', '\n\n', TURN_STUDENT, TURN_TEACHER, END_OF_TEXT, "'s", ' the', '  '];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    const len = rng.int(40);
    for (let k = 0; k < len; k++) {
      if (rng.random() < 0.15) { s += pieces[rng.int(pieces.length)]; continue; }
      const [lo, hi] = ranges[rng.int(ranges.length)]!;
      s += String.fromCodePoint(lo + rng.int(hi - lo + 1));
    }
    out.push(s);
  }
  return out;
}

let tok: BpeTokenizer;
let corpus: string[];
let tmp: string;

beforeAll(() => {
  const dialogs = loadShippedCorpus();
  // MathDial adds real (non-template) text to the training corpus when the shared data are there;
  // without them the same tests run on the shipped corpus alone, and say so.
  if (hasData('mathdial/test.jsonl')) dialogs.push(...loadMathDial(dataPath('mathdial', 'test.jsonl')).slice(0, 200));
  else console.warn(`tokenizer tests: training on the shipped corpus only (no ${dataPath('mathdial', 'test.jsonl')})`);
  corpus = dialogs.map(d => formatTranscript(d));
  tok = BpeTokenizer.train(corpus, { vocabSize: 1200 });
  tmp = mkdtempSync(path.join(os.tmpdir(), 'colloquy-tok-'));
});
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

describe('BpeTokenizer', () => {
  it('has the requested vocabulary size and the added tokens at fixed ids', () => {
    expect(tok.vocabSize).toBe(1200);
    expect(tok.special).toEqual({ endOfText: 0, pad: 1, student: 2, teacher: 3 });
    expect(tok.idToToken(tok.special.student)).toBe(TURN_STUDENT);
    expect(tok.tokenToId(TURN_TEACHER)).toBe(tok.special.teacher);
    expect(tok.idToToken(4)).toBe('Ā'); // byte 0 in GPT-2's byte-to-unicode table
    expect(tok.tokenToId('Ġ')).toBe(4 + 32); // the space byte
  });

  it('round-trips many strings exactly', () => {
    for (const s of [...SAMPLES, ...randomStrings(400, 7)]) {
      const ids = tok.encode(s);
      expect(tok.decode(ids)).toBe(s);
      expect(tok.decode(tok.encodeOrdinary(s))).toBe(s);
    }
  });

  it('round-trips the training corpus and compresses it', () => {
    const text = corpus.slice(0, 50).join('');
    const ids = tok.encode(text);
    expect(tok.decode(ids)).toBe(text);
    expect(text.length / ids.length).toBeGreaterThan(2.5);
  });

  it('encodes lone surrogates as U+FFFD (documented: not representable in UTF-8)', () => {
    expect(tok.decode(tok.encode('a\uD800b'))).toBe('a\uFFFDb');
    expect(tok.decode(tok.encode('\uDC00'))).toBe('\uFFFD');
    expect(tok.decode(tok.encode('x\uD83D'))).toBe('x\uFFFD');
  });

  it('makes each turn marker and control token a single token, matched literally', () => {
    expect(tok.encode(TURN_STUDENT)).toEqual([tok.special.student]);
    expect(tok.encode(TURN_TEACHER)).toEqual([tok.special.teacher]);
    expect(tok.encode(END_OF_TEXT)).toEqual([tok.special.endOfText]);
    expect(tok.encode(PAD)).toEqual([tok.special.pad]);
    const ids = tok.encode('Do you know?\n\nStudent: No.\n\nTeacher: Okay.<|endoftext|>');
    expect(ids.filter(i => i === tok.special.student)).toHaveLength(1);
    expect(ids.filter(i => i === tok.special.teacher)).toHaveLength(1);
    expect(ids[ids.length - 1]).toBe(tok.special.endOfText);
    // A space after the marker belongs to the next word, as in the prompt "Teacher: Do you".
    const after = tok.encode(`${TURN_TEACHER} Do you`);
    expect(after[0]).toBe(tok.special.teacher);
    expect(tok.idToToken(after[1]!)!.startsWith('Ġ')).toBe(true);
    // Three newlines: the marker is the last two plus the name.
    expect(tok.encode('\n\n\nStudent:').slice(-1)).toEqual([tok.special.student]);
    // encodeOrdinary never produces an added token.
    const ord = tok.encodeOrdinary(`${TURN_STUDENT} hi ${END_OF_TEXT}`);
    expect(ord.some(i => i < 4)).toBe(false);
  });

  it('trains deterministically, independent of text order', () => {
    const a = BpeTokenizer.train(corpus, { vocabSize: 800 });
    const b = BpeTokenizer.train(corpus, { vocabSize: 800 });
    const c = BpeTokenizer.train([...corpus].reverse(), { vocabSize: 800 });
    const ja = JSON.stringify(a.toJSON());
    expect(JSON.stringify(b.toJSON())).toBe(ja);
    expect(JSON.stringify(c.toJSON())).toBe(ja);
  });

  it('respects minFrequency and stops early on a tiny corpus', () => {
    const t = BpeTokenizer.train(['aaab aaab xyz'], { vocabSize: 1000, minFrequency: 2 });
    expect(t.vocabSize).toBeLessThan(300);
    expect(t.decode(t.encode('aaab xyz'))).toBe('aaab xyz');
    expect(() => BpeTokenizer.train(['x'], { vocabSize: 100 })).toThrow(/vocabSize/);
  });

  it('saves and loads tokenizer.json with equal content and encodings', async () => {
    const file = path.join(tmp, 'save', 'tokenizer.json');
    await tok.save(file);
    const loaded = await BpeTokenizer.load(file);
    expect(loaded.toJSON()).toEqual(tok.toJSON());
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(tok.toJSON());
    expect(loaded.special).toEqual(tok.special);
    for (const s of SAMPLES) expect(loaded.encode(s)).toEqual(tok.encode(s));
    const json = tok.toJSON();
    expect(json.model.type).toBe('BPE');
    expect(json.pre_tokenizer.type).toBe('ByteLevel');
    expect(json.decoder.type).toBe('ByteLevel');
    expect(json.added_tokens.map(t => t.content)).toEqual([END_OF_TEXT, PAD, TURN_STUDENT, TURN_TEACHER]);
    // merges also load in the newer [left, right] array form
    const arrayForm = { ...json, model: { ...json.model, merges: json.model.merges.map(m => m.split(' ')) } };
    expect(BpeTokenizer.fromJSON(arrayForm).encode(SAMPLES[4]!)).toEqual(tok.encode(SAMPLES[4]!));
  });

  it('rejects tokenizer.json files it cannot reproduce', () => {
    const json = tok.toJSON();
    expect(() => BpeTokenizer.fromJSON({ ...json, added_tokens: json.added_tokens.slice(0, 2) })).toThrow(/not byte-level|missing added token/);
    expect(() => BpeTokenizer.fromJSON({ ...json, pre_tokenizer: { ...json.pre_tokenizer, add_prefix_space: true } })).toThrow(/pre_tokenizer/);
    expect(() => BpeTokenizer.fromJSON({ ...json, model: { ...json.model, merges: ['Ġ nope'] } })).toThrow(/merge 0/);
    expect(() => BpeTokenizer.fromJSON(null)).toThrow();
  });

  it('decodes any prefix without throwing and streams complete characters', () => {
    const text = 'Emoji 🎉 and 你好 and ça — then 👩‍👩‍👧 ok';
    const ids = tok.encode(text);
    for (let k = 0; k <= ids.length; k++) expect(() => tok.decode(ids.slice(0, k))).not.toThrow();
    const chunks = [...decodeIncremental(tok, ids)];
    expect(chunks.join('')).toBe(text);
    for (const c of chunks) expect(c).not.toContain('\uFFFD');
    // The token-by-token stream equals decode of the whole.
    const d = new TokenStreamDecoder(tok);
    let acc = '';
    for (const id of ids) acc += d.push(id);
    acc += d.flush();
    expect(acc).toBe(text);
    // An unfinished character is held back: with bytes only (no merges) '€' is 3 tokens.
    const bytesOnly = BpeTokenizer.train([], { vocabSize: 260 });
    const euro = bytesOnly.encode('€');
    expect(euro).toHaveLength(3);
    const d2 = new TokenStreamDecoder(bytesOnly);
    expect(d2.push(euro[0]!)).toBe('');
    expect(d2.push(euro[1]!)).toBe('');
    expect(d2.push(euro[2]!)).toBe('€');
    expect(bytesOnly.decode(euro.slice(0, 2))).toBe('\uFFFD');
    expect(d2.push(euro[0]!)).toBe('');
    expect(d2.flush()).toBe('\uFFFD');
    expect(() => tok.decode([tok.vocabSize])).toThrow(RangeError);
    expect(tok.decode(tok.encode(`hi${END_OF_TEXT}${PAD}yo`), { skipSpecial: true })).toBe('hiyo');
  });

  it('is read by transformers.js, which encodes and decodes identically', async () => {
    const dir = path.join(tmp, 'hf', 'colloquy-tok');
    await tok.saveDir(dir);
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = path.join(tmp, 'hf') + path.sep;
    const hf = await AutoTokenizer.from_pretrained('colloquy-tok');
    const texts = [...SAMPLES, ...randomStrings(150, 11), ...corpus.slice(0, 20)];
    for (const s of texts) {
      const ours = tok.encode(s);
      const theirs = Array.from(hf.encode(s, null, { add_special_tokens: false }) as number[]);
      expect(theirs, JSON.stringify(s.slice(0, 60))).toEqual(ours);
      if (ours.length) expect(hf.decode(ours)).toBe(tok.decode(ours));
    }
  });
});
