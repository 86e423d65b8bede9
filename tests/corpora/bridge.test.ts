/**
 * The Bridge reader (corpora/readers.ts loadBridge): on the real data set when the data directory
 * has it (skipped, saying why, otherwise), and always on a small fixture in its format; plus
 * pretraining's `heldOutSplits`, which validates on a data set's own validation split.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORPUS_NAMES, corpusNeedsDataDir, loadBridge, loadCorpus, splitDialogs, validationSplitOf } from '../../corpora/readers.ts';
import { pretrain } from '../../models/pretrain.ts';
import { corpusWithoutDataDir } from '../../cli/pretrain.ts';
import { dataPath, itWithData } from '../helpers/data.ts';

const BRIDGE = ['bridge/train.json', 'bridge/validation.json', 'bridge/test.json'];

const msg = (user: string, text: string) => ({ user, text });
/** A snippet in Bridge's layout: history c_h, novice reply c_r, expert reply c_r_, labels. */
const snippet = (cId: string, history: [string, string][], expert: string[], novice = ['No.']) => ({
  c_id: cId, lesson_topic: '3.6D.Decomposing Figures',
  c_h: history.map(([u, t]) => msg(u, t)),
  c_r: novice.map(t => msg('tutor', t)),
  c_r_: expert.map(t => ({ ...msg('tutor', t), is_revised: true })),
  c_revision: [], e: 'guess', z_what: 'explain_concept', z_why: 'clarify_misunderstanding',
});

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'colloquy-bridge-'));
  mkdirSync(path.join(tmp, 'bridge'));
  writeFileSync(path.join(tmp, 'bridge', 'train.json'), JSON.stringify([
    snippet('41_19', [['tutor', 'Sounds great.'], ['tutor', ''], ['tutor', 'What is the area?'], ['student', '4 m']], ['Hm, not quite.', 'Multiply length and width.'], ["That's incorrect."]),
    // The data set repeats a snippet with a different expert reply: same c_id, its own id.
    snippet('41_19', [['tutor', 'Sounds great.'], ['tutor', 'What is the area?'], ['student', '4 m']], ['Close! What is the width?']),
    snippet('77_5', [['student', 'hi'], ['tutor', 'Hello!'], ['student', 'is it 12?']], ['Yes, well done.']),
    snippet('80_9', [['tutor', 'What is 10 minus 6?'], ['student', '']], ['Did you mean to send a picture?']),
  ]));
  writeFileSync(path.join(tmp, 'bridge', 'validation.json'), JSON.stringify([snippet('90_1', [['tutor', 'Ready?'], ['student', 'yes']], ['Great, let us start.'])]));
});
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

