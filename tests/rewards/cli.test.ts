import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from '../../cli/sentiment.ts';
import { loadDailyDialogReplies, dataDir } from '../../rewards/validate.ts';
import { itWithData } from '../helpers/data.ts';

let dir: string;
beforeAll(async () => { dir = await mkdtemp(path.join(tmpdir(), 'colloquy-cli-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

/** Run the command, returning exit code and what it printed. */
async function capture(argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { lines.push(a.join(' ')); });
  const err = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { lines.push(a.join(' ')); });
  try {
    const code = await run(argv);
    return { code, out: lines.join('\n') };
  } finally { log.mockRestore(); err.mockRestore(); }
}

describe('colloquy sentiment', () => {
  it('prints help', async () => {
    const r = await capture(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/train/);
    expect((await capture(['train', '--help'])).out).toMatch(/--epochs/);
  });
  it('eval prints accuracy and AUC of VADER on a labelled file', async () => {
    const file = path.join(dir, 'tiny.tsv');
    await writeFile(file, 'label\tsentence\n1\tI love this wonderful film\n0\tterrible , boring and sad\n1\tgreat fun\n0\tI hate it\n');
    const r = await capture(['eval', '--scorer', 'vader', '--data', file]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/vader\s+100\.00%\s+1\.0000/);
    const j = await capture(['eval', '--scorer', 'vader', '--data', file, '--json']);
    expect(JSON.parse(j.out).results[0]).toMatchObject({ scorer: 'vader', n: 4, accuracy: 1, auc: 1 });
  });
  itWithData('validate reports DailyDialog AUC per scorer, on the test and validation splits by default', ['dailydialog/validation', 'dailydialog/test'], async () => {
    const both = await capture(['validate', '--scorer', 'vader']);
    expect(both.code).toBe(0);
    expect(both.out).toMatch(/DailyDialog test: \d+ replies[\s\S]*DailyDialog validation: \d+ replies/);
    const r = await capture(['validate', '--scorer', 'vader', '--split', 'validation', '--json']);
    expect(r.code).toBe(0);
    const res = JSON.parse(r.out).results[0];
    expect(res.scorer).toBe('vader');
    expect(res.positives).toBeGreaterThan(100);
    expect(res.negatives).toBeGreaterThan(50);
    expect(res.auc).toBeGreaterThan(0.8);
  });
  itWithData('reads DailyDialog replies with their emotion labels', ['dailydialog/validation'], () => {
    const replies = loadDailyDialogReplies(path.join(dataDir(), 'dailydialog'), 'validation');
    expect(replies.length).toBeGreaterThan(5000);
    expect(replies.every(r => r.turn >= 1 && r.emotion >= 0 && r.emotion <= 6)).toBe(true);
  });
  // Trains on SST-2 train (the default --train) and evaluates on SST-2 dev (the default --data).
  itWithData('train writes a checkpoint that eval and the classifier scorer read', ['sentiment/sst2_train.tsv', 'sentiment/sst2_dev.tsv'], async () => {
    const out = path.join(dir, 'clf');
    // From scratch: tests never read the 307 MB vectors package (tests/rewards/word-vectors.test.ts uses a tiny file).
    const t = await capture(['train', '--limit', '3000', '--epochs', '1', '--vectors', 'none', '--embed-dim', '16', '--widths', 'none', '--rnn', '16',
      '--bigram-buckets', '4096', '--dev', 'none', '--dailydialog', 'none', '--out', out, '--backend', 'wasm']);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/saved/);
    expect(existsSync(path.join(out, 'classifier.json'))).toBe(true);
    const e = await capture(['eval', '--scorer', 'vader,classifier', '--model', out, '--json']);
    const rows = JSON.parse(e.out).results;
    expect(rows.map((x: { scorer: string }) => x.scorer)).toEqual(['vader', 'classifier']);
    expect(rows[1].n).toBe(872);
    // A plumbing check (3,000 phrases, one epoch): better than chance.
    expect(rows[1].auc).toBeGreaterThan(0.5);
  }, 60_000);
  it('train with conversational labels (an emotion head); eval scores any label<TAB>sentence file in both modes', async () => {
    // A tiny SST-2-like file and a DailyDialog-shaped folder (train split) of generated dialogs.
    const train = path.join(dir, 'conv-train.tsv'), dd = path.join(dir, 'dd');
    await writeFile(train, ['label\tsentence', ...Array.from({ length: 60 }, (_, i) => (i % 2 ? '1\tgreat fun film' : '0\ta dull , boring film'))].join('\n'));
    await mkdir(path.join(dd, 'train'), { recursive: true });
    const dialogs = Array.from({ length: 40 }, () => 'where is the bus ? __eou__ thank you , that is wonderful __eou__ i hate this , go away __eou__');
    await writeFile(path.join(dd, 'train', 'dialogues_train.txt'), dialogs.join('\n') + '\n');
    await writeFile(path.join(dd, 'train', 'dialogues_emotion_train.txt'), dialogs.map(() => '0 4 1').join('\n') + '\n');
    const out = path.join(dir, 'clf-emo');
    const t = await capture(['train', '--train', train, '--dev', 'none', '--dailydialog', dd, '--vectors', 'none', '--embed-dim', '8', '--filters', '8',
      '--bigram-buckets', '256', '--epochs', '6', '--lr', '0.01', '--out', out, '--backend', 'wasm']);
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/DailyDialog train .*emotion head/);
    const file = path.join(dir, 'mine.tsv');
    await writeFile(file, 'label\tsentence\n1\tthank you , that is wonderful\n0\ti hate this , go away\n1\tgreat fun\n0\tboring\n');
    const e = await capture(['eval', '--model', out, '--data', file, '--json', '--backend', 'wasm']);
    const rows = JSON.parse(e.out).results as { scorer: string; n: number; auc: number }[];
    expect(rows.map(x => x.scorer)).toEqual(['vader', 'classifier', 'classifier-emotion']);
    expect(rows.every(x => x.n === 4)).toBe(true);
    expect(rows[1]!.auc).toBe(1);
    const w = await capture(['eval', '--model', out, '--data', file, '--scorer', 'classifier-emotion', '--emotion-weights', 'happiness=1,anger=-1,none=0']);
    expect(w.out).toMatch(/classifier-emotion\s+\d/);
    await expect(run(['eval', '--model', out, '--data', file, '--scorer', 'classifier-emotion', '--emotion-weights', 'joy=1'])).rejects.toMatchObject({ code: 'BAD_CONFIG' });
    await expect(run(['eval', '--model', out, '--data', file, '--scorer', 'classifier-emotion', '--emotion-weights', 'anger'])).rejects.toMatchObject({ code: 'BAD_CONFIG' });
    await expect(run(['train', '--train', train, '--dailydialog', path.join(dir, 'no-dd'), '--out', path.join(dir, 'y')])).rejects.toMatchObject({ code: 'NOT_FOUND' });
  }, 60_000);
  it('missing word vectors are a coded error before any training', async () => {
    // A training file of its own, so that the error comes from the vectors, with or without ../shared/data.
    const train = path.join(dir, 'vectors-train.tsv');
    await writeFile(train, 'label\tsentence\n1\tgreat fun\n0\tI hate it\n');
    await expect(run(['train', '--train', train, '--dev', 'none', '--vectors', path.join(dir, 'no-vectors.json'), '--limit', '10', '--out', path.join(dir, 'x'), '--backend', 'wasm']))
      .rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/no word-vectors file/) });
    expect(existsSync(path.join(dir, 'x'))).toBe(false);
  });
  it('a missing checkpoint is a clear error', async () => {
    await expect(run(['eval', '--scorer', 'classifier', '--model', path.join(dir, 'none')])).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await capture(['bogus'])).code).toBe(2);
  });
});
