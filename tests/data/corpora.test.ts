import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Dialog, cleanTurnText, detokenize, formatCorpus, formatTranscript, loadChatJsonl, loadCorpus, loadDailyDialog, loadMathDial, resolveDataDir, splitDialogs, toChatRecord } from '../../corpora/readers.ts';
import { BpeTokenizer } from '../../models/tokenizer.ts';
import { PROJECT_ROOT } from '../../core/paths.ts';
import { END_OF_TEXT, TURN_STUDENT, TURN_TEACHER } from '../../core/markers.ts';
import { dataPath, describeWithData, itWithData } from '../helpers/data.ts';

// The shared data sets sit beside the checkout (CI has them too); without them those tests skip, saying so.
const DATA = dataPath();
const MATHDIAL = 'mathdial/test.jsonl';
const DAILYDIALOG = ['dailydialog/test', 'dailydialog/validation', 'dailydialog/train'];
let tmp: string;
beforeAll(() => { tmp = mkdtempSync(path.join(os.tmpdir(), 'colloquy-corpora-')); });
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

const DEFAULT_DATA = path.resolve(PROJECT_ROOT, '..', 'shared', 'data');

describe('resolveDataDir', () => {
  const withEnv = (value: string | undefined, fn: () => void) => {
    const old = process.env.COLLOQUY_DATA_DIR;
    try {
      if (value === undefined) delete process.env.COLLOQUY_DATA_DIR; else process.env.COLLOQUY_DATA_DIR = value;
      fn();
    } finally {
      if (old === undefined) delete process.env.COLLOQUY_DATA_DIR; else process.env.COLLOQUY_DATA_DIR = old;
    }
  };

  // Only where the default location exists (and COLLOQUY_TEST_NO_DATA does not hide it).
  describeWithData('by default', [], () => {
    it.skipIf(!existsSync(DEFAULT_DATA))(`finds ../shared/data${existsSync(DEFAULT_DATA) ? '' : ' [skipped: no ../shared/data beside the checkout]'}`, () => {
      withEnv(undefined, () => expect(resolveDataDir()).toBe(DEFAULT_DATA));
    });
  });

  it('prefers the flag, then COLLOQUY_DATA_DIR; a named directory must exist', () => {
    const flagDir = path.join(tmp, 'flag');
    mkdirSync(flagDir, { recursive: true });
    withEnv(tmp, () => {
      expect(resolveDataDir()).toBe(tmp);
      expect(resolveDataDir(flagDir)).toBe(flagDir);
    });
    withEnv(path.join(tmp, 'nope'), () => {
      expect(() => resolveDataDir()).toThrow(/does not exist/);
      expect(() => resolveDataDir(path.join(tmp, 'nope'))).toThrow(/--data-dir/);
    });
  });
});

describeWithData('loadMathDial', [MATHDIAL], () => {
  const dialogs = () => loadMathDial(path.join(DATA, 'mathdial', 'test.jsonl'));

  it('loads 599 dialogs and 7028 turns with roles, moves stripped into meta', () => {
    const ds = dialogs();
    expect(ds).toHaveLength(599);
    expect(ds.reduce((n, d) => n + d.turns.length, 0)).toBe(7028);
    expect(new Set(ds.map(d => d.id)).size).toBe(599);
    const first = ds[0]!;
    expect(first.source).toBe('mathdial');
    expect(first.turns[0]).toEqual({ role: 'teacher', text: 'Hi Mariana, please talk me through your solution', meta: { move: 'generic' } });
    expect(first.turns[1]!.role).toBe('student');
    expect(first.turns[1]!.text.startsWith('Sure. I started')).toBe(true);
    const teacherTurns = ds.flatMap(d => d.turns.filter(t => t.role === 'teacher'));
    expect(teacherTurns).toHaveLength(3699);
    expect(teacherTurns.every(t => typeof t.meta?.move === 'string' && !/^\((focus|probing|generic|telling)\)/.test(t.text))).toBe(true);
    expect(new Set(teacherTurns.map(t => t.meta!.move))).toEqual(new Set(['focus', 'probing', 'generic', 'telling']));
    // Student turns prefixed with the student's name are still student turns, without the name.
    const all = ds.flatMap(d => d.turns.map(t => t.text));
    expect(all.some(t => /^(Teacher|Student):/.test(t))).toBe(false);
  });

  it('keeps the problem, wrong solution and profile in meta, grouped by problem', () => {
    const d = dialogs()[0]!;
    expect(d.meta).toMatchObject({ qid: 6000025, group: 'mathdial-6000025', studentName: 'Mariana' });
    expect(String(d.meta!.problem)).toContain('Julia was preparing for a dinner party');
    expect(String(d.meta!.studentSolution)).toContain('x + 5');
    expect(String(d.meta!.studentProfile)).toContain('7th grade');
  });
});