describe('loadBridge on a fixture', () => {
  it('makes tutor/student turns, merging one speaker\'s messages, with the expert reply as the last teacher turn', () => {
    const ds = loadBridge(path.join(tmp, 'bridge'), 'train');
    expect(ds).toHaveLength(4);
    expect(ds[0]).toEqual({
      id: 'bridge-train-0', source: 'bridge',
      turns: [
        { role: 'teacher', text: 'Sounds great. What is the area?' },
        { role: 'student', text: '4 m' },
        { role: 'teacher', text: 'Hm, not quite. Multiply length and width.' },
      ],
      meta: {
        group: 'bridge-41', cId: '41_19', split: 'train', index: 0, novice: "That's incorrect.",
        lessonTopic: '3.6D.Decomposing Figures', error: 'guess', strategy: 'explain_concept', intention: 'clarify_misunderstanding',
      },
    });
    expect(ds[1]!.id).toBe('bridge-train-1');
    expect(ds[1]!.turns.at(-1)).toEqual({ role: 'teacher', text: 'Close! What is the width?' });
    expect(ds[2]!.turns.map(t => t.role)).toEqual(['student', 'teacher', 'student', 'teacher']);
    // An empty message from a new speaker is an empty turn (the expert still answers it).
    expect(ds[3]!.turns).toEqual([{ role: 'teacher', text: 'What is 10 minus 6?' }, { role: 'student', text: '' }, { role: 'teacher', text: 'Did you mean to send a picture?' }]);
  });

  it('keeps a conversation\'s snippets on one side of the held-out split', () => {
    const ds = loadBridge(path.join(tmp, 'bridge'), 'train');
    for (let seed = 0; seed < 8; seed++) {
      const { heldOut } = splitDialogs(ds, { heldOut: 0.34, seed });
      const held = new Set(heldOut.map(d => d.id));
      expect(held.has('bridge-train-0')).toBe(held.has('bridge-train-1'));
    }
  });

  it('is a named corpus (bridge = train, bridge:SPLIT) that needs the data dir', () => {
    expect(CORPUS_NAMES).toContain('bridge');
    expect(loadCorpus('bridge', tmp)).toHaveLength(4);
    expect(loadCorpus('bridge:train', tmp)).toEqual(loadCorpus('bridge', tmp));
    expect(loadCorpus('bridge:validation', tmp)[0]!.id).toBe('bridge-validation-0');
    expect(corpusNeedsDataDir('bridge:test')).toBe(true);
    expect(corpusNeedsDataDir('shipped')).toBe(false);
    expect(() => loadCorpus('bridge', null)).toThrow(/needs a data dir/);
    expect(() => loadCorpus('bridge:dev', tmp)).toThrow(/unknown Bridge split 'dev'/);
    expect(() => loadCorpus('bridge:test', tmp)).toThrow(/cannot read/);
    // Without a data dir, `pretrain --config configs/models/dialog.json` drops bridge with the others.
    expect(corpusWithoutDataDir('dailydialog,mathdial,bridge,shipped')).toBe('shipped');
    expect(corpusWithoutDataDir('bridge:test,chat:x.jsonl')).toBe('chat:x.jsonl');
    expect(validationSplitOf('bridge')).toBe('bridge:validation');
    expect(validationSplitOf('dailydialog:train')).toBe('dailydialog:validation');
    expect(validationSplitOf('dailydialog:test')).toBeNull();
    expect(validationSplitOf('mathdial')).toBeNull();
  });

  it('refuses malformed files with a coded error naming the snippet', () => {
    const dir = path.join(tmp, 'bad');
    mkdirSync(dir, { recursive: true });
    const write = (v: unknown) => writeFileSync(path.join(dir, 'train.json'), typeof v === 'string' ? v : JSON.stringify(v));
    const err = () => { try { loadBridge(dir, 'train'); } catch (e) { return e as { code?: string; message: string }; } throw new Error('no error'); };
    write('{"c_id": ');
    expect(err()).toMatchObject({ code: 'BAD_CONFIG', message: expect.stringMatching(/bad JSON/) });
    write({ c_id: 'x' });
    expect(err().message).toMatch(/expected a JSON array/);
    write([snippet('1_1', [['student', 'hi']], ['ok']), { c_id: '2_2', c_h: [] }]);
    expect(err().message).toMatch(/snippet 1: expected fields/);
    write([snippet('1_1', [['robot', 'beep']], ['ok'])]);
    expect(err().message).toMatch(/c_h\[0\] needs 'user' \(tutor or student\)/);
    write([{ ...snippet('1_1', [['student', 'hi']], ['ok']), c_r_: [msg('student', 'me')] }]);
    expect(err().message).toMatch(/expert reply 'c_r_' has a student message/);
  });
});

describe('loadBridge on the real data set', () => {
  itWithData('reads 419 / 71 / 210 snippets ending with the expert reply', BRIDGE, () => {
    const dir = dataPath('bridge');
    const train = loadBridge(dir, 'train');
    expect(train).toHaveLength(419);
    expect(loadBridge(dir, 'validation')).toHaveLength(71);
    expect(loadBridge(dir, 'test')).toHaveLength(210);
    expect(new Set(train.map(d => d.id)).size).toBe(419);
    const first = train[0]!;
    expect(first.meta).toMatchObject({ cId: '4110653_19', group: 'bridge-4110653', error: 'guess', strategy: 'explain_concept', novice: "That's incorrect. We have to multiply the 4 and 3." });
    expect(first.turns).toEqual([
      { role: 'teacher', text: 'Sounds great. Use the area formula to find the area of the current patio. What is the area of the pink rectangle?' },
      { role: 'student', text: '4 m' },
      { role: 'teacher', text: 'Hm, not quite To get the area of a rectangle, we need to multiply the length and the width together. 4m is the length, could you tell me what the width is?' },
    ]);
    for (const d of train) {
      expect(d.turns.at(-1)!.role).toBe('teacher');
      expect(d.turns.at(-1)!.text).not.toBe('');
      d.turns.forEach((t, k) => { if (k > 0) expect(t.role).not.toBe(d.turns[k - 1]!.role); });
    }
    // Six student messages are empty (a picture, say): empty student turns, each answered by the next teacher turn.
    const empty = train.flatMap(d => d.turns.filter(t => t.text === ''));
    expect(empty).toEqual(Array(6).fill({ role: 'student', text: '' }));
  });
});

describe('pretraining with heldOutSplits', () => {
  it('trains on all of a train split and validates on the data set\'s validation split', async () => {
    const out = path.join(tmp, 'model');
    const lines: string[] = [];
    const r = await pretrain({
      out, configFile: path.resolve('configs/models/tiny.json'), dataDir: tmp, progressBar: false, log: s => lines.push(s),
      overrides: { train: { corpus: 'bridge,shipped', heldOutSplits: true, epochs: 0.05, minutes: 0, evalTokens: 500 } },
    });
    expect(lines.find(l => l.includes('corpora'))).toMatch(/bridge \(4 train \/ 1 held-out dialogs\), shipped \(\d+ train \/ \d+ held-out/);
    expect(Object.keys(r.valPerplexityByCorpus).sort()).toEqual(['bridge', 'shipped']);
    expect(r.valPerplexityByCorpus.bridge).toBeGreaterThan(1);
  }, 60_000);
});