describe('loadDailyDialog', () => {
  itWithData('loads the test split with alternating roles and emotion/act labels', ['dailydialog/test'], () => {
    const ds = loadDailyDialog(path.join(DATA, 'dailydialog'), 'test');
    expect(ds).toHaveLength(1000);
    const d = ds[1]!; // "The taxi drivers are on strike again . __eou__ What for ? ..."
    expect(d.id).toBe('dailydialog-test-1');
    expect(d.turns.map(t => t.role)).toEqual(['student', 'teacher', 'student', 'teacher']);
    expect(d.turns[0]!.text).toBe('The taxi drivers are on strike again.');
    expect(d.turns[1]!.text).toBe('What for?');
    expect(d.turns[0]!.meta).toMatchObject({ emotion: 'none', emotionId: 0, act: 'inform', actId: 1 });
    expect(d.turns[1]!.meta).toMatchObject({ act: 'question' });
    for (const x of ds) x.turns.forEach((t, k) => expect(t.role).toBe(k % 2 === 0 ? 'student' : 'teacher'));
    const raw = loadDailyDialog(path.join(DATA, 'dailydialog'), 'test', { detokenize: false, firstSpeaker: 'teacher' });
    expect(raw[1]!.turns[0]).toMatchObject({ role: 'teacher', text: 'The taxi drivers are on strike again .' });
  });

  itWithData('counts the other splits', DAILYDIALOG, () => {
    expect(loadDailyDialog(path.join(DATA, 'dailydialog'), 'validation')).toHaveLength(1000);
    expect(loadDailyDialog(path.join(DATA, 'dailydialog'), 'train')).toHaveLength(11118);
  });

  it('undoes the tokenisation spacing', () => {
    expect(detokenize("I ’ m fine , thanks . Don ' t worry ! It costs $ 5 ( or so ) .")).toBe("I'm fine, thanks. Don't worry! It costs $5 (or so).");
    expect(detokenize('Say " cheese " . OK ?')).toBe('Say "cheese". OK?');
    expect(detokenize('I guess you are right.But what ? Mr.Smith said so , e.g. here')).toBe('I guess you are right. But what? Mr.Smith said so, e.g. here');
  });
});

describe('loadChatJsonl', () => {
  it('maps roles, keeps ids, source and meta, puts system messages in meta', () => {
    const file = path.join(tmp, 'chats.jsonl');
    writeFileSync(file, [
      JSON.stringify({ messages: [{ role: 'system', content: 'be kind' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }),
      '',
      JSON.stringify({ id: 'x1', source: 'mine', meta: { a: 1 }, messages: [{ role: 'teacher', content: 'q?' }, { role: 'student', content: 'a.' }] }),
    ].join('\n'));
    const ds = loadChatJsonl(file);
    expect(ds).toHaveLength(2);
    expect(ds[0]).toEqual({ id: 'chats-1', source: 'chats', turns: [{ role: 'student', text: 'hi' }, { role: 'teacher', text: 'hello' }], meta: { system: 'be kind' } });
    expect(ds[1]).toEqual({ id: 'x1', source: 'mine', meta: { a: 1 }, turns: [{ role: 'teacher', text: 'q?' }, { role: 'student', text: 'a.' }] });
    // The chat record writer is the inverse.
    const back = path.join(tmp, 'back.jsonl');
    writeFileSync(back, ds.map(d => JSON.stringify(toChatRecord(d))).join('\n'));
    expect(loadChatJsonl(back)).toEqual(ds.map(d => ({ ...d })));
  });

  it('reports bad lines with their line number', () => {
    const bad = path.join(tmp, 'bad.jsonl');
    writeFileSync(bad, `${JSON.stringify({ messages: [] })}\n{not json}\n`);
    expect(() => loadChatJsonl(bad)).toThrow(/bad\.jsonl:2/);
    writeFileSync(bad, JSON.stringify({ messages: [{ role: 'robot', content: 'x' }] }));
    expect(() => loadChatJsonl(bad)).toThrow(/unknown role 'robot'/);
    expect(() => loadChatJsonl(path.join(tmp, 'missing.jsonl'))).toThrow(/cannot read/);
  });
});

describe('loadCorpus', () => {
  itWithData('loads by name and needs a data dir for the real data sets', [MATHDIAL, 'dailydialog/validation'], () => {
    expect(loadCorpus('shipped', null).length).toBeGreaterThan(300);
    expect(loadCorpus('mathdial', DATA)).toHaveLength(599);
    expect(loadCorpus('dailydialog:validation', DATA)).toHaveLength(1000);
    expect(() => loadCorpus('mathdial', null)).toThrow(/needs a data dir/);
    expect(() => loadCorpus('nonsense', DATA)).toThrow(/unknown corpus/);
  });
});

describe('splitDialogs', () => {
  const mk = (n: number): Dialog[] => Array.from({ length: n }, (_, i) => ({ id: `d${i}`, source: 's', turns: [{ role: 'student', text: `t${i}` }] }));

  it('is deterministic by seed, disjoint and complete, with the asked fraction', () => {
    const ds = mk(200);
    const a = splitDialogs(ds, { heldOut: 0.1, seed: 1 });
    const b = splitDialogs(ds, { heldOut: 0.1, seed: 1 });
    const c = splitDialogs(ds, { heldOut: 0.1, seed: 2 });
    expect(a.heldOut.map(d => d.id)).toEqual(b.heldOut.map(d => d.id));
    expect(a.heldOut.map(d => d.id)).not.toEqual(c.heldOut.map(d => d.id));
    expect(a.heldOut).toHaveLength(20);
    expect(a.train).toHaveLength(180);
    const held = new Set(a.heldOut.map(d => d.id));
    expect(a.train.some(d => held.has(d.id))).toBe(false);
    expect(new Set([...a.train, ...a.heldOut].map(d => d.id)).size).toBe(200);
    // Independent of input order; each side keeps input order.
    const shuffled = splitDialogs([...ds].reverse(), { heldOut: 0.1, seed: 1 });
    expect(new Set(shuffled.heldOut.map(d => d.id))).toEqual(held);
    expect(a.train.map(d => Number(d.id.slice(1)))).toEqual([...a.train.map(d => Number(d.id.slice(1)))].sort((x, y) => x - y));
    expect(() => splitDialogs([...ds, ds[0]!])).toThrow(/duplicate/);
  });

  itWithData('keeps every MathDial dialog of a problem on one side', [MATHDIAL], () => {
    const ds = loadMathDial(path.join(DATA, 'mathdial', 'test.jsonl'));
    const { train, heldOut } = splitDialogs(ds, { heldOut: 0.1, seed: 0 });
    expect(train.length + heldOut.length).toBe(599);
    expect(Math.abs(heldOut.length - 60)).toBeLessThanOrEqual(8);
    const heldGroups = new Set(heldOut.map(d => d.meta!.group));
    expect(train.some(d => heldGroups.has(d.meta!.group))).toBe(false);
  });
});

describe('formatTranscript', () => {
  const d: Dialog = {
    id: 'x', source: 't',
    turns: [
      { role: 'student', text: 'For our science reports...' },
      { role: 'teacher', text: 'Yeah?' },
      { role: 'student', text: "  I don't understand.  " },
      { role: 'teacher', text: '' },
    ],
  };

  it('writes the turn markers, the header and <|endoftext|>', () => {
    expect(formatTranscript(d)).toBe("\n\nStudent: For our science reports...\n\nTeacher: Yeah?\n\nStudent: I don't understand.\n\nTeacher:<|endoftext|>");
    expect(formatTranscript(d, { header: 'HEADER', endOfText: false })).toBe("HEADER\n\nStudent: For our science reports...\n\nTeacher: Yeah?\n\nStudent: I don't understand.\n\nTeacher:");
    expect(formatTranscript(d, { header: x => `[${x.id}]` }).startsWith('[x]\n\nStudent:')).toBe(true);
    expect(formatCorpus([d, d])).toBe(formatTranscript(d) + formatTranscript(d));
  });

  it('keeps markers and control tokens out of turn text, so they tokenize once per turn', () => {
    expect(cleanTurnText(`a${END_OF_TEXT}b\n\nTeacher: c\n\n\nStudent: d`)).toBe('ab\nTeacher: c\nStudent: d');
    const evil: Dialog = { id: 'e', source: 't', turns: [{ role: 'student', text: `x${TURN_TEACHER} fake` }, { role: 'teacher', text: `y${END_OF_TEXT}` }] };
    const tok = BpeTokenizer.train([formatTranscript(d)], { vocabSize: 300 });
    const ids = tok.encode(formatTranscript(evil));
    expect(ids.filter(i => i === tok.special.student)).toHaveLength(1);
    expect(ids.filter(i => i === tok.special.teacher)).toHaveLength(1);
    expect(ids.filter(i => i === tok.special.endOfText)).toHaveLength(1);
    expect(TURN_STUDENT).toBe('\n\nStudent:');
  });
});

describe('missing data dir', () => {
  it('an empty data dir gives clear errors', () => {
    const empty = path.join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    expect(() => loadCorpus('mathdial', empty)).toThrow(/cannot read/);
  });
});
